"""int8 KV-cache quantisation: round trip, bytes, attention error, the quantised cache."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from llmfund.attention import scaled_dot_product_attention
from llmfund.kv_quant import (
    KVQuantReport,
    QuantizedKVCache,
    dequantize_int8,
    kv_quant_report,
    quantize_int8,
    synthetic_qkv,
)

# Normal float32 magnitudes (subnormal slices are tested on their own below).
_floats = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32).map(lambda f: 0.0 if abs(f) < 1e-30 else f)


# --- quantize / dequantize ------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=3, max_side=6), elements=_floats), st.sampled_from([-1, -2, None, (0, -1)]))
def test_round_trip_error_is_at_most_half_a_step(x, axis):
    q, scale = quantize_int8(x, axis=axis)
    assert q.dtype == np.int8 and q.shape == x.shape and scale.dtype == np.float32
    assert np.broadcast_shapes(q.shape, scale.shape) == x.shape
    assert q.min() >= -127 and q.max() <= 127  # symmetric: -128 unused
    x_hat = dequantize_int8(q, scale)
    bound = np.broadcast_to(scale / 2, x.shape) * (1 + 1e-5) + 1e-30
    assert (np.abs(x_hat - x) <= bound).all()
    # the largest magnitude of each slice is represented exactly as +-127 steps
    assert (np.abs(q).max(axis=axis) == np.where(np.abs(x).max(axis=axis) > 0, 127, 0)).all()


def test_scale_shapes_per_token_and_per_channel():
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    assert quantize_int8(x, axis=-1)[1].shape == (2, 5, 1)  # per token: one per (head, token)
    assert quantize_int8(x, axis=-2)[1].shape == (2, 1, 8)  # per channel: one per (head, channel)
    assert quantize_int8(x, axis=None)[1].shape == (1, 1, 1)  # per tensor


def test_rounds_to_nearest_and_clips():
    x = np.array([127.0, 63.4, 63.6, -0.4, -0.6, -127.0])
    q, scale = quantize_int8(x)
    assert float(scale[0]) == 1.0
    np.testing.assert_array_equal(q, [127, 63, 64, 0, -1, -127])


def test_all_zero_rows_have_scale_zero_and_no_nan():
    x = np.zeros((3, 4), dtype=np.float32)
    x[1] = [1.0, -2.0, 0.5, 0.0]
    q, scale = quantize_int8(x, axis=-1)
    assert scale[0, 0] == 0 and scale[2, 0] == 0 and not q[0].any() and not q[2].any()
    x_hat = dequantize_int8(q, scale)
    assert np.isfinite(x_hat).all() and not x_hat[0].any()


def test_a_slice_of_subnormals_does_not_collapse_to_zero():
    tiny = np.finfo(np.float32).smallest_subnormal
    x = np.array([[3 * tiny, -tiny, 0.0], [1.0, 0.5, 0.0]], dtype=np.float32)
    q, scale = quantize_int8(x, axis=-1)
    assert scale[0, 0] > 0 and q[0].tolist() == [3, -1, 0]
    np.testing.assert_array_equal(dequantize_int8(q, scale)[0], x[0])


def test_float64_stays_float64_and_float16_is_computed_in_float32():
    assert quantize_int8(np.ones((2, 2)))[1].dtype == np.float64
    assert quantize_int8(np.ones((2, 2), dtype=np.float16))[1].dtype == np.float32


def test_inputs_are_not_modified():
    x = np.random.default_rng(1).standard_normal((4, 6))
    before = x.copy()
    q, s = quantize_int8(x)
    dequantize_int8(q, s)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize(
    "x, axis, exc, words",
    [
        (np.array([1.0, np.nan]), -1, ValueError, "x contains NaN"),
        (np.array([1.0, np.inf]), -1, ValueError, "x must be finite"),
        (np.array(3.0), -1, ValueError, "at least 1 dimension"),
        (np.zeros((2, 0)), -1, ValueError, "non-empty"),
        (np.ones((2, 3)), 2, ValueError, "axis 2 is out of range"),
        (np.ones((2, 3)), (1, -1), ValueError, "repeated"),
        (np.ones((2, 3)), 1.0, TypeError, "axis must be an integer"),
        (["a", "b"], -1, TypeError, "x must be an array of numbers"),
    ],
)
def test_quantize_bad_input(x, axis, exc, words):
    with pytest.raises(exc, match=words):
        quantize_int8(x, axis=axis)


@pytest.mark.parametrize(
    "q, scale, exc, words",
    [
        (np.ones(3, dtype=np.int16), np.float32(1), TypeError, "q must be an int8 array, got dtype int16"),
        (np.ones(3, dtype=np.int8), np.float32(-1), ValueError, "scale must be >= 0"),
        (np.ones(3, dtype=np.int8), np.float32(np.nan), ValueError, "scale contains NaN"),
        (np.ones(3, dtype=np.int8), np.ones(4, dtype=np.float32), ValueError, "does not broadcast"),
        (np.ones((3, 1), dtype=np.int8), np.ones((1, 4), dtype=np.float32), ValueError, "does not broadcast"),
    ],
)
def test_dequantize_bad_input(q, scale, exc, words):
    with pytest.raises(exc, match=words):
        dequantize_int8(q, scale)


# --- the report: bytes and attention error -------------------------------------------------------

def test_report_bytes_arithmetic():
    h, t, d = 2, 64, 32
    q, k, v = synthetic_qkv(np.random.default_rng(2), t=t, head_dim=d, n_heads=h)
    r = kv_quant_report(q, k, v, key_mode="channel", value_mode="token")
    assert isinstance(r, KVQuantReport)
    assert r.int8_bytes == 2 * h * t * d  # one byte per element of K and V
    assert r.scale_bytes == 4 * (h * d + h * t)  # float32: K per channel, V per token
    assert r.fp16_bytes == 2 * 2 * h * t * d and r.fp32_bytes == 2 * r.fp16_bytes
    assert r.total_bytes == r.int8_bytes + r.scale_bytes
    assert r.ratio_vs_fp16 == pytest.approx(0.5 + (h * d + h * t) * 4 / r.fp16_bytes)
    both_token = kv_quant_report(q, k, v, key_mode="token", value_mode="token")
    assert both_token.scale_bytes == 4 * 2 * h * t


def test_attention_error_is_small_and_per_channel_keys_win_with_outlier_channels():
    q, k, v = synthetic_qkv(np.random.default_rng(3), t=256, head_dim=64, n_heads=2, outlier_channels=4)
    per_token = kv_quant_report(q, k, v, key_mode="token", is_causal=True)
    per_channel = kv_quant_report(q, k, v, key_mode="channel", is_causal=True)
    assert per_channel.attention_rel_error < 0.03 and per_token.attention_rel_error < 0.08
    assert per_channel.k_rel_error < 0.7 * per_token.k_rel_error
    assert per_channel.attention_rel_error < 0.7 * per_token.attention_rel_error
    assert per_channel.v_rel_error == per_token.v_rel_error  # values quantised the same way


def test_without_outliers_int8_attention_error_is_around_one_percent_either_way():
    q, k, v = synthetic_qkv(np.random.default_rng(4), t=128, head_dim=64, n_heads=2, outlier_channels=0)
    for mode in ("token", "channel"):
        assert kv_quant_report(q, k, v, key_mode=mode).attention_rel_error < 0.02


def test_report_bad_input():
    q, k, v = synthetic_qkv(np.random.default_rng(5), t=8, head_dim=4)
    with pytest.raises(ValueError, match="key_mode must be 'token' or 'channel', got 'row'"):
        kv_quant_report(q, k, v, key_mode="row")
    with pytest.raises(ValueError, match="same t_k as k"):
        kv_quant_report(q, k, v[:, :3])
    with pytest.raises(ValueError, match="k must have shape"):
        kv_quant_report(q, k[0, 0], v)


def test_synthetic_qkv_distribution_and_bad_input():
    q, k, v = synthetic_qkv(np.random.default_rng(6), t=4000, head_dim=16, n_heads=1, outlier_channels=2, outlier_scale=10.0)
    assert q.dtype == k.dtype == v.dtype == np.float32 and k.shape == (1, 4000, 16)
    std = k[0].std(axis=0)
    assert (std > 8).sum() == 2 and (std[std < 8] < 1.2).all()
    assert v.std() == pytest.approx(1, abs=0.05)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        synthetic_qkv(0, t=4)
    with pytest.raises(ValueError, match="outlier_channels must be <= head_dim=4, got 5"):
        synthetic_qkv(np.random.default_rng(0), t=4, head_dim=4, outlier_channels=5)
    with pytest.raises(ValueError, match="outlier_scale must be a finite number > 0"):
        synthetic_qkv(np.random.default_rng(0), t=4, outlier_scale=0.0)


# --- the quantised cache ------------------------------------------------------------------

@pytest.mark.parametrize("key_mode, value_mode", [("channel", "token"), ("token", "token"), ("channel", "channel")])
@pytest.mark.parametrize("sizes", [[1], [5, 1, 30], [70]])
def test_quantized_cache_matches_direct_quantisation_of_groups(key_mode, value_mode, sizes):
    group = 16
    _, k, v = synthetic_qkv(np.random.default_rng(7), t=70, head_dim=8, n_heads=2)
    cache = QuantizedKVCache(key_mode, value_mode, group_size=group)
    start = 0
    while start < 70:
        n = min(sizes[0], 70 - start)
        sizes = sizes[1:] + sizes[:1]
        k_hat, v_hat = cache.update(k[:, start : start + n], v[:, start : start + n])
        start += n
        assert len(cache) == start and k_hat.shape == (2, start, 8) and k_hat.dtype == np.float32
    for x, x_hat, mode in ((k, k_hat, key_mode), (v, v_hat, value_mode)):
        if mode == "token":
            expected = dequantize_int8(*quantize_int8(x, axis=-1))
            np.testing.assert_array_equal(x_hat, expected)
        else:
            n_full = 70 // group * group  # 64 quantised in groups of 16; the last 6 still exact
            grouped = x[:, :n_full].reshape(2, n_full // group, group, 8)
            expected = dequantize_int8(*quantize_int8(grouped, axis=-2)).reshape(2, n_full, 8)
            np.testing.assert_array_equal(x_hat[:, :n_full], expected)
            np.testing.assert_array_equal(x_hat[:, n_full:], x[:, n_full:])


def test_quantized_cache_bytes_and_attention():
    h, t, d = 4, 128, 64
    q, k, v = synthetic_qkv(np.random.default_rng(8), t=t, head_dim=d, n_heads=h)
    cache = QuantizedKVCache(group_size=32)  # keys per channel, values per token
    k_hat, v_hat = cache.update(k, v)
    codes = 2 * h * t * d
    scales = 4 * (h * (t // 32) * d + h * t)
    assert cache.nbytes == codes + scales
    assert cache.nbytes < 0.3 * (k.nbytes + v.nbytes)  # vs float32: about a quarter
    exact = scaled_dot_product_attention(q, k, v, is_causal=True)
    approx = scaled_dot_product_attention(q, k_hat, v_hat, is_causal=True)
    assert np.linalg.norm(approx - exact) / np.linalg.norm(exact) < 0.03


def test_quantized_cache_appending_never_changes_old_tokens():
    _, k, v = synthetic_qkv(np.random.default_rng(9), t=64, head_dim=8)
    cache = QuantizedKVCache(group_size=16)
    k1, v1 = cache.update(k[:, :32], v[:, :32])
    k2, v2 = cache.update(k[:, 32:] * 100, v[:, 32:] * 100)  # much larger new tokens
    np.testing.assert_array_equal(k2[:, :32], k1)
    np.testing.assert_array_equal(v2[:, :32], v1)


def test_quantized_cache_float16_and_all_zero():
    cache = QuantizedKVCache(group_size=2)
    k_hat, v_hat = cache.update(np.zeros((1, 3, 4), dtype=np.float16), np.zeros((1, 3, 4), dtype=np.float16))
    assert k_hat.dtype == np.float16 and not k_hat.any() and not v_hat.any()
    # residual token kept as float16: 1 * 4 * 2 bytes; quantised: 2 * 4 codes + 4 scales * 4 bytes
    assert cache._k.nbytes == 8 + 8 + 16


def test_quantized_cache_bad_input_leaves_it_unchanged():
    cache = QuantizedKVCache()
    k, v = np.ones((2, 3, 8)), np.ones((2, 3, 8))
    cache.update(k, v)
    before = (len(cache), cache.nbytes)
    bad = [
        ((np.ones((2, 1, 4)), np.ones((2, 1, 8))), ValueError, r"k_new has shape \(2, 1, 4\) but the cache holds shape \(2, t, 8\)"),
        ((np.ones((2, 1, 8)), np.ones((2, 2, 8))), ValueError, "same leading dimensions"),
        ((np.full((2, 1, 8), np.inf), np.ones((2, 1, 8))), ValueError, "k_new must be finite"),
        ((np.ones((2, 0, 8)), np.ones((2, 0, 8))), ValueError, "at least one token"),
        ((np.ones(8), np.ones(8)), ValueError, "must have shape"),
    ]
    for args, exc, words in bad:
        with pytest.raises(exc, match=words):
            cache.update(*args)
        assert (len(cache), cache.nbytes) == before
    for kwargs, exc, words in (
        ({"key_mode": "tensor"}, ValueError, "key_mode must be 'token' or 'channel'"),
        ({"value_mode": None}, ValueError, "value_mode"),
        ({"group_size": 0}, ValueError, "group_size must be >= 1"),
    ):
        with pytest.raises(exc, match=words):
            QuantizedKVCache(**kwargs)
