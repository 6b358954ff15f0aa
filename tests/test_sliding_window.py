"""Sliding-window attention, the rolling KV cache and chunked prefill."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfund.attention import causal_mask, scaled_dot_product_attention
from llmfund.kv_cache import KVCache
from llmfund.sliding_window import RollingKVCache, sliding_window_attention, sliding_window_mask


def _qkv(seed: int, t: int, d: int = 8, heads: int = 2, dtype=np.float64):
    q, k, v = np.random.default_rng(seed).standard_normal((3, heads, t, d))
    return q.astype(dtype), k.astype(dtype), v.astype(dtype)


def _chunks(t: int, sizes: list[int]) -> list[tuple[int, int]]:
    """Split range(t) into consecutive chunks, cycling through ``sizes``."""
    out, start, i = [], 0, 0
    while start < t:
        end = min(t, start + sizes[i % len(sizes)])
        out.append((start, end))
        start, i = end, i + 1
    return out


# --- the mask -----------------------------------------------------------------------------

@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 15))
def test_mask_matches_the_definition_elementwise(t_q, t_k, window):
    mask = sliding_window_mask(t_q, t_k, window)
    assert mask.shape == (t_q, t_k) and mask.dtype == bool
    for i in range(t_q):
        p = t_k - t_q + i  # bottom-right aligned query position
        for j in range(t_k):
            assert mask[i, j] == (p - window < j <= p)
    assert (mask.sum(axis=-1) <= window).all()


@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 5))
def test_mask_with_a_window_as_long_as_the_keys_is_causal(t_q, t_k, extra):
    np.testing.assert_array_equal(sliding_window_mask(t_q, t_k, t_k + extra), causal_mask(t_q, t_k))


def test_mask_window_one_is_the_diagonal():
    np.testing.assert_array_equal(sliding_window_mask(4, 4, 1), np.eye(4, dtype=bool))


@pytest.mark.reference
def test_mask_matches_hugging_face_sliding_window_definition():
    """transformers' ``masking_utils``: causal ``kv_idx <= q_idx`` and ``kv_idx > q_idx - window``."""
    torch = pytest.importorskip("torch")
    masking_utils = pytest.importorskip("transformers.masking_utils")
    if not hasattr(masking_utils, "sliding_window_causal_mask_function"):
        pytest.skip("this transformers has no masking_utils.sliding_window_causal_mask_function")
    t = 9
    q_idx, kv_idx = torch.arange(t)[:, None], torch.arange(t)[None, :]
    for window in (1, 3, 4, 20):
        fn = masking_utils.sliding_window_causal_mask_function(window)
        hf = fn(torch.tensor(0), torch.tensor(0), q_idx, kv_idx).numpy()
        np.testing.assert_array_equal(sliding_window_mask(t, t, window), hf)


@pytest.mark.parametrize(
    "args, exc, words",
    [
        ((3, 3, 0), ValueError, "window must be >= 1, got 0"),
        ((3, 3, 2.0), TypeError, "window must be an integer"),
        ((0, 3, 2), ValueError, "t_q must be >= 1"),
        ((3, True, 2), TypeError, "t_k must be an integer"),
    ],
)
def test_mask_bad_input(args, exc, words):
    with pytest.raises(exc, match=words):
        sliding_window_mask(*args)


# --- full-sequence attention --------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(0, 10), st.integers(1, 50), st.integers(1, 20), st.integers(0, 99))
def test_banded_attention_equals_masked_attention(t_q, extra_keys, window, block, seed):
    t_k = t_q + extra_keys
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((2, t_q, 4))
    k, v = rng.standard_normal((2, 2, t_k, 4))
    out = sliding_window_attention(q, k, v, window, block_size=block)
    ref = scaled_dot_product_attention(q, k, v, mask=sliding_window_mask(t_q, t_k, window))
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def test_more_queries_than_keys_gives_zero_rows_for_the_queries_before_the_start():
    q, k, v = _qkv(0, 6)
    out = sliding_window_attention(q, k[:, :4], v[:, :4], window=3, block_size=2)
    ref = scaled_dot_product_attention(q, k[:, :4], v[:, :4], mask=sliding_window_mask(6, 4, 3))
    np.testing.assert_allclose(out, ref)
    assert not out[:, :2].any()


def test_window_at_least_t_is_causal_attention_and_float32_stays_float32():
    q, k, v = _qkv(1, 30, dtype=np.float32)
    out = sliding_window_attention(q, k, v, window=30, block_size=7)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, scaled_dot_product_attention(q, k, v, is_causal=True), rtol=1e-5, atol=1e-6)


def test_attention_inputs_are_not_modified():
    q, k, v = _qkv(2, 10)
    copies = [a.copy() for a in (q, k, v)]
    sliding_window_attention(q, k, v, window=4)
    for a, b in zip((q, k, v), copies):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"window": 0}, ValueError, "window must be >= 1"),
        ({"window": 3, "block_size": 0}, ValueError, "block_size must be >= 1"),
        ({"window": "4"}, TypeError, "window must be an integer"),
    ],
)
def test_attention_bad_arguments(kwargs, exc, words):
    q, k, v = _qkv(3, 5)
    with pytest.raises(exc, match=words):
        sliding_window_attention(q, k, v, **kwargs)


def test_attention_bad_shapes():
    q, k, v = _qkv(3, 5)
    with pytest.raises(ValueError, match="same last dimension d_k"):
        sliding_window_attention(q, k[..., :3], v, window=2)
    with pytest.raises(ValueError, match="same t_k as k"):
        sliding_window_attention(q, k, v[:, :4], window=2)
    with pytest.raises(ValueError, match="q contains NaN"):
        sliding_window_attention(np.full_like(q, np.nan), k, v, window=2)


# --- the rolling cache --------------------------------------------------------------------

@pytest.mark.parametrize("window", [1, 3, 8, 40])
def test_decoding_token_by_token_matches_full_sliding_window_attention(window):
    t = 30
    q, k, v = _qkv(4, t)
    full = sliding_window_attention(q, k, v, window)
    cache = RollingKVCache(window)
    outs = []
    for i in range(t):
        k_vis, v_vis = cache.update(k[:, i : i + 1], v[:, i : i + 1])
        assert k_vis.shape[-2] == min(i + 1, window)  # exactly what the query sees: no mask needed
        outs.append(scaled_dot_product_attention(q[:, i : i + 1], k_vis, v_vis))
        assert len(cache) == i + 1 and cache.held == min(i + 1, window)
    np.testing.assert_allclose(np.concatenate(outs, axis=-2), full, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(cache.k, k[:, t - min(t, window) :])
    np.testing.assert_array_equal(cache.v, v[:, t - min(t, window) :])
    np.testing.assert_array_equal(cache.positions, np.arange(t - min(t, window), t))


def test_memory_is_constant_once_past_the_window():
    window, t = 8, 50
    _, k, v = _qkv(5, t, dtype=np.float32)
    cache, full = RollingKVCache(window), KVCache()
    sizes = []
    for i in range(t):
        cache.update(k[:, i : i + 1], v[:, i : i + 1])
        full.update(k[:, i : i + 1], v[:, i : i + 1])
        sizes.append(cache.nbytes)
    per_token = 2 * 2 * 8 * 4  # K and V, 2 heads, head_dim 8, float32
    assert sizes[:window] == [per_token * (i + 1) for i in range(window)]
    assert set(sizes[window - 1 :]) == {per_token * window}
    assert full.nbytes == per_token * t
    # and the buffer itself never grows past window slots
    assert cache._k.shape[-2] == window and cache._v.shape[-2] == window


@pytest.mark.parametrize("sizes", [[1], [3], [8], [5, 1, 11], [20], [64]])
def test_chunked_prefill_through_the_rolling_cache_matches_all_at_once(sizes):
    window, t = 8, 45
    q, k, v = _qkv(6, t)
    full = sliding_window_attention(q, k, v, window)
    cache, outs = RollingKVCache(window), []
    for a, b in _chunks(t, sizes):  # chunks smaller than, equal to and larger than the window
        k_vis, v_vis = cache.update(k[:, a:b], v[:, a:b])
        assert k_vis.shape[-2] == min(a, window - 1) + (b - a)
        np.testing.assert_array_equal(k_vis, k[:, a - min(a, window - 1) : b])
        outs.append(sliding_window_attention(q[:, a:b], k_vis, v_vis, window))
    np.testing.assert_allclose(np.concatenate(outs, axis=-2), full, rtol=1e-12, atol=1e-12)
    # same cache as all at once
    once = RollingKVCache(window)
    once.update(k, v)
    np.testing.assert_array_equal(cache.k, once.k)
    np.testing.assert_array_equal(cache.v, once.v)
    assert len(cache) == len(once) == t and cache.nbytes == once.nbytes


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.lists(st.integers(1, 15), min_size=1, max_size=8))
def test_rolling_cache_always_holds_the_last_window_tokens(window, lengths):
    total = sum(lengths)
    x = np.arange(total, dtype=np.float64).reshape(total, 1)
    cache, start = RollingKVCache(window), 0
    for n in lengths:
        k_vis, _ = cache.update(x[start : start + n], -x[start : start + n])
        past = min(start, window - 1)
        np.testing.assert_array_equal(k_vis[:, 0], np.arange(start - past, start + n))
        start += n
        np.testing.assert_array_equal(cache.k[:, 0], np.arange(max(0, start - window), start))
        np.testing.assert_array_equal(cache.v[:, 0], -np.arange(max(0, start - window), start))


def test_rolling_cache_keeps_float16_and_returns_new_arrays():
    cache = RollingKVCache(4)
    k = np.ones((1, 3, 2), dtype=np.float16)
    k_vis, v_vis = cache.update(k, k)
    assert cache.dtype == np.float16 and k_vis.dtype == np.float16
    k_vis[...] = 7  # the caller's array, not the cache's buffer
    assert (cache.k == 1).all()
    k_vis, _ = cache.update(np.zeros((1, 1, 2)), np.zeros((1, 1, 2)))  # float64 is cast to the cache dtype
    assert k_vis.dtype == np.float16


def test_rolling_cache_bad_input_leaves_it_unchanged():
    cache = RollingKVCache(3)
    cache.update(np.zeros((2, 4, 8)), np.ones((2, 4, 8)))
    before = (cache.k.copy(), cache.v.copy(), len(cache))
    bad = [
        ((np.zeros((2, 1, 16)), np.zeros((2, 1, 8))), ValueError, "k_new has shape"),
        ((np.zeros((3, 1, 8)), np.zeros((3, 1, 8))), ValueError, "cache holds keys of shape \\(2, t, 8\\)"),
        ((np.zeros((2, 1, 8)), np.zeros((2, 2, 8))), ValueError, "same leading dimensions and length t_new"),
        ((np.zeros((2, 0, 8)), np.zeros((2, 0, 8))), ValueError, "at least one token"),
        ((np.zeros(8), np.zeros(8)), ValueError, "must have shape"),
        ((np.full((2, 1, 8), np.nan), np.zeros((2, 1, 8))), ValueError, "k_new contains NaN"),
        ((np.zeros((2, 1, 8)), [["a"]]), TypeError, "v_new must be an array of numbers"),
    ]
    for args, exc, words in bad:
        with pytest.raises(exc, match=words):
            cache.update(*args)
        np.testing.assert_array_equal(cache.k, before[0])
        np.testing.assert_array_equal(cache.v, before[1])
        assert len(cache) == before[2]


def test_rolling_cache_bad_window_and_empty_reads():
    for window, exc in ((0, ValueError), (2.5, TypeError), (None, TypeError)):
        with pytest.raises(exc, match="window"):
            RollingKVCache(window)
    cache = RollingKVCache(2)
    assert len(cache) == 0 and cache.held == 0 and cache.nbytes == 0
    with pytest.raises(ValueError, match="empty"):
        cache.k


# --- chunked prefill with the plain KV cache ------------------------------------------------

@pytest.mark.parametrize("sizes", [[1], [7], [16], [3, 10, 1], [100]])
def test_chunked_prefill_with_kv_cache_and_causal_attention_matches_one_pass(sizes):
    """A long prompt fed in chunks gives the same cache and outputs as one prefill.

    Each chunk's queries are the last rows of the keys seen so far, which is exactly the
    bottom-right alignment of ``is_causal=True`` (vLLM's chunked prefill, Sarathi).
    """
    t = 37
    q, k, v = _qkv(7, t, dtype=np.float32)
    full = scaled_dot_product_attention(q, k, v, is_causal=True)
    cache, outs = KVCache(capacity=4), []
    for a, b in _chunks(t, sizes):
        k_all, v_all = cache.update(k[:, a:b], v[:, a:b])
        outs.append(scaled_dot_product_attention(q[:, a:b], k_all, v_all, is_causal=True))
    np.testing.assert_allclose(np.concatenate(outs, axis=-2), full, rtol=1e-5, atol=1e-6)
    once = KVCache()
    once.update(k, v)
    np.testing.assert_array_equal(cache.k, once.k)
    np.testing.assert_array_equal(cache.v, once.v)
    assert len(cache) == t and cache.nbytes == once.nbytes
