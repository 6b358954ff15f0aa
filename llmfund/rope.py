r"""Position information: sinusoidal encodings and rotary position embedding (RoPE).

Attention by itself is blind to order: permute the tokens and the outputs permute with them.
The original Transformer *adds* a sinusoidal vector to each input (Vaswani et al., 2017).
RoPE (Su et al., 2021, RoFormer) instead *rotates* each pair of query/key dimensions by an
angle proportional to the position, so that the score $\langle q_m, k_n \rangle$ depends only
on the offset $m - n$: relative position falls out of absolute rotations.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _checks

_LAYOUTS = ("half", "interleaved")


def _check_base(base: float) -> float:
    base = _checks.real(base, "base")
    if not base > 0 or not np.isfinite(base):
        raise ValueError(f"base must be a finite number > 0, got {base}")
    return base


def rope_frequencies(head_dim: int, base: float = 10000.0) -> np.ndarray:
    r"""Rotation frequencies $\theta_i = \text{base}^{-2i/d}$ of the ``head_dim / 2`` pairs.

    Parameters
    ----------
    head_dim : int
        Dimension of a query/key head; even and >= 2.
    base : float, default 10000.0
        The base $b$ (> 0). Larger bases rotate slower; "NTK-aware" scaling raises it to
        stretch the context a model can address.

    Returns
    -------
    ndarray of float64, shape (head_dim // 2,)
        $\theta_i$ for $i = 0, \dots, d/2 - 1$: pair 0 turns by 1 radian per position, the
        last pair by nearly $1/b$.

    Raises
    ------
    ValueError
        If ``head_dim`` is odd or < 2, or ``base <= 0``.
    TypeError
        If ``head_dim`` is not an integer or ``base`` not a number.

    Notes
    -----
    Su et al. (2021), eq. 15: $\theta_i = 10000^{-2(i-1)/d}$, $i = 1..d/2$. The same
    ``inv_freq`` as Hugging Face's ``LlamaRotaryEmbedding`` (default rope type).

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import rope_frequencies
    >>> print(np.round(rope_frequencies(8), 4))
    [1.    0.1   0.01  0.001]
    """
    head_dim = _checks.integer(head_dim, "head_dim", minimum=2)
    if head_dim % 2:
        raise ValueError(f"head_dim must be even (dimensions are rotated in pairs), got {head_dim}")
    base = _check_base(base)
    return base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)


def apply_rope(
    x: ArrayLike,
    positions: ArrayLike | None = None,
    *,
    base: float = 10000.0,
    layout: str = "half",
) -> np.ndarray:
    r"""Rotate each pair of dimensions of ``x`` by its position times the pair's frequency.

    Parameters
    ----------
    x : array_like, shape (..., t, head_dim)
        Queries or keys of one or more heads; ``head_dim`` even.
    positions : array_like, shape (t,), optional
        Position of each of the ``t`` rows, integers or floats (fractional positions are how
        position interpolation squeezes a long context into the trained range). Default
        ``0 .. t-1``. With a KV cache, pass the absolute positions of the new tokens.
    base : float, default 10000.0
        Frequency base (> 0), see :func:`rope_frequencies`.
    layout : {"half", "interleaved"}, default "half"
        Which dimensions form a pair. ``"half"`` pairs $i$ with $i + d/2$ ("rotate-half", as
        GPT-NeoX and Hugging Face Llama); ``"interleaved"`` pairs $2i$ with $2i+1$ (as the
        RoFormer paper, GPT-J and Meta's original Llama code). Weights trained with one layout
        give wrong attention under the other — silently, since shapes are the same.

    Returns
    -------
    ndarray, same shape as ``x``
        The rotated vectors (a new array; float32 stays float32).

    Raises
    ------
    ValueError
        If ``x`` has fewer than 2 dimensions, ``head_dim`` is odd, ``positions`` does not have
        shape (t,), an input contains NaN or inf, ``base <= 0``, or ``layout`` is unknown.
    TypeError
        If ``x`` or ``positions`` is not numeric.

    Notes
    -----
    For the pair $(x_a, x_b)$ with frequency $\theta_i$ at position $m$:

    $$\begin{pmatrix} x_a' \\ x_b' \end{pmatrix} =
    \begin{pmatrix} \cos m\theta_i & -\sin m\theta_i \\ \sin m\theta_i & \cos m\theta_i \end{pmatrix}
    \begin{pmatrix} x_a \\ x_b \end{pmatrix}.$$

    A rotation keeps norms, and $\langle R_m q, R_n k\rangle = \langle q, R_{n-m} k\rangle$
    depends only on $n - m$ (Su et al., 2021, eq. 16). Matches Hugging Face's
    ``apply_rotary_pos_emb`` (``q * cos + rotate_half(q) * sin``) for ``layout="half"``.
    The angles are computed in float64 and cast to ``x``'s dtype, so large positions keep
    their precision.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import apply_rope
    >>> x = np.array([[1.0, 0.0]])          # one pair, at position 1: turns by 1 radian
    >>> print(np.round(apply_rope(x, positions=[1]), 4))
    [[0.5403 0.8415]]
    >>> rng = np.random.default_rng(0)
    >>> q, k = rng.standard_normal((2, 1, 64))
    >>> s1 = apply_rope(q, [5]) @ apply_rope(k, [3]).T      # offset 2
    >>> s2 = apply_rope(q, [105]) @ apply_rope(k, [103]).T  # offset 2, 100 tokens later
    >>> print(np.allclose(s1, s2))
    True
    """
    x = _checks.float_array(x, "x", allow_inf=False)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (..., t, head_dim), got shape {x.shape}")
    t, head_dim = x.shape[-2], x.shape[-1]
    if head_dim % 2 or head_dim == 0:
        raise ValueError(f"head_dim (last axis of x) must be even and > 0, got {head_dim}")
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    if positions is None:
        pos = np.arange(t, dtype=np.float64)
    else:
        pos = _checks.float_array(positions, "positions", allow_inf=False).astype(np.float64)
        if pos.shape != (t,):
            raise ValueError(f"positions must have shape (t,) = ({t},), got shape {pos.shape}")
    angles = pos[:, None] * rope_frequencies(head_dim, base)[None, :]  # (t, head_dim/2)
    cos = np.cos(angles).astype(x.dtype)
    sin = np.sin(angles).astype(x.dtype)

    half = head_dim // 2
    pair_a, pair_b = (np.s_[..., :half], np.s_[..., half:]) if layout == "half" else (np.s_[..., 0::2], np.s_[..., 1::2])
    xa, xb = x[pair_a], x[pair_b]
    out = np.empty_like(x)
    # x_a' = x_a cos - x_b sin ; x_b' = x_b cos + x_a sin, written straight into the output.
    np.multiply(xa, cos, out=out[pair_a])
    out[pair_a] -= xb * sin
    np.multiply(xb, cos, out=out[pair_b])
    out[pair_b] += xa * sin
    return out


def sinusoidal_position_encoding(t: int, d_model: int, *, base: float = 10000.0) -> np.ndarray:
    r"""The fixed sinusoidal position encoding of the original Transformer.

    Parameters
    ----------
    t : int
        Number of positions (>= 1).
    d_model : int
        Width of the encoding (even, >= 2).
    base : float, default 10000.0
        Wavelength base (> 0).

    Returns
    -------
    ndarray of float64, shape (t, d_model)
        ``pe[pos, 2i] = sin(pos / base**(2i/d_model))``,
        ``pe[pos, 2i+1] = cos(pos / base**(2i/d_model))``.

    Raises
    ------
    ValueError
        If ``t < 1``, ``d_model`` is odd or < 2, or ``base <= 0``.
    TypeError
        If ``t`` or ``d_model`` is not an integer.

    Notes
    -----
    Vaswani et al. (2017), section 3.5. It is *added* to the token embeddings. Its wavelengths
    form a geometric progression from $2\pi$ up to $2\pi \cdot \text{base}^{(d-2)/d}$ (just under
    $2\pi \cdot \text{base}$); for any fixed offset
    $k$, ``pe[pos + k]`` is a linear function (a rotation of each sin/cos pair) of ``pe[pos]`` —
    the same frequencies RoPE later applies multiplicatively to q and k.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import sinusoidal_position_encoding
    >>> pe = sinusoidal_position_encoding(4, 6)
    >>> pe.shape
    (4, 6)
    >>> print(np.round(pe[1], 4))
    [0.8415 0.5403 0.0464 0.9989 0.0022 1.    ]
    """
    t = _checks.integer(t, "t", minimum=1)
    d_model = _checks.integer(d_model, "d_model", minimum=2)
    if d_model % 2:
        raise ValueError(f"d_model must be even (sin/cos pairs), got {d_model}")
    inv_freq = rope_frequencies(d_model, base)
    angles = np.arange(t, dtype=np.float64)[:, None] * inv_freq[None, :]
    pe = np.empty((t, d_model))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles)
    return pe
