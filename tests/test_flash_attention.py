"""Tests for llmfund.flash_attention: exact tiled attention with the online softmax."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfund.attention import causal_mask, scaled_dot_product_attention
from llmfund.flash_attention import flash_attention

FAST = settings(max_examples=60, deadline=None)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def formula_attention(q, k, v, keep=None):
    """softmax(q k^T / sqrt(d)) v in float64, masked with -inf; empty rows give zeros."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if keep is not None:
        s = np.where(keep, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(m), m, 0.0))
    z = e.sum(axis=-1, keepdims=True)
    return (e / np.where(z == 0, 1.0, z)) @ v


@st.composite
def flash_case(draw):
    batch_q, batch_kv = draw(
        st.sampled_from([((), ()), ((2,), (2,)), ((2, 3), (2, 1)), ((1, 2), (3, 1))])
    )
    t_q = draw(st.integers(1, 40))
    t_k = draw(st.integers(1, 40))
    d_k = draw(st.integers(1, 8))
    d_v = draw(st.integers(1, 8))
    block = draw(st.integers(1, 45))
    causal = draw(st.booleans())
    scale = draw(st.sampled_from([0.1, 1.0, 5.0]))
    g = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q = scale * g.standard_normal(batch_q + (t_q, d_k))
    k = g.standard_normal(batch_kv + (t_k, d_k))
    v = g.standard_normal(batch_kv + (t_k, d_v))
    return q, k, v, block, causal


@FAST
@given(flash_case())
def test_flash_equals_sdpa(case):
    q, k, v, block, causal = case
    out = flash_attention(q, k, v, is_causal=causal, block_size=block)
    ref = scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    keep = causal_mask(q.shape[-2], k.shape[-2]) if causal else None
    np.testing.assert_allclose(out, formula_attention(q, k, v, keep), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("block", [1, 2, 3, 64, 1000])
def test_flash_causal_with_more_queries_than_keys_has_zero_rows(block):
    # Bottom-right alignment: the first t_q - t_k queries see no key and output zeros.
    g = rng(1)
    q = g.standard_normal((7, 4))
    k = g.standard_normal((3, 4))
    v = g.standard_normal((3, 5))
    out = flash_attention(q, k, v, is_causal=True, block_size=block)
    assert np.all(np.isfinite(out))
    assert np.all(out[:4] == 0.0)
    np.testing.assert_allclose(out, scaled_dot_product_attention(q, k, v, is_causal=True), rtol=1e-12)


def test_flash_online_rescaling_when_the_max_grows_block_after_block():
    # Scores increase key block after key block, so every block raises the running max and
    # the accumulated sum and output must be rescaled; scores ~1e4 would overflow exp without it.
    t, d = 32, 4
    q = np.zeros((3, d))
    q[:, 0] = [1.0, 10.0, 200.0]
    k = np.zeros((t, d))
    k[:, 0] = np.linspace(0, 100, t)
    v = rng(2).standard_normal((t, d))
    for block in (1, 4, 7, 32):
        out = flash_attention(q, k, v, block_size=block)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, formula_attention(q, k, v), rtol=1e-10, atol=1e-12)
    # ... and decreasing max (first block wins) as well.
    np.testing.assert_allclose(
        flash_attention(q, k[::-1], v[::-1], block_size=5), formula_attention(q, k[::-1], v[::-1]), rtol=1e-10
    )


def test_flash_decode_step_equals_full_attention():
    g = rng(3)
    q = g.standard_normal((2, 1, 8))
    k = g.standard_normal((2, 100, 8))
    v = g.standard_normal((2, 100, 8))
    np.testing.assert_allclose(
        flash_attention(q, k, v, is_causal=True, block_size=16), formula_attention(q, k, v), rtol=1e-12
    )


def test_flash_causal_output_ignores_the_future():
    g = rng(4)
    t, i = 50, 20
    q, k, v = g.standard_normal((3, t, 8))
    q2, k2, v2 = q.copy(), k.copy(), v.copy()
    for a in (q2, k2, v2):
        a[i + 1 :] = 100 * g.standard_normal(a[i + 1 :].shape)
    a = flash_attention(q, k, v, is_causal=True, block_size=8)
    b = flash_attention(q2, k2, v2, is_causal=True, block_size=8)
    np.testing.assert_array_equal(a[: i + 1], b[: i + 1])


@pytest.mark.parametrize("causal", [False, True])
def test_flash_dtypes(causal):
    q, k, v = rng(5).standard_normal((3, 2, 20, 8))
    ref = flash_attention(q, k, v, is_causal=causal, block_size=8)
    assert ref.dtype == np.float64
    for dtype, tol in [(np.float32, 1e-5), (np.float16, 3e-3)]:
        out = flash_attention(*(a.astype(dtype) for a in (q, k, v)), is_causal=causal, block_size=8)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, ref, atol=tol)
    assert flash_attention(q.astype(np.float32), k, v).dtype == np.float64
    ints = flash_attention([[1, 0]], [[1, 0], [0, 1]], [[1, 2], [3, 4]], block_size=1)
    assert ints.dtype == np.float64
    np.testing.assert_allclose(ints, formula_attention([[1, 0]], [[1, 0], [0, 1]], [[1, 2], [3, 4]]))


def test_flash_does_not_modify_inputs():
    g = rng(6)
    q, k, v = g.standard_normal((3, 2, 30, 4))
    copies = [a.copy() for a in (q, k, v)]
    flash_attention(q, k, v, is_causal=True, block_size=7)
    for a, c in zip((q, k, v), copies):
        np.testing.assert_array_equal(a, c)
    for dtype in (np.float64, np.float32):
        ro = [np.array(a, dtype=dtype) for a in (q, k, v)]
        for a in ro:
            a.flags.writeable = False
        flash_attention(*ro, is_causal=True, block_size=7)
        flash_attention(*ro, block_size=64)


@pytest.mark.parametrize("causal", [False, True])
def test_flash_never_materialises_the_score_matrix(causal):
    # numpy reports its allocations to tracemalloc, so the peak includes every temporary.
    t, d = 2048, 32
    q, k, v = rng(7).standard_normal((3, t, d))
    scores_bytes = t * t * q.itemsize  # 32 MiB of float64

    def peak(fn) -> int:
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    flash_peak = peak(lambda: flash_attention(q, k, v, is_causal=causal))
    assert flash_peak < scores_bytes / 16, (flash_peak, scores_bytes)
    if not causal:  # the measurement sees numpy: the dense kernel does hold t x t scores
        assert peak(lambda: scaled_dot_product_attention(q, k, v)) >= scores_bytes


@pytest.mark.parametrize(
    "block_size, err",
    [(0, ValueError), (-3, ValueError), (2.0, TypeError), (True, TypeError), ("8", TypeError), (None, TypeError)],
)
def test_flash_bad_block_size(block_size, err):
    q = rng(8).standard_normal((4, 4))
    with pytest.raises(err, match="block_size"):
        flash_attention(q, q, q, block_size=block_size)


def test_flash_accepts_numpy_integer_block_size():
    q, k, v = rng(9).standard_normal((3, 10, 4))
    np.testing.assert_allclose(
        flash_attention(q, k, v, block_size=np.int64(3)), formula_attention(q, k, v), rtol=1e-12
    )


@pytest.mark.parametrize("is_causal", [1, "yes", None])
def test_flash_is_causal_must_be_bool(is_causal):
    q = rng(10).standard_normal((3, 4))
    with pytest.raises(TypeError, match="is_causal"):
        flash_attention(q, q, q, is_causal=is_causal)


@pytest.mark.parametrize(
    "q_shape, k_shape, v_shape, match",
    [
        ((4, 8), (4, 6), (4, 8), "d_k"),
        ((4, 8), (5, 8), (4, 8), "v"),
        ((8,), (4, 8), (4, 8), "q"),
        ((4, 8), (8,), (4, 8), "k"),
        ((4, 8), (4, 8), (8,), "v"),
        ((2, 4, 8), (3, 4, 8), (3, 4, 8), "batch"),
        ((2, 4, 8), (1, 4, 8), (3, 4, 8), "batch"),
        ((0, 8), (4, 8), (4, 8), "non-empty"),
    ],
)
def test_flash_shape_errors(q_shape, k_shape, v_shape, match):
    g = rng(11)
    q, k, v = (g.standard_normal(s) for s in (q_shape, k_shape, v_shape))
    with pytest.raises(ValueError, match=match):
        flash_attention(q, k, v, is_causal=True)


@pytest.mark.parametrize("which", ["q", "k", "v"])
def test_flash_nan_input(which):
    arrays = dict(zip("qkv", rng(12).standard_normal((3, 4, 4))))
    arrays[which][1, 2] = np.nan
    with pytest.raises(ValueError, match=f"{which} contains NaN"):
        flash_attention(arrays["q"], arrays["k"], arrays["v"])
