"""Tests for llmfund.kv_cache: the KV-cache size formula and the growing KVCache."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfund.attention import scaled_dot_product_attention
from llmfund.kv_cache import KVCache, kv_cache_bytes
from llmfund.rope import apply_rope

FAST = settings(max_examples=40, deadline=None)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------
# kv_cache_bytes
# --------------------------------------------------------------------------------------------


def test_kv_cache_bytes_llama2_7b_is_one_gib():
    n = kv_cache_bytes(1, 32, 32, 2048, 128, 2)
    assert type(n) is int
    assert n == 1_073_741_824 == 2**30  # K and V both: 2 * 32 * 32 * 2048 * 128 * 2


@pytest.mark.parametrize(
    "args, expected",
    [
        ((1, 32, 8, 2048, 128, 2), 2**28),  # GQA with 8 KV heads: 4x smaller
        ((1, 32, 32, 2048, 128), 2**30),  # fp16 is the default
        ((4, 32, 32, 2048, 128, 4), 2**33),  # fp32, batch 4
        ((1, 32, 32, 2048, 128, 0.5), 2**28),  # 4-bit
        ((1, 1, 1, 1, 1, 1), 2),  # one K and one V number
        ((1, 1, 1, 1, 1, 0.5), 1),
        ((1, 1, 1, 1, 1, 0.25), 1),  # half a byte rounds up to a whole byte
        ((1, 1, 1, 3, 1, 0.25), 2),  # 1.5 bytes -> 2
        ((np.int64(2), np.int32(3), 1, 5, 7, np.float32(1.0)), 2 * 2 * 3 * 5 * 7),
    ],
)
def test_kv_cache_bytes_values(args, expected):
    n = kv_cache_bytes(*args)
    assert type(n) is int
    assert n == expected


def test_kv_cache_bytes_is_exact_for_huge_sizes():
    # Python ints: no float rounding or int64 overflow, even beyond 2**63.
    n = kv_cache_bytes(10**6, 10**3, 10**3, 10**6, 10**3, 0.5)
    assert n == 10**21
    assert kv_cache_bytes(3, 5, 7, 11, 13, 0.5) == math.ceil(2 * 3 * 5 * 7 * 11 * 13 / 2)


@FAST
@given(
    st.lists(st.integers(1, 10_000), min_size=5, max_size=5),
    st.sampled_from([0.5, 1, 2, 4, 1.5]),
)
def test_kv_cache_bytes_formula(sizes, bpe):
    assert kv_cache_bytes(*sizes, bpe) == math.ceil(2 * math.prod(sizes) * Fraction(bpe))


NAMES = ["batch", "n_layers", "n_kv_heads", "seq_len", "head_dim"]


@pytest.mark.parametrize("position, name", list(enumerate(NAMES)))
@pytest.mark.parametrize(
    "bad, err",
    [(0, ValueError), (-1, ValueError), (2.0, TypeError), (2.5, TypeError), (True, TypeError), ("2", TypeError), (None, TypeError)],
)
def test_kv_cache_bytes_bad_sizes(position, name, bad, err):
    args = [1, 2, 2, 16, 8]
    args[position] = bad
    with pytest.raises(err, match=name):
        kv_cache_bytes(*args, 2)


@pytest.mark.parametrize(
    "bad, err",
    [(0, ValueError), (-2, ValueError), (0.0, ValueError), (np.nan, ValueError), (np.inf, ValueError),
     (True, TypeError), ("2", TypeError), (None, TypeError)],
)
def test_kv_cache_bytes_bad_bytes_per_element(bad, err):
    with pytest.raises(err, match="bytes_per_element"):
        kv_cache_bytes(1, 2, 2, 16, 8, bad)


# --------------------------------------------------------------------------------------------
# KVCache
# --------------------------------------------------------------------------------------------


def test_kvcache_appends_along_time_axis():
    g = rng(1)
    cache = KVCache()
    assert len(cache) == 0 and cache.dtype is None and cache.nbytes == 0
    k0, v0 = g.standard_normal((2, 2, 5, 4))  # (heads, t, head_dim): prefill 5 tokens
    k, v = cache.update(k0, v0)
    np.testing.assert_array_equal(k, k0)
    np.testing.assert_array_equal(v, v0)
    k1, v1 = g.standard_normal((2, 2, 1, 4))
    k, v = cache.update(k1, v1)
    assert len(cache) == 6 and k.shape == v.shape == (2, 6, 4)
    np.testing.assert_array_equal(k, np.concatenate([k0, k1], axis=-2))
    np.testing.assert_array_equal(v, np.concatenate([v0, v1], axis=-2))
    np.testing.assert_array_equal(cache.k, k)
    np.testing.assert_array_equal(cache.v, v)


@st.composite
def update_sequence(draw):
    lead = draw(st.sampled_from([(), (3,), (2, 2)]))
    head_dim = draw(st.integers(1, 5))
    d_v = draw(st.integers(1, 5))
    lengths = draw(st.lists(st.integers(1, 20), min_size=1, max_size=12))
    capacity = draw(st.integers(1, 20))
    return lead, head_dim, d_v, lengths, capacity, draw(st.integers(0, 2**32 - 1))


@FAST
@given(update_sequence())
def test_kvcache_equals_concatenation_of_updates(case):
    lead, head_dim, d_v, lengths, capacity, seed = case
    g = np.random.default_rng(seed)
    cache = KVCache(capacity=capacity)
    ks, vs = [], []
    for n in lengths:
        ks.append(g.standard_normal(lead + (n, head_dim)))
        vs.append(g.standard_normal(lead + (n, d_v)))
        k, v = cache.update(ks[-1], vs[-1])
        np.testing.assert_array_equal(k, np.concatenate(ks, axis=-2))
        np.testing.assert_array_equal(v, np.concatenate(vs, axis=-2))
        assert len(cache) == sum(a.shape[-2] for a in ks)
    assert cache.nbytes == k.nbytes + v.nbytes


def test_kvcache_returns_read_only_views_and_stores_a_copy():
    cache = KVCache()
    k_new, v_new = np.ones((2, 3, 4))
    k, v = cache.update(k_new, v_new)
    assert not k.flags.writeable and not v.flags.writeable
    with pytest.raises(ValueError):
        k[0, 0] = 5.0
    # The caller's arrays are neither modified nor aliased.
    k_new[...] = 7.0
    np.testing.assert_array_equal(cache.k, np.ones((3, 4)))
    assert not np.shares_memory(cache.k, k_new)


def test_kvcache_does_not_modify_inputs():
    g = rng(2)
    k_new, v_new = g.standard_normal((2, 4, 3, 8))
    copies = k_new.copy(), v_new.copy()
    k_new.flags.writeable = False
    v_new.flags.writeable = False
    cache = KVCache(capacity=1)
    cache.update(k_new, v_new)
    cache.update(k_new, v_new)  # grows; still reads only
    np.testing.assert_array_equal(k_new, copies[0])
    np.testing.assert_array_equal(v_new, copies[1])


def test_kvcache_dtype_is_fixed_by_the_first_update():
    for dtype in (np.float16, np.float32, np.float64):
        cache = KVCache()
        k, v = cache.update(np.zeros((1, 4), dtype), np.zeros((1, 4), dtype))
        assert cache.dtype == dtype and k.dtype == dtype and v.dtype == dtype  # fp16 stays fp16
        k, v = cache.update(np.ones((1, 4)), np.ones((1, 4)))  # float64 is cast to the cache's
        assert k.dtype == dtype
        np.testing.assert_array_equal(k[1], np.ones(4))
    cache = KVCache()
    k, v = cache.update([[1, 2]], [[3, 4]])  # array-likes; integers become float64
    assert cache.dtype == np.float64
    np.testing.assert_array_equal(v, [[3.0, 4.0]])


def test_kvcache_separate_value_dimension():
    cache = KVCache()
    k, v = cache.update(np.zeros((2, 3, 8)), np.zeros((2, 3, 5)))
    k, v = cache.update(np.ones((2, 1, 8)), np.ones((2, 1, 5)))
    assert k.shape == (2, 4, 8) and v.shape == (2, 4, 5)


def _filled_cache():
    g = rng(3)
    cache = KVCache(capacity=4)
    cache.update(g.standard_normal((2, 3, 8)), g.standard_normal((2, 3, 6)))
    cache.update(g.standard_normal((2, 1, 8)), g.standard_normal((2, 1, 6)))  # exactly full
    return cache


@pytest.mark.parametrize(
    "k_shape, v_shape, match",
    [
        ((2, 1, 4), (2, 1, 6), "k_new"),  # head_dim disagrees with the cache
        ((2, 1, 8), (2, 1, 4), "v_new"),  # d_v disagrees
        ((3, 1, 8), (3, 1, 6), "k_new"),  # leading (heads) shape disagrees
        ((1, 2, 1, 8), (1, 2, 1, 6), "k_new"),
        ((1, 8), (1, 6), "k_new"),
        ((2, 2, 8), (2, 1, 6), "k_new and v_new"),  # k and v lengths differ
        ((2, 1, 8), (3, 1, 6), "k_new and v_new"),  # k and v leading shapes differ
        ((2, 0, 8), (2, 0, 6), "k_new"),  # no token
        ((8,), (6,), "k_new"),  # 1-D
        ((2, 1, 8), (6,), "v_new"),
    ],
)
def test_kvcache_rejected_update_leaves_the_cache_unchanged(k_shape, v_shape, match):
    cache = _filled_cache()
    before_k, before_v, before_len = cache.k.copy(), cache.v.copy(), len(cache)
    with pytest.raises(ValueError, match=match):
        cache.update(np.full(k_shape, 9.0), np.full(v_shape, 9.0))
    assert len(cache) == before_len == 4
    np.testing.assert_array_equal(cache.k, before_k)
    np.testing.assert_array_equal(cache.v, before_v)
    # ... and it still works: the next good update lands right after the old contents.
    k, v = cache.update(np.full((2, 1, 8), 1.5), np.full((2, 1, 6), 2.5))
    assert len(cache) == 5
    np.testing.assert_array_equal(k[:, :4], before_k)
    np.testing.assert_array_equal(v[:, :4], before_v)
    assert np.all(k[:, 4] == 1.5) and np.all(v[:, 4] == 2.5)


@pytest.mark.parametrize("which", ["k_new", "v_new"])
def test_kvcache_nan_update_is_rejected(which):
    cache = _filled_cache()
    before_k, before_v = cache.k.copy(), cache.v.copy()
    k_new, v_new = np.zeros((2, 1, 8)), np.zeros((2, 1, 6))
    (k_new if which == "k_new" else v_new)[1, 0, 2] = np.nan
    with pytest.raises(ValueError, match=f"{which} contains NaN"):
        cache.update(k_new, v_new)
    assert len(cache) == 4
    np.testing.assert_array_equal(cache.k, before_k)
    np.testing.assert_array_equal(cache.v, before_v)
    with pytest.raises(ValueError, match="k_new contains NaN"):
        cache.update(k_new.astype(np.float16) * np.nan, v_new)


def test_kvcache_rejected_first_update_leaves_it_empty():
    cache = KVCache()
    with pytest.raises(ValueError, match="k_new and v_new"):
        cache.update(np.zeros((3, 4)), np.zeros((2, 4)))
    assert len(cache) == 0 and cache.dtype is None
    with pytest.raises(ValueError, match="empty"):
        cache.k
    with pytest.raises(TypeError, match="k_new"):
        cache.update([["a"]], [[1.0]])
    k, _ = cache.update(np.ones((1, 4)), np.ones((1, 4)))
    assert len(cache) == 1 and k.shape == (1, 4)


@pytest.mark.parametrize("capacity, err", [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError)])
def test_kvcache_bad_capacity(capacity, err):
    with pytest.raises(err, match="capacity"):
        KVCache(capacity=capacity)


def test_kvcache_growth_is_amortised():
    # 1000 single-token updates must reallocate O(log n) times (doubling), not every step.
    # A reallocation shows as a returned view that no longer shares memory with the previous one
    # (the previous view is kept alive, so its memory cannot be reused).
    cache = KVCache(capacity=1)
    prev = None
    reallocations = 0
    for step in range(1000):
        k, v = cache.update(np.full((2, 1, 4), step, float), np.full((2, 1, 4), -step, float))
        if prev is not None and not np.may_share_memory(k, prev):
            reallocations += 1
        prev = k
    assert len(cache) == 1000
    np.testing.assert_array_equal(cache.k[0, :, 0], np.arange(1000))
    assert reallocations <= 2 * math.ceil(math.log2(1000)), reallocations
    assert reallocations >= 5  # from capacity 1 it must have grown


def test_kvcache_growth_allocates_linear_total(monkeypatch):
    # Count the numbers allocated for buffers: O(n) in total, not O(n^2) as re-concatenating
    # the cache at every step would.
    import llmfund.kv_cache as kv_module

    copied = 0
    real_empty = np.empty

    class CountingNumpy:
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def empty(shape, dtype=float):
            nonlocal copied
            copied += int(np.prod(shape))
            return real_empty(shape, dtype=dtype)

    monkeypatch.setattr(kv_module, "np", CountingNumpy())
    cache = KVCache(capacity=1)
    n = 1000
    for _ in range(n):
        cache.update(np.zeros((1, 4)), np.zeros((1, 4)))
    # Allocated numbers (K and V) across all buffers: at most ~4x the final size with doubling.
    assert 2 * 4 * n <= copied <= 2 * 4 * 4 * n, copied


def test_cached_decoding_equals_full_causal_attention():
    # Prefill a prompt, then decode one token at a time attending to the cache: identical to
    # causal attention over the whole sequence (the bottom-right aligned mask), with RoPE
    # applied at absolute positions.
    g = rng(4)
    heads, t, d = 2, 12, 8
    q, k, v = g.standard_normal((3, heads, t, d))
    q, k = apply_rope(q), apply_rope(k)
    full = scaled_dot_product_attention(q, k, v, is_causal=True)

    cache = KVCache()
    prompt = 5
    ks, vs = cache.update(k[:, :prompt], v[:, :prompt])
    outs = [scaled_dot_product_attention(q[:, :prompt], ks, vs, is_causal=True)]
    for i in range(prompt, t):
        ks, vs = cache.update(k[:, i : i + 1], v[:, i : i + 1])
        outs.append(scaled_dot_product_attention(q[:, i : i + 1], ks, vs, is_causal=True))
    np.testing.assert_allclose(np.concatenate(outs, axis=-2), full, rtol=1e-12, atol=1e-14)


def test_kvcache_repr():
    cache = KVCache()
    assert "len=0" in repr(cache)
    cache.update(np.zeros((2, 3, 4), np.float32), np.zeros((2, 3, 4), np.float32))
    assert "len=3" in repr(cache) and "(2, 3, 4)" in repr(cache) and "float32" in repr(cache)
