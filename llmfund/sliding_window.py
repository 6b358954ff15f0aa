r"""Sliding-window attention: each token attends to the last ``window`` tokens only.

Full causal attention lets token $t$ see all $t + 1$ tokens so far, so its KV cache grows
without bound and each step costs O(t). Sliding-window attention (SWA; Child et al., 2019;
Beltagy et al., 2020, Longformer; used by Mistral 7B, Jiang et al., 2023) limits every query
to the ``window`` most recent keys, itself included. A stack of $L$ such layers still passes
information across up to $L \cdot W$ tokens (each layer reaches $W$ further back), while the
cache a layer must keep is bounded by $W$ tokens: a *rolling buffer* where token $i$ is stored
in slot $i \bmod W$, overwriting the token that just left the window.

This module has the mask, a vectorised full-sequence kernel that skips key blocks outside the
band, and :class:`RollingKVCache`, the bounded cache for decoding and chunked prefill.

*Chunked prefill* feeds a long prompt through the model a chunk of tokens at a time: each
chunk's queries attend to the cache so far plus the chunk itself, with the causal mask aligned
bottom-right, and the result is the same as one big prefill. Serving systems do it to bound
the work of one step, so that decode steps of other requests can run between chunks: vLLM's
``enable_chunked_prefill`` and Sarathi / Sarathi-Serve (Agrawal et al., 2023; OSDI 2024). With
a rolling buffer it is also how Mistral's reference code prefills a prompt longer than the
window.

In real systems: the rolling buffer is Mistral's ``RotatingBufferCache`` (mistral-inference)
and Hugging Face's ``SlidingWindowCache`` (in transformers 5 the ``StaticSlidingWindowLayer``
and ``DynamicSlidingWindowLayer`` of a cache); the banded kernel is FlashAttention's
``window_size`` argument.
"""

from __future__ import annotations


import numpy as np
from numpy.typing import ArrayLike

from . import _checks
from .attention import _attend, _check_qk, _check_v, _scale


def sliding_window_mask(t_q: int, t_k: int, window: int) -> np.ndarray:
    r"""Boolean causal sliding-window mask, ``True`` where query ``i`` may attend to key ``j``.

    Parameters
    ----------
    t_q : int
        Number of queries (>= 1).
    t_k : int
        Number of keys (>= 1).
    window : int
        Keys each query may see, **itself included** (>= 1). ``window >= t_k`` gives the
        plain :func:`~llmfund.attention.causal_mask`; ``window = 1`` lets a token see only
        itself.

    Returns
    -------
    ndarray of bool, shape (t_q, t_k)
        ``mask[i, j] = (j <= p_i) and (j > p_i - window)`` with $p_i = t_k - t_q + i$.

    Raises
    ------
    TypeError
        If a size is not an integer.
    ValueError
        If a size is < 1.

    Notes
    -----
    Like :func:`~llmfund.attention.causal_mask` the mask is aligned bottom-right: the queries
    are the *last* ``t_q`` positions, so query ``i`` sits at absolute position
    $p_i = t_k - t_q + i$ (what decoding and chunked prefill need). It keeps the keys
    $p_i - W < j \le p_i$: at most $W$ of them.

    This is Hugging Face's definition of Mistral's ``sliding_window`` (``masking_utils``:
    the causal mask ``kv_idx <= q_idx`` and the overlay ``kv_idx > q_idx - sliding_window``),
    and FlashAttention's ``window_size=(W - 1, 0)``. Beware the off-by-one between sources:
    the Mistral paper says a token attends to positions "between $i - W$ and $i$", which read
    inclusively is $W + 1$ keys, and some implementations did keep $W + 1$ (mlx-lm fixed its
    mask to $W$ in 2025; transformers once passed ``window_size=(W, W)`` to FlashAttention,
    issue #39408). With $W$ keys, a rolling buffer of $W$ slots holds exactly what the next
    query sees.

    Examples
    --------
    >>> from llmfund.sliding_window import sliding_window_mask
    >>> print(sliding_window_mask(5, 5, window=3).astype(int))
    [[1 0 0 0 0]
     [1 1 0 0 0]
     [1 1 1 0 0]
     [0 1 1 1 0]
     [0 0 1 1 1]]
    >>> print(sliding_window_mask(1, 6, window=3).astype(int))  # one decode step
    [[0 0 0 1 1 1]]
    """
    t_q = _checks.integer(t_q, "t_q", minimum=1)
    t_k = _checks.integer(t_k, "t_k", minimum=1)
    window = _checks.integer(window, "window", minimum=1)
    pos_q = np.arange(t_q)[:, None] + (t_k - t_q)  # absolute position of each query
    pos_k = np.arange(t_k)[None, :]
    return (pos_k <= pos_q) & (pos_k > pos_q - window)


def sliding_window_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    window: int,
    *,
    block_size: int = 128,
) -> np.ndarray:
    r"""Causal sliding-window attention, computed only inside the band.

    Parameters
    ----------
    q : array_like, shape (..., t_q, d_k)
        Queries: the last ``t_q`` positions of the sequence (bottom-right aligned).
    k : array_like, shape (..., t_k, d_k)
        Keys.
    v : array_like, shape (..., t_k, d_v)
        Values. Leading dimensions of q, k, v broadcast, as in
        :func:`~llmfund.attention.scaled_dot_product_attention`.
    window : int
        Keys each query may see, itself included (>= 1); see :func:`sliding_window_mask`.
    block_size : int, default 128
        Query rows per block (>= 1). Each block multiplies only the
        ``block_size + window - 1`` keys its rows can see.

    Returns
    -------
    ndarray, shape (..., t_q, d_v)
        Equal, up to rounding, to
        ``scaled_dot_product_attention(q, k, v, mask=sliding_window_mask(t_q, t_k, window))``.
        float32 stays float32. Rows with no visible key (only when ``t_q > t_k``) are zero.

    Raises
    ------
    ValueError
        On the shape errors of ``scaled_dot_product_attention``, or ``window`` /
        ``block_size`` < 1.
    TypeError
        If ``window`` or ``block_size`` is not an integer.

    Notes
    -----
    $o_i = \sum_{j = p_i - W + 1}^{p_i} \alpha_{ij} v_j$ with
    $\alpha_{ij} = \operatorname{softmax}_j(q_i \cdot k_j / \sqrt{d_k})$ over the band only.
    The masked version builds all $t_q \times t_k$ scores and throws most of them away; here
    query rows $[r_0, r_1)$ (positions $p_{r_0} .. p_{r_1 - 1}$) multiply only keys
    $[p_{r_0} - W + 1,\ p_{r_1 - 1}]$, so the work is O(t·(W + block)) instead of O(t²):
    the saving that makes SWA cheap for long prompts (FlashAttention's ``window_size`` skips
    the same tiles on a GPU).

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import scaled_dot_product_attention
    >>> from llmfund.sliding_window import sliding_window_attention, sliding_window_mask
    >>> rng = np.random.default_rng(0)
    >>> q, k, v = rng.standard_normal((3, 2, 50, 8))  # 2 heads, 50 tokens
    >>> out = sliding_window_attention(q, k, v, window=8, block_size=16)
    >>> ref = scaled_dot_product_attention(q, k, v, mask=sliding_window_mask(50, 50, 8))
    >>> print(out.shape, np.allclose(out, ref))
    (2, 50, 8) True
    """
    q, k = _check_qk(q, k)
    v = _check_v(v, k, q)
    window = _checks.integer(window, "window", minimum=1)
    block = _checks.integer(block_size, "block_size", minimum=1)
    qs = _scale(q)
    t_q, t_k = q.shape[-2], k.shape[-2]
    offset = t_k - t_q  # query i sits at absolute position offset + i
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    out = np.zeros(batch + (t_q, v.shape[-1]), dtype=np.result_type(qs, k, v))
    # Rows before position 0 (t_q > t_k) see nothing and stay zero.
    for r0 in range(max(0, -offset), t_q, block):
        r1 = min(r0 + block, t_q)
        lo = max(0, offset + r0 - window + 1)  # first key the block's first row can see
        hi = offset + r1  # one past the key the block's last row sits on
        rows = np.arange(r0, r1)[:, None] + offset
        cols = np.arange(lo, hi)[None, :]
        keep = (cols <= rows) & (cols > rows - window)
        out[..., r0:r1, :] = _attend(qs[..., r0:r1, :], k[..., lo:hi, :], v[..., lo:hi, :], keep)
    return out


class RollingKVCache:
    r"""A KV cache bounded by ``window`` tokens: Mistral's rolling buffer.

    Parameters
    ----------
    window : int
        The attention window (>= 1): keys each query may see, itself included. The cache
        holds at most ``window`` tokens, token ``i`` in slot ``i % window``.

    Attributes
    ----------
    window : int
        As given.
    dtype : numpy.dtype or None
        Storage dtype, fixed by the first update (``None`` before it); later updates are
        cast to it.

    Notes
    -----
    Jiang et al. (2023, Mistral 7B, section 2, "Rolling Buffer Cache"): with a window of $W$
    the cache has $W$ slots and the keys and values of position $i$ go to slot $i \bmod W$,
    so memory stops growing once $W$ tokens have been seen (8x less than a full cache for a
    32k sequence and $W$ = 4096). Slots are allocated as needed (doubling, up to ``window``)
    so a large window costs nothing until it fills. (Hugging Face's
    ``DynamicSlidingWindowLayer`` keeps one token less, ``window - 1``, which is all the next
    query needs besides its own key; the paper's $W$ slots keep the rule slot = position mod $W$.)

    :meth:`update` returns what the *new* queries need, in temporal order: the cached tokens
    still inside the first new query's window (at most ``window - 1``) followed by all the
    new tokens. Attend to them with ``sliding_window_mask(t_new, t_returned, window)`` (or
    :func:`sliding_window_attention`): the mask is bottom-right aligned, which is where these
    keys sit. This is how chunked prefill works with a rolling buffer (Mistral's reference
    code and Hugging Face's ``DynamicSlidingWindowLayer`` do the same): a chunk longer than
    the window cannot be written into the ring first, or its first queries would lose the
    keys they need. Only the last ``window`` tokens of such a chunk are kept.

    For one decode step (``t_new = 1``) past the window, the returned keys are exactly the
    ``window`` tokens the new query sees, so no mask is needed. An update is checked in full
    before anything is written: a rejected update leaves the cache as it was.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.sliding_window import RollingKVCache
    >>> cache = RollingKVCache(window=4)
    >>> x = np.arange(6.0).reshape(6, 1)          # 6 tokens, head_dim 1: value = position
    >>> k, v = cache.update(x[:5], x[:5])          # prefill 5 tokens in one chunk
    >>> print(k[:, 0], len(cache), cache.held)     # all 5 returned, last 4 kept
    [0. 1. 2. 3. 4.] 5 4
    >>> k, v = cache.update(x[5:], x[5:])          # decode position 5
    >>> print(k[:, 0], cache.positions)            # its window: positions 2..5
    [2. 3. 4. 5.] [2 3 4 5]
    """

    def __init__(self, window: int) -> None:
        self.window = _checks.integer(window, "window", minimum=1)
        self._k: np.ndarray | None = None  # ring buffers, (..., slots, head_dim) / (..., slots, d_v)
        self._v: np.ndarray | None = None
        self._seen = 0
        self.dtype: np.dtype | None = None

    def __len__(self) -> int:
        """Tokens seen so far (the absolute position of the next token)."""
        return self._seen

    def __repr__(self) -> str:
        return f"RollingKVCache(window={self.window}, seen={self._seen}, held={self.held}, dtype={self.dtype})"

    @property
    def held(self) -> int:
        """Tokens actually stored: ``min(len(self), window)``."""
        return min(self._seen, self.window)

    @property
    def positions(self) -> np.ndarray:
        """Absolute positions of the held tokens, oldest first, shape (held,)."""
        return np.arange(self._seen - self.held, self._seen)

    @property
    def nbytes(self) -> int:
        """Bytes of the held tokens (K and V): grows with the first ``window`` tokens, then constant."""
        if self._k is None or self._v is None:
            return 0
        return (self._k[..., :1, :].nbytes + self._v[..., :1, :].nbytes) * self.held

    @property
    def k(self) -> np.ndarray:
        """The held keys in temporal order (a copy), shape (..., held, head_dim)."""
        return self._ordered(self._k, self.held)

    @property
    def v(self) -> np.ndarray:
        """The held values in temporal order (a copy), shape (..., held, d_v)."""
        return self._ordered(self._v, self.held)

    def update(self, k_new: ArrayLike, v_new: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Add new tokens and return the keys and values the new queries attend to.

        Parameters
        ----------
        k_new : array_like, shape (..., t_new, head_dim)
            Keys of the new tokens (``t_new >= 1``; any size, smaller or larger than the
            window).
        v_new : array_like, shape (..., t_new, d_v)
            Values of the same tokens.

        Returns
        -------
        k, v : ndarray, shapes (..., n + t_new, head_dim) and (..., n + t_new, d_v)
            New arrays in temporal order: the ``n = min(held_before, window - 1)`` most recent
            cached tokens, then the new ones. Attend with
            ``sliding_window_mask(t_new, n + t_new, window)``.

        Raises
        ------
        ValueError
            If an input is less than 2-D, contains NaN, adds no token, ``k_new`` and
            ``v_new`` disagree in leading dimensions or ``t_new``, or they disagree with what
            is cached. The cache is then unchanged.
        TypeError
            If an input is not numeric.

        Examples
        --------
        >>> import numpy as np
        >>> from llmfund.sliding_window import RollingKVCache
        >>> cache = RollingKVCache(window=3)
        >>> _ = cache.update(np.zeros((2, 4, 8)), np.zeros((2, 4, 8)))
        >>> cache.update(np.zeros((2, 1, 16)), np.zeros((2, 1, 8)))
        Traceback (most recent call last):
        ...
        ValueError: k_new has shape (2, 1, 16) but the cache holds keys of shape (2, t, 8)
        >>> len(cache), cache.held
        (4, 3)
        """
        k_new = _checks.kv_array(k_new, "k_new")
        v_new = _checks.kv_array(v_new, "v_new")
        if k_new.shape[:-2] != v_new.shape[:-2] or k_new.shape[-2] != v_new.shape[-2]:
            raise ValueError(
                f"k_new and v_new must have the same leading dimensions and length t_new, "
                f"got k_new {k_new.shape} and v_new {v_new.shape}"
            )
        for new, old, name, what in ((k_new, self._k, "k_new", "keys"), (v_new, self._v, "v_new", "values")):
            if old is not None and (new.shape[:-2] != old.shape[:-2] or new.shape[-1] != old.shape[-1]):
                held = ", ".join([*map(str, old.shape[:-2]), "t", str(old.shape[-1])])
                raise ValueError(f"{name} has shape {new.shape} but the cache holds {what} of shape ({held})")
        # All checks passed: from here on nothing can fail half-way.
        if self._k is None:
            self.dtype = k_new.dtype if k_new.dtype == v_new.dtype else np.result_type(k_new, v_new)
        assert self.dtype is not None
        k_new = k_new.astype(self.dtype, copy=False)
        v_new = v_new.astype(self.dtype, copy=False)
        t_new = k_new.shape[-2]
        # What the first new query still sees of the past: the last window - 1 held tokens.
        # Gather it before writing, since the new tokens may overwrite those slots.
        n_past = min(self.held, self.window - 1)
        k_out = np.concatenate([self._ordered(self._k, n_past), k_new], axis=-2) if n_past else k_new.copy()
        v_out = np.concatenate([self._ordered(self._v, n_past), v_new], axis=-2) if n_past else v_new.copy()

        n_write = min(t_new, self.window)  # older tokens of a long chunk would be overwritten anyway
        self._reserve(k_new, v_new, min(self._seen + t_new, self.window))
        assert self._k is not None and self._v is not None
        slots = np.arange(self._seen + t_new - n_write, self._seen + t_new) % self.window
        self._k[..., slots, :] = k_new[..., t_new - n_write :, :]
        self._v[..., slots, :] = v_new[..., t_new - n_write :, :]
        self._seen += t_new
        return k_out, v_out

    def _ordered(self, buf: np.ndarray | None, n: int) -> np.ndarray:
        """The ``n`` most recent held tokens of ``buf``, oldest first (a gather, so a copy)."""
        if buf is None:
            raise ValueError("the cache is empty: call update() first")
        # Position p lives in slot p % window; before the first wrap that is just slot p.
        slots = np.arange(self._seen - n, self._seen) % self.window
        return buf[..., slots, :]

    def _reserve(self, k_new: np.ndarray, v_new: np.ndarray, needed: int) -> None:
        """Make room for ``needed`` slots (<= window), doubling; before any wrap slots are 0..seen-1."""
        if self._k is None or self._v is None:
            cap = min(self.window, max(16, needed))
            self._k = np.empty(k_new.shape[:-2] + (cap, k_new.shape[-1]), dtype=self.dtype)
            self._v = np.empty(v_new.shape[:-2] + (cap, v_new.shape[-1]), dtype=self.dtype)
            return
        if needed <= self._k.shape[-2]:
            return
        # Growing happens only while seen < window (afterwards the buffer has all window
        # slots), so the held tokens are slots 0 .. seen - 1 in order.
        cap = min(self.window, max(needed, 2 * self._k.shape[-2]))
        for attr in ("_k", "_v"):
            old = getattr(self, attr)
            new = np.empty(old.shape[:-2] + (cap, old.shape[-1]), dtype=old.dtype)
            new[..., : self._seen, :] = old[..., : self._seen, :]
            setattr(self, attr, new)
