r"""The KV cache: keep past keys and values so each decode step computes only the new token's.

In autoregressive decoding, token $t$'s query attends to the keys and values of tokens
$0..t$. Those of tokens $0..t-1$ were already computed at earlier steps and do not change
(causal attention: a token never looks ahead), so a model stores them. The price is memory:
two tensors (K and V) per layer, growing with every token, which :func:`kv_cache_bytes`
computes exactly.
"""

from __future__ import annotations

import math
from fractions import Fraction
import numpy as np
from numpy.typing import ArrayLike

from . import _checks


def kv_cache_bytes(
    batch: int,
    n_layers: int,
    n_kv_heads: int,
    seq_len: int,
    head_dim: int,
    bytes_per_element: float = 2,
) -> int:
    r"""Bytes of a KV cache: K **and** V, for every layer, head and cached token.

    Parameters
    ----------
    batch : int
        Sequences cached at once (>= 1).
    n_layers : int
        Transformer layers (>= 1); each keeps its own K and V.
    n_kv_heads : int
        Key/value heads per layer (>= 1): ``n_heads`` for MHA, fewer for GQA, 1 for MQA.
    seq_len : int
        Cached tokens per sequence (>= 1).
    head_dim : int
        Dimension of one head (>= 1).
    bytes_per_element : float, default 2
        Storage per number (> 0): 4 for fp32, 2 for fp16/bf16, 1 for int8/fp8, 0.5 for 4-bit.

    Returns
    -------
    int
        $2 \cdot b \cdot L \cdot H_{kv} \cdot S \cdot d_h \cdot \text{bytes}$, rounded up to a
        whole byte.

    Raises
    ------
    TypeError
        If a size is not an integer or ``bytes_per_element`` is not a number.
    ValueError
        If a size is < 1 or ``bytes_per_element <= 0``.

    Notes
    -----
    The leading 2 counts K and V. Divide by $2^{30}$ for GiB, by $10^9$ for GB. Example: a
    Llama-2-7B-like model (32 layers, 32 KV heads of 128 dimensions) at 2048 tokens in fp16
    needs exactly 1 GiB per sequence — not "≈536 MB", which counts only one of K and V.
    Scales (for quantised caches) are not included.

    Examples
    --------
    >>> from llmfund import kv_cache_bytes
    >>> n = kv_cache_bytes(1, 32, 32, 2048, 128, 2)
    >>> print(n, n / 2**30)
    1073741824 1.0
    >>> kv_cache_bytes(1, 32, 8, 2048, 128, 2) // 2**20  # GQA with 8 KV heads: 4x smaller, MiB
    256
    """
    sizes = {"batch": batch, "n_layers": n_layers, "n_kv_heads": n_kv_heads, "seq_len": seq_len, "head_dim": head_dim}
    elements = 2
    for name, value in sizes.items():
        elements *= _checks.integer(value, name, minimum=1)
    bpe = _checks.real(bytes_per_element, "bytes_per_element")
    if not bpe > 0 or not math.isfinite(bpe):
        raise ValueError(f"bytes_per_element must be a finite number > 0, got {bytes_per_element}")
    # Exact rational arithmetic: Python ints never overflow and 0.5 is exact, so 4-bit
    # caches of any size come out to the byte.
    return math.ceil(elements * Fraction(bpe))


class KVCache:
    r"""A growing cache of keys and values for one attention layer.

    Parameters
    ----------
    capacity : int, default 16
        Initial room, in tokens (>= 1). The buffer doubles when full, so appending ``n``
        tokens one at a time copies O(n) numbers in total (amortised O(1) per token), not
        O(n²) as re-concatenating the whole cache every step would.

    Attributes
    ----------
    dtype : numpy.dtype or None
        Storage dtype, fixed by the first update (``None`` before it). Later updates are cast
        to it, so a float16 cache stays float16.

    Notes
    -----
    K and V are stored as (..., t, head_dim) and (..., t, d_v); the time axis is -2, as in
    Hugging Face's ``DynamicCache`` (batch, heads, seq, head_dim). The first update fixes the
    leading shape and the last dimensions; every later update must agree. An update is
    checked in full before anything is written, so a rejected update leaves the cache as it
    was. The arrays returned are read-only views of the buffer: valid until the next update.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund import KVCache
    >>> cache = KVCache()
    >>> k, v = cache.update(np.zeros((2, 5, 4)), np.zeros((2, 5, 4)))  # prefill 5 tokens, 2 heads
    >>> k, v = cache.update(np.ones((2, 1, 4)), np.ones((2, 1, 4)))    # one decode step
    >>> print(len(cache), k.shape, v.shape)
    6 (2, 6, 4) (2, 6, 4)
    >>> print(k[0, :, 0])
    [0. 0. 0. 0. 0. 1.]
    """

    def __init__(self, capacity: int = 16) -> None:
        self._capacity = _checks.integer(capacity, "capacity", minimum=1)
        self._k: np.ndarray | None = None
        self._v: np.ndarray | None = None
        self._len = 0
        self.dtype: np.dtype | None = None

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        shape = None if self._k is None else self._k.shape[:-2] + (self._len,) + self._k.shape[-1:]
        return f"KVCache(len={self._len}, k_shape={shape}, dtype={self.dtype})"

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached tokens (K and V), excluding unused reserved room."""
        if self._k is None or self._v is None:
            return 0
        per_token = (self._k[..., :1, :].nbytes + self._v[..., :1, :].nbytes)
        return per_token * self._len

    def update(self, k_new: ArrayLike, v_new: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Append new keys and values along the time axis and return the whole cache.

        Parameters
        ----------
        k_new : array_like, shape (..., t_new, head_dim)
            Keys of the new tokens (``t_new >= 1``).
        v_new : array_like, shape (..., t_new, d_v)
            Values of the same tokens.

        Returns
        -------
        k, v : ndarray, shapes (..., t, head_dim) and (..., t, d_v)
            Read-only views of every cached token, the new ones last.

        Raises
        ------
        ValueError
            If ``k_new`` or ``v_new`` is less than 2-D, contains NaN, their ``t_new`` differ
            or is 0, their leading dimensions differ, or they disagree with what is cached
            (leading shape, ``head_dim``, ``d_v``). The cache is then unchanged.

        Examples
        --------
        >>> import numpy as np
        >>> from llmfund import KVCache
        >>> cache = KVCache()
        >>> _ = cache.update(np.zeros((3, 8)), np.zeros((3, 8)))
        >>> cache.update(np.zeros((1, 4)), np.zeros((1, 8)))
        Traceback (most recent call last):
        ...
        ValueError: k_new has shape (1, 4) but the cache holds keys of shape (..., t, 8): (3, 8)
        >>> len(cache)
        3
        """
        k_new = _checks.kv_array(k_new, "k_new")
        v_new = _checks.kv_array(v_new, "v_new")
        if k_new.shape[:-2] != v_new.shape[:-2] or k_new.shape[-2] != v_new.shape[-2]:
            raise ValueError(
                f"k_new and v_new must have the same leading dimensions and length t_new, "
                f"got k_new {k_new.shape} and v_new {v_new.shape}"
            )
        if self._k is not None and self._v is not None:
            for new, old, name, what in ((k_new, self._k, "k_new", "keys"), (v_new, self._v, "v_new", "values")):
                if new.shape[:-2] != old.shape[:-2] or new.shape[-1] != old.shape[-1]:
                    cached = old.shape[:-2] + (self._len,) + old.shape[-1:]
                    raise ValueError(
                        f"{name} has shape {new.shape} but the cache holds {what} of shape "
                        f"(..., t, {old.shape[-1]}): {cached}"
                    )
        # All checks passed: from here on nothing can fail half-way.
        t_new = k_new.shape[-2]
        if self._k is None:
            self.dtype = k_new.dtype if k_new.dtype == v_new.dtype else np.result_type(k_new, v_new)
            cap = max(self._capacity, t_new)
            self._k = np.empty(k_new.shape[:-2] + (cap, k_new.shape[-1]), dtype=self.dtype)
            self._v = np.empty(v_new.shape[:-2] + (cap, v_new.shape[-1]), dtype=self.dtype)
        elif self._len + t_new > self._k.shape[-2]:
            self._grow(self._len + t_new)
        assert self._k is not None and self._v is not None
        self._k[..., self._len : self._len + t_new, :] = k_new
        self._v[..., self._len : self._len + t_new, :] = v_new
        self._len += t_new
        return self.k, self.v

    @property
    def k(self) -> np.ndarray:
        """Read-only view of the cached keys, shape (..., t, head_dim)."""
        return self._view(self._k)

    @property
    def v(self) -> np.ndarray:
        """Read-only view of the cached values, shape (..., t, d_v)."""
        return self._view(self._v)

    def _view(self, buf: np.ndarray | None) -> np.ndarray:
        if buf is None:
            raise ValueError("the cache is empty: call update() first")
        view = buf[..., : self._len, :]
        view.flags.writeable = False
        return view

    def _grow(self, needed: int) -> None:
        """Double the buffers (at least to ``needed``), copying the cached part once."""
        assert self._k is not None and self._v is not None
        cap = max(needed, 2 * self._k.shape[-2])
        for attr in ("_k", "_v"):
            old = getattr(self, attr)
            new = np.empty(old.shape[:-2] + (cap, old.shape[-1]), dtype=old.dtype)
            new[..., : self._len, :] = old[..., : self._len, :]
            setattr(self, attr, new)
