r"""Tiled ("flash") attention: exact attention without the (t_q, t_k) score matrix.

The textbook kernel materialises all $t_q \times t_k$ scores before the softmax. FlashAttention
(Dao et al., 2022) walks over key/value blocks instead and keeps, per query row, a running max
$m$, a running sum $\ell$ and an unnormalised output; when a new block raises the max, the old
sum and output are rescaled by $e^{m_\text{old} - m_\text{new}}$ (the *online softmax*,
Milakov & Gimelshein, 2018). Memory is O(t·block) instead of O(t²), and the result is the same.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from . import _checks
from .attention import _check_qk, _check_v, _scale


def flash_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    is_causal: bool = False,
    block_size: int = 64,
) -> np.ndarray:
    r"""Exact attention computed block by block with the online softmax.

    Parameters
    ----------
    q : array_like, shape (..., t_q, d_k)
        Queries.
    k : array_like, shape (..., t_k, d_k)
        Keys.
    v : array_like, shape (..., t_k, d_v)
        Values. Leading dimensions broadcast, as in
        :func:`~llmfund.attention.scaled_dot_product_attention`.
    is_causal : bool, default False
        Bottom-right aligned causal mask (see :func:`~llmfund.attention.causal_mask`); key
        blocks entirely in a query block's future are skipped.
    block_size : int, default 64
        Rows of q and of k/v per tile (>= 1). The largest temporary is
        (..., block_size, block_size).

    Returns
    -------
    ndarray, shape (..., t_q, d_v)
        The same result as ``scaled_dot_product_attention(q, k, v, is_causal=is_causal)``
        up to rounding, fully masked rows included (they are zero).

    Raises
    ------
    ValueError
        On the shape errors of ``scaled_dot_product_attention`` or ``block_size < 1``.
    TypeError
        If ``block_size`` is not an integer or ``is_causal`` not a bool.

    Notes
    -----
    For each query block and each key block $j$ with scores $S_j = q K_j^\top/\sqrt{d_k}$:

    $$m' = \max(m, \operatorname{rowmax} S_j), \quad
    \ell' = e^{m - m'} \ell + \operatorname{rowsum} e^{S_j - m'}, \quad
    O' = e^{m - m'} O + e^{S_j - m'} V_j,$$

    and finally $O / \ell$ (Dao et al., 2022, algorithm 1; the outer loop over query blocks is
    FlashAttention-2's order, Dao, 2023). A row that has seen no key keeps $m = -\infty$,
    $\ell = 0$ and outputs zeros, which is what the FlashAttention kernels return for it.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import flash_attention, scaled_dot_product_attention
    >>> rng = np.random.default_rng(0)
    >>> q, k, v = rng.standard_normal((3, 2, 100, 16))  # 2 heads, 100 tokens
    >>> out = flash_attention(q, k, v, is_causal=True, block_size=32)
    >>> ref = scaled_dot_product_attention(q, k, v, is_causal=True)
    >>> print(out.shape, np.allclose(out, ref))
    (2, 100, 16) True
    """
    q, k = _check_qk(q, k)
    v = _check_v(v, k, q)
    if not isinstance(is_causal, (bool, np.bool_)):
        raise TypeError(f"is_causal must be a bool, got {is_causal!r}")
    block = _checks.integer(block_size, "block_size", minimum=1)
    qs = _scale(q)
    t_q, t_k = q.shape[-2], k.shape[-2]
    offset = t_k - t_q  # query i sits at absolute position offset + i
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    dtype = np.result_type(qs, k, v)
    out = np.zeros(batch + (t_q, v.shape[-1]), dtype=dtype)

    for r0 in range(0, t_q, block):
        r1 = min(r0 + block, t_q)
        # Keys this query block may see: all, or (causal) up to the last row's position.
        k_end = min(t_k, offset + r1) if is_causal else t_k
        if k_end <= 0:
            continue  # every row of this block is empty: output stays 0
        out[..., r0:r1, :] = _attend_rows(qs[..., r0:r1, :], k, v, r0 + offset, k_end, block, is_causal, batch)
    return out


def _attend_rows(
    q_blk: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    first_pos: int,
    k_end: int,
    block: int,
    is_causal: bool,
    batch: tuple[int, ...],
) -> np.ndarray:
    """One query block against key blocks [0, k_end) with the running max/sum update."""
    rows = q_blk.shape[-2]
    dtype = np.result_type(q_blk, k, v)
    m = np.full(batch + (rows, 1), -np.inf, dtype=dtype)  # running row max
    l = np.zeros(batch + (rows, 1), dtype=dtype)  # running sum of exp(s - m)
    acc = np.zeros(batch + (rows, v.shape[-1]), dtype=dtype)  # running unnormalised output
    positions = np.arange(first_pos, first_pos + rows)[:, None]
    for c0 in range(0, k_end, block):
        c1 = min(c0 + block, k_end)
        s = q_blk @ np.swapaxes(k[..., c0:c1, :], -1, -2)
        if is_causal and c1 - 1 > first_pos:  # only blocks crossing the diagonal need a mask
            s = np.where(np.arange(c0, c1)[None, :] <= positions, s, -np.inf)
        m_new = np.maximum(m, s.max(axis=-1, keepdims=True))
        # A row that has seen only masked keys has m_new = -inf; shifting by 0 instead keeps
        # exp(-inf - 0) = 0 and avoids the NaN of -inf - (-inf).
        shift = np.where(np.isneginf(m_new), 0.0, m_new).astype(dtype, copy=False)
        p = np.exp(s - shift)
        alpha = np.exp(m - shift)  # rescales what was accumulated under the old max
        l = alpha * l + p.sum(axis=-1, keepdims=True)
        acc = alpha * acc + p @ v[..., c0:c1, :]
        m = m_new
    return acc / np.where(l == 0, 1, l)
