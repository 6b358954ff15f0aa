r"""Scaled dot-product attention, causal masks and multi-head (grouped-query) attention.

Attention lets every query position take a weighted average of value vectors, the weights
coming from how well the query matches each key:

$$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V$$

(Vaswani et al., 2017, eq. 1). This module has the stable softmax that formula needs, the
causal mask a decoder uses, the fast kernel and the textbook version it is tested against,
and multi-head attention with grouped-query sharing of key/value heads.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _checks

# Query rows processed together by the causal fast path. Smaller blocks skip more of the
# masked upper triangle; larger blocks make bigger, more efficient matmuls. 128 skips ~44 %
# of the work at t = 1024 while each block is still a sizeable BLAS call.
_CAUSAL_BLOCK = 128


def softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    r"""Numerically stable softmax along ``axis``.

    Parameters
    ----------
    x : array_like, shape (..., n)
        Scores (logits). ``-inf`` entries are allowed and get probability exactly 0.
    axis : int, default -1
        The axis that sums to 1.

    Returns
    -------
    ndarray, same shape as ``x``
        Probabilities; float32 stays float32, float64 stays float64, float16 is computed and
        returned in float32, integers become float64.

    Raises
    ------
    ValueError
        If ``x`` contains NaN or ``+inf``, or if a slice along ``axis`` is all ``-inf`` (it has
        no distribution: ``0 / 0``), or if that slice is empty.
    TypeError
        If ``x`` is not numeric.

    Notes
    -----
    $\operatorname{softmax}(x)_i = e^{x_i} / \sum_j e^{x_j}$. Subtracting $m = \max_j x_j$ first
    changes nothing mathematically ($e^{x_i - m} / \sum_j e^{x_j - m}$) but keeps every
    exponent $\le 0$, so nothing overflows: ``[1e4, 0]`` gives ``[1, 0]`` rather than NaN.
    Matches ``torch.softmax`` wherever a slice has a finite entry.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import softmax
    >>> print(np.round(softmax([1.0, 2.0, 3.0]), 4))
    [0.09   0.2447 0.6652]
    >>> print(softmax([1e4, 0.0, -np.inf]))
    [1. 0. 0.]
    """
    x = _checks.float_array(x, "x")
    m = _stable_max(x, axis, "x")
    e = np.exp(x - m)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def log_softmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    r"""Numerically stable log-softmax along ``axis`` (the log-sum-exp trick).

    Parameters
    ----------
    x : array_like, shape (..., n)
        Scores (logits). ``-inf`` entries are allowed and stay ``-inf``.
    axis : int, default -1
        The axis the probabilities sum over.

    Returns
    -------
    ndarray, same shape as ``x``
        $\log \operatorname{softmax}(x)$, in the dtype rules of :func:`softmax`.

    Raises
    ------
    ValueError
        As :func:`softmax`: NaN, ``+inf``, an empty slice or a slice that is all ``-inf``.

    Notes
    -----
    $\log \operatorname{softmax}(x)_i = x_i - m - \log \sum_j e^{x_j - m}$ with
    $m = \max_j x_j$. Computing ``log(softmax(x))`` instead loses every probability below
    the smallest float (``log(0) = -inf``); this form is exact there. Matches
    ``torch.log_softmax``.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import log_softmax
    >>> print(np.round(log_softmax([0.0, 0.0]), 4))
    [-0.6931 -0.6931]
    >>> print(np.round(log_softmax([1e4, 0.0]), 1))
    [     0. -10000.]
    """
    x = _checks.float_array(x, "x")
    m = _stable_max(x, axis, "x")
    shifted = x - m
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _stable_max(x: np.ndarray, axis: int, name: str) -> np.ndarray:
    """Row maxima for a stable softmax; refuses +inf, empty and all--inf slices."""
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least 1 dimension, got a scalar")
    if x.shape[axis] == 0:
        raise ValueError(f"{name} has an empty axis {axis}; softmax needs at least one entry")
    if np.isposinf(x).any():
        raise ValueError(f"{name} contains +inf, which has no probability (inf - inf is NaN)")
    m = np.max(x, axis=axis, keepdims=True)
    if np.isneginf(m).any():
        raise ValueError(
            f"{name} has a slice along axis {axis} that is all -inf; softmax of it is undefined "
            "(attention functions give such rows zero weights instead)"
        )
    return m


def causal_mask(t_q: int, t_k: int) -> np.ndarray:
    r"""Boolean causal mask, ``True`` where query ``i`` may attend to key ``j``.

    Parameters
    ----------
    t_q : int
        Number of queries (>= 1).
    t_k : int
        Number of keys (>= 1).

    Returns
    -------
    ndarray of bool, shape (t_q, t_k)
        ``mask[i, j] = j <= t_k - t_q + i``.

    Raises
    ------
    TypeError
        If a size is not an integer.
    ValueError
        If a size is < 1.

    Notes
    -----
    The mask is aligned bottom-right: the queries are the *last* ``t_q`` positions of the
    sequence, so query ``i`` sits at absolute position $t_k - t_q + i$. That is what decoding
    with a KV cache needs (one new query, all cached keys visible). When ``t_q == t_k`` it is
    the lower triangle, equal to PyTorch's ``scaled_dot_product_attention(is_causal=True)``;
    FlashAttention >= 2.1 aligns the same way. If ``t_q > t_k`` the first ``t_q - t_k`` rows are
    all ``False``.

    Examples
    --------
    >>> from llmfund import causal_mask
    >>> print(causal_mask(3, 3).astype(int))
    [[1 0 0]
     [1 1 0]
     [1 1 1]]
    >>> print(causal_mask(1, 4).astype(int))  # one decode step sees every cached key
    [[1 1 1 1]]
    """
    t_q = _checks.integer(t_q, "t_q", minimum=1)
    t_k = _checks.integer(t_k, "t_k", minimum=1)
    return np.arange(t_k)[None, :] <= np.arange(t_q)[:, None] + (t_k - t_q)


def _check_qk(q: ArrayLike, k: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    # q, k, v must be finite: an inf score has no softmax (inf - inf is NaN).
    q = _checks.float_array(q, "q", allow_inf=False)
    k = _checks.float_array(k, "k", allow_inf=False)
    if q.ndim < 2:
        raise ValueError(f"q must have shape (..., t_q, d_k), got shape {q.shape}")
    if k.ndim < 2:
        raise ValueError(f"k must have shape (..., t_k, d_k), got shape {k.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same last dimension d_k, got q {q.shape} and k {k.shape}"
        )
    if q.shape[-2] == 0 or k.shape[-2] == 0 or q.shape[-1] == 0:
        raise ValueError(f"q and k must be non-empty, got q {q.shape} and k {k.shape}")
    try:
        np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    except ValueError:
        raise ValueError(
            f"q and k batch dimensions do not broadcast: q {q.shape}, k {k.shape}"
        ) from None
    return q, k


def _check_v(v: ArrayLike, k: np.ndarray, q: np.ndarray | None = None) -> np.ndarray:
    v = _checks.float_array(v, "v", allow_inf=False)
    if v.ndim < 2 or v.shape[-2] != k.shape[-2]:
        raise ValueError(
            f"v must have shape (..., t_k, d_v) with the same t_k as k, got k {k.shape} and v {v.shape}"
        )
    try:
        np.broadcast_shapes(k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ValueError(f"k and v batch dimensions do not broadcast: k {k.shape}, v {v.shape}") from None
    if q is not None:  # q and k, k and v broadcasting does not imply q and v do: (2,), (1,), (3,)
        try:
            np.broadcast_shapes(q.shape[:-2], v.shape[:-2])
        except ValueError:
            raise ValueError(f"q and v batch dimensions do not broadcast: q {q.shape}, v {v.shape}") from None
    return v


def _combined_mask(
    mask: ArrayLike | None, is_causal: bool, t_q: int, t_k: int, batch: tuple[int, ...] = ()
) -> np.ndarray | None:
    """The boolean keep-mask from an explicit ``mask`` and/or ``is_causal`` (None = keep all)."""
    if not isinstance(is_causal, (bool, np.bool_)):
        raise TypeError(f"is_causal must be a bool, got {is_causal!r}")
    keep = None
    if mask is not None:
        keep = _checks.bool_mask(mask)
        try:
            np.broadcast_shapes(keep.shape, batch + (t_q, t_k))
        except ValueError:
            raise ValueError(
                f"mask of shape {keep.shape} does not broadcast to (..., t_q, t_k) = {batch + (t_q, t_k)}"
            ) from None
        if keep.ndim >= 2 and (keep.shape[-2], keep.shape[-1]) != (t_q, t_k):
            # Broadcasting a (1, t_k) padding mask is fine; a wrong-sized one is a bug.
            for got, want in zip(keep.shape[-2:], (t_q, t_k)):
                if got not in (1, want):
                    raise ValueError(f"mask of shape {keep.shape} does not match (t_q, t_k) = ({t_q}, {t_k})")
    if is_causal:
        causal = causal_mask(t_q, t_k)
        keep = causal if keep is None else keep & causal
    return keep


def _masked_exp(scores: np.ndarray, keep: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``exp(scores - rowmax)`` (in place where it can) and each row's sum, for a softmax.

    A row that may attend to nothing has no distribution; like FlashAttention we give it
    all-zero weights (and so a zero output) rather than the NaN of 0/0: its max is taken as 0,
    so every exp(-inf - 0) is exactly 0, and its sum is reported as 1.
    """
    if keep is not None:
        scores = np.where(keep, scores, -np.inf)  # -inf -> exp gives exactly 0
    m = scores.max(axis=-1, keepdims=True)
    m[np.isneginf(m)] = 0.0
    np.subtract(scores, m, out=scores)
    np.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    total[total == 0] = 1.0
    return scores, total


def _weights_from_scores(scores: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """Softmax of ``scores`` over the last axis; rows with no kept key become 0."""
    e, total = _masked_exp(scores, keep)
    e /= total
    return e


def attention_weights(
    q: ArrayLike, k: ArrayLike, *, mask: ArrayLike | None = None, is_causal: bool = False
) -> np.ndarray:
    r"""Attention weights $\alpha = \operatorname{softmax}(q k^\top / \sqrt{d_k})$.

    Parameters
    ----------
    q : array_like, shape (..., t_q, d_k)
        Queries.
    k : array_like, shape (..., t_k, d_k)
        Keys. Leading (batch, head) dimensions broadcast against ``q``'s.
    mask : array_like of bool, broadcastable to (..., t_q, t_k), optional
        ``True`` = may attend. A boolean, not additive, mask.
    is_causal : bool, default False
        Apply :func:`causal_mask` (bottom-right aligned). With ``mask`` too, both apply.

    Returns
    -------
    ndarray, shape (..., t_q, t_k)
        Each row sums to 1, or is all zeros if that query may attend to no key.

    Raises
    ------
    ValueError
        If ``q`` or ``k`` is 1-D, their ``d_k`` differ, batch dimensions do not broadcast, an
        input contains NaN, or ``mask`` has the wrong shape.
    TypeError
        If ``mask`` is not boolean or ``is_causal`` is not a bool.

    Notes
    -----
    Dividing by $\sqrt{d_k}$ keeps the scores' variance near 1 when the entries of $q$ and $k$
    have unit variance (the dot product of two such $d_k$-vectors has variance $d_k$), so the
    softmax does not saturate into a one-hot (Vaswani et al., 2017, section 3.2.1). A row with
    no key it may attend to gets all-zero weights, as FlashAttention and PyTorch's
    ``scaled_dot_product_attention`` (since 2.5, its ``_safe_softmax``) do; a plain
    ``torch.softmax`` of such a row gives NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import attention_weights
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> k = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> print(np.round(attention_weights(q, k), 3))
    [[0.67 0.33]
     [0.33 0.67]]
    >>> print(np.round(attention_weights(q, k, is_causal=True), 3))
    [[1.   0.  ]
     [0.33 0.67]]
    """
    q, k = _check_qk(q, k)
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    keep = _combined_mask(mask, is_causal, q.shape[-2], k.shape[-2], batch)
    scores = _scale(q) @ np.swapaxes(k, -1, -2)
    return _weights_from_scores(scores, keep)


def _scale(q: np.ndarray) -> np.ndarray:
    """``q / sqrt(d_k)`` in q's own dtype.

    Scaling q (t_q x d_k numbers) is cheaper than scaling the scores (t_q x t_k). The scale is
    cast to q's dtype because NumPy 2 would otherwise promote float32 / np.float64 to float64.
    """
    return q * q.dtype.type(1.0 / np.sqrt(q.shape[-1]))


def scaled_dot_product_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    is_causal: bool = False,
) -> np.ndarray:
    r"""Scaled dot-product attention $\operatorname{softmax}(q k^\top / \sqrt{d_k})\, v$.

    Parameters
    ----------
    q : array_like, shape (..., t_q, d_k)
        Queries.
    k : array_like, shape (..., t_k, d_k)
        Keys.
    v : array_like, shape (..., t_k, d_v)
        Values. Leading dimensions of q, k, v broadcast (so one key/value head can serve a
        group of query heads without copying).
    mask : array_like of bool, broadcastable to (..., t_q, t_k), optional
        ``True`` = may attend.
    is_causal : bool, default False
        Apply the bottom-right aligned :func:`causal_mask`; with ``mask`` too, both apply.

    Returns
    -------
    ndarray, shape (..., t_q, d_v)
        float32 if all inputs are float32 (float16 is computed in float32), else float64.
        A query that may attend to no key gets a zero output row.

    Raises
    ------
    ValueError
        If shapes do not fit (``d_k`` of q and k, ``t_k`` of k and v, batch dimensions), an
        input is 1-D or contains NaN, or ``mask`` has the wrong shape.
    TypeError
        If ``mask`` is not boolean or ``is_causal`` is not a bool.

    Notes
    -----
    Equal to :func:`naive_attention` (the textbook three lines) but faster:

    * the scale is applied to ``q`` (t_q·d numbers) instead of the scores (t_q·t_k);
    * the softmax runs in place, and its division is deferred to the output
      ($\alpha v = (e v) / \sum e$: t_q·d_v divisions instead of t_q·t_k);
    * float32 stays float32 (NumPy 2 upcasts ``scores / np.sqrt(d)`` to float64);
    * with ``is_causal`` and no ``mask``, query rows are processed in blocks and each block
      only multiplies the keys it may see, skipping the masked upper triangle (about half of
      the work for ``t_q == t_k``).

    Matches ``torch.nn.functional.scaled_dot_product_attention`` (``is_causal`` when
    ``t_q == t_k``; a boolean ``attn_mask`` with True = attend), fully masked rows included:
    both give zeros there (PyTorch before 2.5 gave NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import scaled_dot_product_attention
    >>> rng = np.random.default_rng(0)
    >>> q, k, v = rng.standard_normal((3, 4, 8))  # t = 4 tokens, d = 8
    >>> out = scaled_dot_product_attention(q, k, v, is_causal=True)
    >>> out.shape
    (4, 8)
    >>> print(np.allclose(out[0], v[0]))  # the first token can only see itself
    True
    """
    q, k = _check_qk(q, k)
    v = _check_v(v, k, q)
    t_q, t_k = q.shape[-2], k.shape[-2]
    if is_causal and mask is None and isinstance(is_causal, (bool, np.bool_)):
        return _causal_blocked(_scale(q), k, v)
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    keep = _combined_mask(mask, is_causal, t_q, t_k, batch)
    return _attend(_scale(q), k, v, keep)


def _attend(qs: np.ndarray, k: np.ndarray, v: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """softmax(qs kᵀ) v with the normalisation deferred to the (t_q, d_v) output."""
    e, total = _masked_exp(qs @ np.swapaxes(k, -1, -2), keep)
    out = e @ v
    out /= total
    return out


def _causal_blocked(qs: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Causal attention that never computes scores the mask would discard.

    Query rows [r0, r1) sit at absolute positions offset + r0 .. offset + r1 - 1, so they can
    see keys [0, offset + r1) and nothing after: each block multiplies only that prefix, and
    only the last r1 - r0 columns of it need the triangular mask.
    """
    t_q, t_k = qs.shape[-2], k.shape[-2]
    offset = t_k - t_q
    batch = np.broadcast_shapes(qs.shape[:-2], k.shape[:-2], v.shape[:-2])
    out = np.zeros(batch + (t_q, v.shape[-1]), dtype=np.result_type(qs, k, v))
    for r0 in range(max(0, -offset), t_q, _CAUSAL_BLOCK):
        r1 = min(r0 + _CAUSAL_BLOCK, t_q)
        visible = offset + r1  # keys [0, visible) are visible to the last row of the block
        rows = np.arange(r0, r1)[:, None] + offset  # absolute position of each query row
        cols = np.arange(visible)[None, :]
        keep = cols <= rows
        out[..., r0:r1, :] = _attend(qs[..., r0:r1, :], k[..., :visible, :], v[..., :visible, :], keep)
    return out


def naive_attention(
    q: ArrayLike, k: ArrayLike, v: ArrayLike, *, mask: ArrayLike | None = None
) -> np.ndarray:
    r"""Textbook attention, written exactly as the formula reads (the pedagogical version).

    Parameters
    ----------
    q : array_like, shape (..., t_q, d_k)
    k : array_like, shape (..., t_k, d_k)
    v : array_like, shape (..., t_k, d_v)
    mask : array_like of bool, broadcastable to (..., t_q, t_k), optional
        ``True`` = may attend. Every row must keep at least one key.

    Returns
    -------
    ndarray, shape (..., t_q, d_v)
        float64 (NumPy 2 promotes ``scores / np.sqrt(d_k)`` to float64, as textbook code does).

    Raises
    ------
    ValueError
        If shapes do not fit, or a mask row keeps no key.

    Notes
    -----
    ``softmax(q @ k.T / np.sqrt(d_k)) @ v``: the scores are scaled, masked with ``-inf``,
    max-subtracted, exponentiated and normalised, each step a new (t_q, t_k) array. It is the
    reference :func:`scaled_dot_product_attention` and :func:`flash_attention` are tested
    against, and the baseline the benchmarks divide by.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import naive_attention, scaled_dot_product_attention
    >>> rng = np.random.default_rng(0)
    >>> q, k, v = rng.standard_normal((3, 5, 4))
    >>> print(np.allclose(naive_attention(q, k, v), scaled_dot_product_attention(q, k, v)))
    True
    """
    q, k = _check_qk(q, k)
    v = _check_v(v, k, q)
    d_k = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d_k)
    if mask is not None:
        keep = _checks.bool_mask(mask)
        if not np.broadcast_to(keep, scores.shape).any(axis=-1).all():
            raise ValueError("mask has a row that keeps no key; naive_attention needs one per row")
        scores = np.where(keep, scores, -np.inf)
    return softmax(scores) @ v


def multi_head_attention(
    x: ArrayLike,
    w_q: ArrayLike,
    w_k: ArrayLike,
    w_v: ArrayLike,
    w_o: ArrayLike,
    n_heads: int,
    *,
    n_kv_heads: int | None = None,
    is_causal: bool = False,
) -> np.ndarray:
    r"""Multi-head self-attention: project, split into heads, attend, concatenate, project.

    Parameters
    ----------
    x : array_like, shape (t, d_model) or (b, t, d_model)
        Input sequence(s). The course's row convention: $Q = X W_Q$.
    w_q : array_like, shape (d_model, n_heads * head_dim)
        Query projection; ``head_dim = w_q.shape[1] // n_heads`` (it need not equal
        ``d_model // n_heads``).
    w_k, w_v : array_like, shape (d_model, n_kv_heads * head_dim)
        Key and value projections.
    w_o : array_like, shape (n_heads * head_dim, d_out)
        Output projection (``d_out`` is usually ``d_model``).
    n_heads : int
        Number of query heads (>= 1).
    n_kv_heads : int, optional
        Number of key/value heads; defaults to ``n_heads`` (plain MHA). Fewer is
        grouped-query attention; 1 is multi-query attention. Must divide ``n_heads``.
    is_causal : bool, default False
        Causal self-attention (a decoder).

    Returns
    -------
    ndarray, shape (t, d_out) or (b, t, d_out)

    Raises
    ------
    ValueError
        If ``x`` is not 2-D or 3-D, ``n_heads`` does not divide ``w_q.shape[1]``,
        ``n_kv_heads`` does not divide ``n_heads``, or a weight's shape does not fit.
    TypeError
        If ``n_heads`` or ``n_kv_heads`` is not an integer.

    Notes
    -----
    $\operatorname{head}_h = \operatorname{Attention}(X W_Q^{(h)}, X W_K^{(g(h))}, X W_V^{(g(h))})$
    and $\operatorname{MHA}(X) = [\operatorname{head}_1; \dots; \operatorname{head}_H] W_O$
    (Vaswani et al., 2017, section 3.2.2). With $G$ = ``n_kv_heads`` < $H$ = ``n_heads``,
    consecutive groups of $H / G$ query heads share one key/value head,
    $g(h) = \lfloor h / (H/G) \rfloor$, exactly as Hugging Face Llama's ``repeat_kv``
    (Ainslie et al., 2023, GQA; Shazeer, 2019, MQA). Here the sharing is a broadcast, not a
    copy: the KV cache a model must keep shrinks by $H / G$.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import multi_head_attention
    >>> rng = np.random.default_rng(0)
    >>> d_model, n_heads, n_kv_heads, head_dim = 16, 4, 2, 4
    >>> x = rng.standard_normal((5, d_model))
    >>> w_q = rng.standard_normal((d_model, n_heads * head_dim))
    >>> w_k = rng.standard_normal((d_model, n_kv_heads * head_dim))
    >>> w_v = rng.standard_normal((d_model, n_kv_heads * head_dim))
    >>> w_o = rng.standard_normal((n_heads * head_dim, d_model))
    >>> y = multi_head_attention(x, w_q, w_k, w_v, w_o, n_heads, n_kv_heads=n_kv_heads, is_causal=True)
    >>> y.shape
    (5, 16)
    """
    x = _checks.float_array(x, "x")
    if x.ndim not in (2, 3):
        raise ValueError(f"x must have shape (t, d_model) or (b, t, d_model), got shape {x.shape}")
    w_q, w_k, w_v, w_o = (
        _checks.float_array(w, name) for w, name in ((w_q, "w_q"), (w_k, "w_k"), (w_v, "w_v"), (w_o, "w_o"))
    )
    n_heads = _checks.integer(n_heads, "n_heads", minimum=1)
    n_kv_heads = n_heads if n_kv_heads is None else _checks.integer(n_kv_heads, "n_kv_heads", minimum=1)
    d_model = x.shape[-1]
    for w, name in ((w_q, "w_q"), (w_k, "w_k"), (w_v, "w_v"), (w_o, "w_o")):
        if w.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix, got shape {w.shape}")
    if w_q.shape[0] != d_model:
        raise ValueError(f"w_q must have shape (d_model={d_model}, n_heads * head_dim), got {w_q.shape}")
    if w_q.shape[1] % n_heads:
        raise ValueError(f"n_heads={n_heads} does not divide w_q.shape[1]={w_q.shape[1]}")
    if n_heads % n_kv_heads:
        raise ValueError(f"n_heads={n_heads} must be a multiple of n_kv_heads={n_kv_heads}")
    head_dim = w_q.shape[1] // n_heads
    for w, name in ((w_k, "w_k"), (w_v, "w_v")):
        if w.shape != (d_model, n_kv_heads * head_dim):
            raise ValueError(
                f"{name} must have shape (d_model, n_kv_heads * head_dim) = "
                f"({d_model}, {n_kv_heads * head_dim}), got {w.shape}"
            )
    if w_o.shape[0] != n_heads * head_dim:
        raise ValueError(f"w_o must have shape (n_heads * head_dim={n_heads * head_dim}, d_out), got {w_o.shape}")

    t = x.shape[-2]
    group = n_heads // n_kv_heads

    def heads(a: np.ndarray, n: int) -> np.ndarray:
        # (..., t, n * head_dim) -> (..., n, t, head_dim): head h is columns h*head_dim ...
        return np.swapaxes(a.reshape(a.shape[:-1] + (n, head_dim)), -2, -3)

    # Query head h = g * group + j uses KV head g: shape (..., n_kv, group, t, hd) against
    # (..., n_kv, 1, t, hd) broadcasts the shared head with no copy (Llama's repeat_kv).
    q = heads(x @ w_q, n_heads).reshape(x.shape[:-2] + (n_kv_heads, group, t, head_dim))
    k = heads(x @ w_k, n_kv_heads)[..., :, None, :, :]
    v = heads(x @ w_v, n_kv_heads)[..., :, None, :, :]
    y = scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    y = y.reshape(x.shape[:-2] + (n_heads, t, head_dim))
    concat = np.swapaxes(y, -2, -3).reshape(x.shape[:-2] + (t, n_heads * head_dim))
    return concat @ w_o
