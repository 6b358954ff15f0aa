r"""KV-cache quantisation: store keys and values as int8 plus a few float scales.

The KV cache dominates the memory of long-context inference (see
:func:`~llmfund.kv_cache.kv_cache_bytes`), and it is read in full at every decode step, so
halving its bytes (fp16 -> int8) both fits twice the tokens and halves the memory traffic.
Symmetric absmax quantisation maps each group of numbers $x$ to integers

$$s = \frac{\max |x|}{127}, \qquad q = \operatorname{clip}(\operatorname{round}(x / s), -127, 127),
\qquad \hat x = q \cdot s,$$

with one scale $s$ per group; the error of each element is at most $s / 2$. *Which* numbers
share a scale is the whole design question:

* **per token** (one scale per cached token and head, over ``head_dim``): appending a token
  never changes an old token's scale, so a growing cache is trivial. Good for values.
* **per channel** (one scale per ``head_dim`` channel, over tokens): keys have a few
  channels with much larger magnitude than the rest, always the same ones; a per-token scale
  is set by those outliers and crushes every other channel to a few levels, a per-channel
  scale does not. KIVI (Liu et al., 2024) therefore quantises keys per channel and values
  per token, grouping tokens so that old groups are never re-scaled.

In real systems: Hugging Face's ``QuantizedCache`` (``cache_implementation="quantized"``,
quanto or HQQ backends, 2 to 8 bits, a full-precision residual of recent tokens, after KIVI);
vLLM's ``kv_cache_dtype="fp8"`` (E4M3/E5M2, one scale per tensor, the cast done inside the
attention kernel); llama.cpp's ``--cache-type-k q8_0`` / ``--cache-type-v q8_0`` (blocks of 32
int8 values with one fp16 scale: 8.5 bits per number). All of them, like this module, keep the
queries and the attention arithmetic in floating point and quantise only what is stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _checks
from .attention import scaled_dot_product_attention

_QMAX = 127  # symmetric: -128 is never used, so q and -q are both representable
_MODES = ("token", "channel")


def _axes(axis: Any, ndim: int) -> tuple[int, ...] | None:
    """Normalise ``axis`` (None, an int or a tuple of ints) against ``ndim``; names the bad value."""
    if axis is None:
        return None
    items = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for a in items:
        a = _checks.integer(a, "axis")
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for an array with {ndim} dimension(s)")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis has a repeated entry: {axis!r}")
    return tuple(out)


def quantize_int8(x: ArrayLike, axis: int | tuple[int, ...] | None = -1) -> tuple[np.ndarray, np.ndarray]:
    r"""Symmetric absmax int8 quantisation, one scale per slice reduced over ``axis``.

    Parameters
    ----------
    x : array_like
        Finite numbers, e.g. keys or values of shape (..., t, head_dim).
    axis : int, tuple of int or None, default -1
        The axis (or axes) that share one scale. For a cache of shape (..., t, head_dim):
        ``-1`` is **per token** (a scale for each (…, t) row, over ``head_dim``), ``-2`` is
        **per channel** (a scale for each ``head_dim`` channel, over the tokens), ``None`` is
        one scale for the whole tensor.

    Returns
    -------
    q : ndarray of int8, same shape as ``x``
        Values in [-127, 127].
    scale : ndarray, shape of ``x`` with ``axis`` reduced to length 1
        $\max |x| / 127$ per slice, float32 (float64 if ``x`` is float64), so that
        ``q * scale`` broadcasts back to ``x``'s shape.

    Raises
    ------
    TypeError
        If ``x`` is not numeric or ``axis`` is not an integer (or tuple of them).
    ValueError
        If ``x`` contains NaN or inf, is 0-D, or ``axis`` is out of range or repeated.

    Notes
    -----
    $q = \operatorname{clip}(\operatorname{rint}(x / s), -127, 127)$ with $s = \max|x| / 127$:
    rounding to nearest (ties to even, as ``torch.round``), so $|x - q s| \le s / 2$. The clip
    only guards against the division landing a hair above 127. A slice that is all zero has
    $s = 0$; it is quantised to 0 and dequantises to 0 (no 0/0 NaN). A non-zero slice always
    gets $s > 0$ (for subnormal input the bound $s/2$ is then only approximate). Symmetric means no
    zero-point: K and V are roughly centred, and it keeps dequantisation a single multiply.
    KIVI (Liu et al., 2024) uses asymmetric 2-bit with a zero-point; at 8 bits symmetric
    loses little.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.kv_quant import quantize_int8, dequantize_int8
    >>> x = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0]], dtype=np.float32)
    >>> q, scale = quantize_int8(x, axis=-1)      # per row
    >>> print(q)
    [[  64 -127   32]
     [   0    0    0]]
    >>> print(np.round(scale[:, 0] * 127, 3))     # the row maxima; the zero row has scale 0
    [1. 0.]
    >>> print(np.round(dequantize_int8(q, scale), 3))
    [[ 0.504 -1.     0.252]
     [ 0.     0.     0.   ]]
    """
    x = _checks.float_array(x, "x", allow_inf=False)
    if x.ndim == 0:
        raise ValueError("x must have at least 1 dimension, got a scalar")
    axes = _axes(axis, x.ndim)
    if x.size == 0:
        raise ValueError(f"x must be non-empty, got shape {x.shape}")
    absmax = np.max(np.abs(x), axis=axes, keepdims=True)
    scale = (absmax / x.dtype.type(_QMAX)).astype(x.dtype, copy=False)
    # absmax / 127 underflows to 0 for a slice of subnormals (float32: max |x| < 127 * 2**-149);
    # the smallest positive scale keeps such a slice from silently dequantising to all zeros.
    scale = np.where(absmax > 0, np.maximum(scale, np.finfo(x.dtype).smallest_subnormal), scale)
    # Divide by 1 where the scale is 0: those slices are all zero and quantise to 0.
    safe = np.where(scale > 0, scale, x.dtype.type(1))
    q = np.clip(np.rint(x / safe), -_QMAX, _QMAX).astype(np.int8)
    return q, scale


def dequantize_int8(q: ArrayLike, scale: ArrayLike) -> np.ndarray:
    r"""Map int8 values back to floats: $\hat x = q \cdot s$.

    Parameters
    ----------
    q : array_like of int8
        Quantised values, as returned by :func:`quantize_int8`.
    scale : array_like
        Scales broadcastable to ``q``'s shape (>= 0, finite).

    Returns
    -------
    ndarray, shape of ``q``
        In ``scale``'s float dtype (float32 for the scales :func:`quantize_int8` returns for
        float32 input).

    Raises
    ------
    TypeError
        If ``q`` is not int8 or ``scale`` is not numeric.
    ValueError
        If ``scale`` is negative, NaN or inf, or does not broadcast to ``q``'s shape.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.kv_quant import dequantize_int8
    >>> print(dequantize_int8(np.array([127, -64], dtype=np.int8), np.float32(0.5)))
    [ 63.5 -32. ]
    """
    q_arr = np.asarray(q)
    if q_arr.dtype != np.int8:
        raise TypeError(f"q must be an int8 array, got dtype {q_arr.dtype}")
    s = _checks.float_array(scale, "scale", allow_inf=False)
    if s.size and (s < 0).any():
        raise ValueError(f"scale must be >= 0, got a minimum of {float(s.min())}")
    try:
        shape = np.broadcast_shapes(q_arr.shape, s.shape)
    except ValueError:
        raise ValueError(f"scale of shape {s.shape} does not broadcast to q's shape {q_arr.shape}") from None
    if shape != q_arr.shape:
        raise ValueError(f"scale of shape {s.shape} does not broadcast to q's shape {q_arr.shape}")
    return q_arr.astype(s.dtype) * s


def _mode(value: Any, name: str) -> str:
    if value not in _MODES:
        raise ValueError(f"{name} must be 'token' or 'channel', got {value!r}")
    return value


class _Buffer:
    """A growable array along axis -2 (doubling, amortised O(1) per appended row)."""

    def __init__(self) -> None:
        self.data: np.ndarray | None = None
        self.n = 0

    def append(self, rows: np.ndarray) -> None:
        t = rows.shape[-2]
        if self.data is None:
            self.data = np.empty(rows.shape[:-2] + (max(16, t), rows.shape[-1]), dtype=rows.dtype)
        elif self.n + t > self.data.shape[-2]:
            grown = np.empty(rows.shape[:-2] + (max(self.n + t, 2 * self.data.shape[-2]), rows.shape[-1]), dtype=self.data.dtype)
            grown[..., : self.n, :] = self.data[..., : self.n, :]
            self.data = grown
        self.data[..., self.n : self.n + t, :] = rows
        self.n += t

    def view(self) -> np.ndarray:
        assert self.data is not None
        return self.data[..., : self.n, :]

    @property
    def nbytes(self) -> int:
        return 0 if self.data is None else self.data[..., : self.n, :].nbytes


class _QuantizedStream:
    """The int8 store for one of K or V, quantised per token or per channel in token groups."""

    def __init__(self, mode: str, group_size: int) -> None:
        self.mode = mode
        self.group = group_size
        self.q = _Buffer()  # int8, (..., t_quantised, dim)
        self.scale = _Buffer()  # (..., t_quantised, 1) per token; (..., n_groups, dim) per channel
        self.residual: np.ndarray | None = None  # per channel: the < group_size newest tokens, unquantised

    def append(self, x: np.ndarray) -> None:
        if self.mode == "token":
            q, s = quantize_int8(x, axis=-1)
            self.q.append(q)
            self.scale.append(s)
            return
        # Per channel, a scale spans a group of tokens; a group is quantised once it is
        # full and never touched again (KIVI's grouping; the rest waits in full precision).
        pending = x if self.residual is None else np.concatenate([self.residual, x], axis=-2)
        n_full = pending.shape[-2] // self.group * self.group
        if n_full:
            groups = pending[..., :n_full, :].reshape(pending.shape[:-2] + (n_full // self.group, self.group, pending.shape[-1]))
            q, s = quantize_int8(groups, axis=-2)  # scale (..., n_groups, 1, dim)
            self.q.append(q.reshape(pending.shape[:-2] + (n_full, pending.shape[-1])))
            self.scale.append(s[..., 0, :])
        self.residual = pending[..., n_full:, :] if n_full < pending.shape[-2] else None

    def dequantize(self, dtype: np.dtype) -> np.ndarray:
        parts = []
        if self.q.n:
            q, s = self.q.view(), self.scale.view()
            if self.mode == "token":
                parts.append(dequantize_int8(q, s))
            else:
                n_groups = s.shape[-2]
                grouped = q.reshape(q.shape[:-2] + (n_groups, self.group, q.shape[-1]))
                parts.append(dequantize_int8(grouped, s[..., :, None, :]).reshape(q.shape))
        if self.residual is not None:
            parts.append(self.residual)
        return np.concatenate(parts, axis=-2).astype(dtype, copy=False)

    @property
    def nbytes(self) -> int:
        residual = 0 if self.residual is None else self.residual.nbytes
        return self.q.nbytes + self.scale.nbytes + residual


class QuantizedKVCache:
    r"""A growing KV cache that stores keys and values as int8 plus float scales.

    Parameters
    ----------
    key_mode, value_mode : {'token', 'channel'}, default 'channel' and 'token'
        How keys and values share scales (see the module docstring). The defaults are KIVI's
        choice: keys per channel (their outliers sit in fixed channels), values per token.
    group_size : int, default 32
        Tokens per scale group for a ``'channel'`` stream (>= 1). The newest
        ``len % group_size`` tokens of such a stream wait unquantised (in the input dtype)
        until their group is full, so an append never re-scales old tokens.

    Attributes
    ----------
    dtype : numpy.dtype or None
        The float dtype returned by :meth:`update`, fixed by the first update.

    Notes
    -----
    The cache keeps int8 codes and scales (float32 for float16/float32 input) and
    dequantises on read, as Hugging Face's ``QuantizedCache`` does (its quanto and HQQ
    backends keep a full-precision residual of up to ``residual_length`` tokens, like the
    per-channel groups here). A real kernel dequantises inside the attention kernel instead,
    so the fp16 copy never exists in memory; this NumPy version materialises it for clarity.
    Shapes and checks follow :class:`~llmfund.kv_cache.KVCache`: time axis -2, an update is
    checked in full before anything is stored.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.kv_quant import QuantizedKVCache
    >>> rng = np.random.default_rng(0)
    >>> k, v = rng.standard_normal((2, 4, 64, 128)).astype(np.float32)  # 4 heads, 64 tokens
    >>> cache = QuantizedKVCache()
    >>> k_hat, v_hat = cache.update(k, v)
    >>> print(len(cache), k_hat.shape, k_hat.dtype)
    64 (4, 64, 128) float32
    >>> print(cache.nbytes, k.nbytes + v.nbytes)   # int8 + scales vs float32
    70656 262144
    >>> print(bool(np.abs(k_hat - k).max() < 0.02))
    True
    """

    def __init__(self, key_mode: str = "channel", value_mode: str = "token", *, group_size: int = 32) -> None:
        self.key_mode = _mode(key_mode, "key_mode")
        self.value_mode = _mode(value_mode, "value_mode")
        self.group_size = _checks.integer(group_size, "group_size", minimum=1)
        self._k = _QuantizedStream(self.key_mode, self.group_size)
        self._v = _QuantizedStream(self.value_mode, self.group_size)
        self._len = 0
        self._k_shape: tuple[int, ...] | None = None  # (leading..., head_dim) of the keys
        self._v_shape: tuple[int, ...] | None = None
        self.dtype: np.dtype | None = None

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return (
            f"QuantizedKVCache(len={self._len}, key_mode={self.key_mode!r}, "
            f"value_mode={self.value_mode!r}, nbytes={self.nbytes})"
        )

    @property
    def nbytes(self) -> int:
        """Bytes stored: int8 codes, scales and any unquantised residual tokens (K and V)."""
        return self._k.nbytes + self._v.nbytes

    def update(self, k_new: ArrayLike, v_new: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Quantise and append new keys and values; return the whole cache dequantised.

        Parameters
        ----------
        k_new : array_like, shape (..., t_new, head_dim)
            Keys of the new tokens (finite, ``t_new >= 1``).
        v_new : array_like, shape (..., t_new, d_v)
            Values of the same tokens.

        Returns
        -------
        k, v : ndarray, shapes (..., t, head_dim) and (..., t, d_v)
            Every cached token, dequantised (new arrays), in the dtype of the first update
            (float16 input is returned as float16).

        Raises
        ------
        ValueError
            If an input is less than 2-D, contains NaN or inf, adds no token, ``k_new`` and
            ``v_new`` disagree, or they disagree with what is cached. The cache is then
            unchanged.
        TypeError
            If an input is not numeric.
        """
        k_arr, k_dtype = _finite_kv(k_new, "k_new")
        v_arr, v_dtype = _finite_kv(v_new, "v_new")
        if k_arr.shape[:-2] != v_arr.shape[:-2] or k_arr.shape[-2] != v_arr.shape[-2]:
            raise ValueError(
                f"k_new and v_new must have the same leading dimensions and length t_new, "
                f"got k_new {k_arr.shape} and v_new {v_arr.shape}"
            )
        for arr, held, name in ((k_arr, self._k_shape, "k_new"), (v_arr, self._v_shape, "v_new")):
            if held is not None and arr.shape[:-2] + arr.shape[-1:] != held:
                expected = ", ".join([*map(str, held[:-1]), "t", str(held[-1])])
                raise ValueError(f"{name} has shape {arr.shape} but the cache holds shape ({expected})")
        # All checks passed: from here on nothing can fail half-way.
        if self.dtype is None:
            self.dtype = np.result_type(k_dtype, v_dtype)
            self._k_shape = k_arr.shape[:-2] + k_arr.shape[-1:]
            self._v_shape = v_arr.shape[:-2] + v_arr.shape[-1:]
        # Stored (residual tokens) and returned in the cache's dtype: float16 stays float16.
        self._k.append(k_arr.astype(self.dtype, copy=False))
        self._v.append(v_arr.astype(self.dtype, copy=False))
        self._len += k_arr.shape[-2]
        return self._k.dequantize(self.dtype), self._v.dequantize(self.dtype)


def _finite_kv(x: Any, name: str) -> tuple[np.ndarray, np.dtype]:
    """Keys or values in their computing dtype, plus the dtype to return them in."""
    arr = _checks.float_array(x, name, allow_inf=False)
    raw = np.asarray(x).dtype
    dtype = raw if np.issubdtype(raw, np.floating) else arr.dtype
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (..., t_new, dim), got shape {arr.shape}")
    if arr.shape[-2] == 0 or arr.shape[-1] == 0:
        raise ValueError(f"{name} must add at least one token of dimension >= 1, got shape {arr.shape}")
    return arr, dtype


def synthetic_qkv(
    rng: np.random.Generator,
    t: int,
    head_dim: int = 128,
    *,
    n_heads: int = 1,
    outlier_channels: int = 4,
    outlier_scale: float = 10.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Random float32 Q, K, V with a few outlier channels in K, the shape real keys have.

    Parameters
    ----------
    rng : numpy.random.Generator
        The source of randomness (pass ``np.random.default_rng(seed)``).
    t : int
        Tokens (>= 1).
    head_dim : int, default 128
        Channels per head (>= 1).
    n_heads : int, default 1
        Heads (>= 1).
    outlier_channels : int, default 4
        Key channels (the same for every head and token) scaled up, ``0 <= n <= head_dim``.
    outlier_scale : float, default 10.0
        Their standard deviation (> 0); every other entry has standard deviation 1.

    Returns
    -------
    q, k, v : ndarray of float32, shape (n_heads, t, head_dim)
        Entries i.i.d. $\mathcal N(0, 1)$, except that the key channels chosen at random
        (without replacement) are $\mathcal N(0, \text{outlier\_scale}^2)$.

    Raises
    ------
    TypeError, ValueError
        If a size is not an integer in range or ``outlier_scale`` is not > 0.

    Notes
    -----
    KIVI (Liu et al., 2024, figure 2) and KVQuant (Hooper et al., 2024) observe that the keys
    of real LLMs have a handful of channels with magnitudes an order of magnitude above the
    rest, fixed per channel (RoPE and the projection weights put them there), while values
    have no such structure. This is the simplest distribution with that property.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.kv_quant import synthetic_qkv
    >>> q, k, v = synthetic_qkv(np.random.default_rng(0), t=1000, head_dim=8, outlier_channels=2)
    >>> print(q.shape, k.dtype)
    (1, 1000, 8) float32
    >>> print(np.round(k[0].std(axis=0)), np.round(v[0].std(axis=0)))  # per channel, over tokens
    [ 1. 10.  1.  1.  1.  1. 10.  1.] [1. 1. 1. 1. 1. 1. 1. 1.]
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    t = _checks.integer(t, "t", minimum=1)
    head_dim = _checks.integer(head_dim, "head_dim", minimum=1)
    n_heads = _checks.integer(n_heads, "n_heads", minimum=1)
    n_out = _checks.integer(outlier_channels, "outlier_channels", minimum=0)
    if n_out > head_dim:
        raise ValueError(f"outlier_channels must be <= head_dim={head_dim}, got {n_out}")
    big = _checks.real(outlier_scale, "outlier_scale")
    if not (big > 0 and math.isfinite(big)):
        raise ValueError(f"outlier_scale must be a finite number > 0, got {outlier_scale}")
    q, k, v = rng.standard_normal((3, n_heads, t, head_dim), dtype=np.float32)
    channels = rng.choice(head_dim, size=n_out, replace=False)
    k[..., channels] *= np.float32(big)
    return q, k, v


@dataclass(frozen=True)
class KVQuantReport:
    """What int8 quantisation of one K/V pair costs and saves (see :func:`kv_quant_report`).

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.kv_quant import kv_quant_report, synthetic_qkv
    >>> q, k, v = synthetic_qkv(np.random.default_rng(0), t=64, head_dim=32)
    >>> r = kv_quant_report(q, k, v)              # keys per channel, values per token
    >>> print(r.key_mode, r.value_mode, r.int8_bytes, r.scale_bytes, r.total_bytes, r.fp16_bytes)
    channel token 4096 384 4480 8192
    >>> print(round(r.ratio_vs_fp16, 4), round(r.k_rel_error, 4), round(r.attention_rel_error, 4))
    0.5469 0.006 0.0107
    """

    key_mode: str
    value_mode: str
    int8_bytes: int  # codes of K and V
    scale_bytes: int  # their scales
    fp16_bytes: int  # the same K and V stored in fp16
    fp32_bytes: int  # ... and in fp32
    k_rel_error: float  # ||K_hat - K|| / ||K|| (Frobenius)
    v_rel_error: float
    attention_rel_error: float  # ||attn(q, K_hat, V_hat) - attn(q, K, V)|| / ||attn(q, K, V)||

    @property
    def total_bytes(self) -> int:
        """int8 codes plus scales."""
        return self.int8_bytes + self.scale_bytes

    @property
    def ratio_vs_fp16(self) -> float:
        """``total_bytes / fp16_bytes``: 0.5 plus the scales' overhead."""
        return self.total_bytes / self.fp16_bytes


def kv_quant_report(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    key_mode: str = "channel",
    value_mode: str = "token",
    is_causal: bool = False,
) -> KVQuantReport:
    r"""Quantise K and V to int8 and measure the bytes saved and the attention error.

    Parameters
    ----------
    q : array_like, shape (..., t_q, d_k)
        Queries (kept exact: only the cache is quantised).
    k : array_like, shape (..., t_k, d_k)
        Keys.
    v : array_like, shape (..., t_k, d_v)
        Values.
    key_mode, value_mode : {'token', 'channel'}
        Per-token (scale over the last axis) or per-channel (scale over the token axis, all
        ``t_k`` tokens in one group) quantisation of keys and values.
    is_causal : bool, default False
        Passed to :func:`~llmfund.attention.scaled_dot_product_attention`.

    Returns
    -------
    KVQuantReport
        Bytes of the int8 codes and of the scales (at their actual dtype), the fp16 and fp32
        bytes of the same K and V, the relative (Frobenius) errors of $\hat K$, $\hat V$ and
        of the attention output.

    Raises
    ------
    ValueError, TypeError
        On the input errors of :func:`quantize_int8` and
        :func:`~llmfund.attention.scaled_dot_product_attention`, or an unknown mode.

    Notes
    -----
    Relative error $\lVert \hat o - o \rVert_F / \lVert o \rVert_F$ with
    $o = \operatorname{attention}(q, K, V)$ and $\hat o$ the same with dequantised $K, V$.
    Key errors are amplified by the softmax (an error $\delta$ in a score multiplies a weight
    by $e^{\delta}$), value errors pass through linearly, so keys deserve the finer scales.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.kv_quant import kv_quant_report, synthetic_qkv
    >>> q, k, v = synthetic_qkv(np.random.default_rng(0), t=256, head_dim=128, n_heads=2)
    >>> per_token = kv_quant_report(q, k, v, key_mode="token")
    >>> per_channel = kv_quant_report(q, k, v, key_mode="channel")
    >>> print(per_channel.fp16_bytes, per_channel.total_bytes, round(per_channel.ratio_vs_fp16, 3))
    262144 134144 0.512
    >>> print(per_channel.attention_rel_error < per_token.attention_rel_error < 0.05)
    True
    """
    key_mode = _mode(key_mode, "key_mode")
    value_mode = _mode(value_mode, "value_mode")
    q_arr = _checks.float_array(q, "q", allow_inf=False)
    k_arr = _checks.float_array(k, "k", allow_inf=False)
    v_arr = _checks.float_array(v, "v", allow_inf=False)
    for arr, name in ((k_arr, "k"), (v_arr, "v")):
        if arr.ndim < 2:
            raise ValueError(f"{name} must have shape (..., t_k, dim), got shape {arr.shape}")
    exact = scaled_dot_product_attention(q_arr, k_arr, v_arr, is_causal=is_causal)  # checks shapes
    axis = {"token": -1, "channel": -2}
    k_q, k_s = quantize_int8(k_arr, axis=axis[key_mode])
    v_q, v_s = quantize_int8(v_arr, axis=axis[value_mode])
    k_hat, v_hat = dequantize_int8(k_q, k_s), dequantize_int8(v_q, v_s)
    approx = scaled_dot_product_attention(q_arr, k_hat, v_hat, is_causal=is_causal)

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        norm = float(np.linalg.norm(b))
        return float(np.linalg.norm(a - b)) / norm if norm else float(np.linalg.norm(a))

    elements = k_arr.size + v_arr.size
    return KVQuantReport(
        key_mode=key_mode,
        value_mode=value_mode,
        int8_bytes=k_q.nbytes + v_q.nbytes,
        scale_bytes=k_s.nbytes + v_s.nbytes,
        fp16_bytes=2 * elements,
        fp32_bytes=4 * elements,
        k_rel_error=rel(k_hat, k_arr),
        v_rel_error=rel(v_hat, v_arr),
        attention_rel_error=rel(approx, exact),
    )
