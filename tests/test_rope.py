"""Tests for llmfund.rope: rotary position embedding, its frequencies, sinusoidal encodings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmfund.rope import apply_rope, rope_frequencies, sinusoidal_position_encoding

FAST = settings(max_examples=50, deadline=None)
LAYOUTS = ["half", "interleaved"]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def rope_by_pairs(x, positions, base=10000.0, layout="half"):
    """RoPE as the paper writes it: a 2x2 rotation per pair, one pair and one row at a time."""
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[-1]
    out = x.copy()
    for r, m in enumerate(positions):
        for i in range(d // 2):
            a, b = (i, i + d // 2) if layout == "half" else (2 * i, 2 * i + 1)
            angle = m * base ** (-2 * i / d)
            c, s = np.cos(angle), np.sin(angle)
            xa, xb = x[..., r, a], x[..., r, b]
            out[..., r, a] = c * xa - s * xb
            out[..., r, b] = s * xa + c * xb
    return out


# --------------------------------------------------------------------------------------------
# rope_frequencies
# --------------------------------------------------------------------------------------------


def test_rope_frequencies_values():
    np.testing.assert_allclose(rope_frequencies(8), [1.0, 0.1, 0.01, 0.001], rtol=1e-15)
    theta = rope_frequencies(128, base=500000.0)
    assert theta.shape == (64,) and theta.dtype == np.float64
    np.testing.assert_allclose(theta, 500000.0 ** (-np.arange(0, 128, 2) / 128), rtol=1e-15)
    assert theta[0] == 1.0 and np.all(np.diff(theta) < 0)


@pytest.mark.parametrize(
    "head_dim, base, err, match",
    [
        (7, 10000.0, ValueError, "head_dim"),
        (0, 10000.0, ValueError, "head_dim"),
        (-4, 10000.0, ValueError, "head_dim"),
        (8.0, 10000.0, TypeError, "head_dim"),
        (True, 10000.0, TypeError, "head_dim"),
        (8, 0.0, ValueError, "base"),
        (8, -10.0, ValueError, "base"),
        (8, np.inf, ValueError, "base"),
        (8, np.nan, ValueError, "base"),
        (8, "10000", TypeError, "base"),
        (8, True, TypeError, "base"),
    ],
)
def test_rope_frequencies_errors(head_dim, base, err, match):
    with pytest.raises(err, match=match):
        rope_frequencies(head_dim, base)


# --------------------------------------------------------------------------------------------
# apply_rope
# --------------------------------------------------------------------------------------------


def test_apply_rope_known_rotation():
    np.testing.assert_allclose(apply_rope([[1.0, 0.0]], positions=[1]), [[np.cos(1), np.sin(1)]], rtol=1e-15)
    # half layout: pairs (0, 2) and (1, 3); pair 0 turns 2 rad at position 2, pair 1 by 2/100.
    x = np.array([[1.0, 0.0, 0.0, 1.0]])
    got = apply_rope(x, positions=[2])
    np.testing.assert_allclose(got, [[np.cos(2), -np.sin(0.02), np.sin(2), np.cos(0.02)]], rtol=1e-14)
    # interleaved layout: pairs (0, 1) and (2, 3).
    got = apply_rope(x, positions=[2], layout="interleaved")
    np.testing.assert_allclose(got, [[np.cos(2), np.sin(2), -np.sin(0.02), np.cos(0.02)]], rtol=1e-14)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_apply_rope_equals_pairwise_rotation(layout):
    g = rng(1)
    x = g.standard_normal((2, 3, 5, 8))  # (b, heads, t, head_dim)
    positions = [0, 1, 7, 2.5, 1000]
    np.testing.assert_allclose(
        apply_rope(x, positions, base=100.0, layout=layout),
        rope_by_pairs(x, positions, base=100.0, layout=layout),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_apply_rope_default_positions_and_position_zero(layout):
    x = rng(2).standard_normal((3, 6, 16))
    np.testing.assert_array_equal(apply_rope(x, layout=layout), apply_rope(x, np.arange(6), layout=layout))
    np.testing.assert_array_equal(apply_rope(x[:, :1], [0], layout=layout), x[:, :1])  # angle 0


def test_interleaved_is_half_with_permuted_dimensions():
    # Gathering even dims then odd dims turns interleaved pairs (2i, 2i+1) into (i, i + d/2).
    x = rng(3).standard_normal((4, 10))
    perm = np.r_[0:10:2, 1:10:2]
    inverse = np.argsort(perm)
    pos = np.array([0.0, 3.0, 11.0, 0.25])
    np.testing.assert_allclose(
        apply_rope(x, pos, layout="interleaved"), apply_rope(x[:, perm], pos)[:, inverse], rtol=1e-14
    )
    assert not np.allclose(apply_rope(x, pos, layout="interleaved"), apply_rope(x, pos))


@st.composite
def rope_case(draw):
    d = 2 * draw(st.integers(1, 16))
    t = draw(st.integers(1, 6))
    layout = draw(st.sampled_from(LAYOUTS))
    base = draw(st.sampled_from([10.0, 10000.0, 500000.0]))
    g = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = g.standard_normal((2, t, d))
    positions = draw(st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=t, max_size=t))
    return x, np.array(positions), layout, base


@FAST
@given(rope_case())
def test_apply_rope_preserves_norms(case):
    x, positions, layout, base = case
    y = apply_rope(x, positions, base=base, layout=layout)
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-12)


@FAST
@given(rope_case(), st.floats(-1e4, 1e4, allow_nan=False), st.floats(-1e4, 1e4, allow_nan=False))
def test_apply_rope_composes_rotations(case, a, b):
    # R(a) then R(b) is R(a + b): fractional positions included.
    x, _, layout, base = case
    t = x.shape[-2]
    pa, pb = np.full(t, a), np.full(t, b)
    twice = apply_rope(apply_rope(x, pa, base=base, layout=layout), pb, base=base, layout=layout)
    np.testing.assert_allclose(twice, apply_rope(x, pa + pb, base=base, layout=layout), atol=1e-8)


@FAST
@given(
    st.integers(1, 16),
    st.sampled_from(LAYOUTS),
    st.integers(-500, 500),
    st.integers(-500, 500),
    st.integers(-5000, 5000),
    st.integers(0, 2**32 - 1),
)
def test_rope_scores_depend_only_on_relative_position(half_d, layout, m, n, s, seed):
    # <rope(q, m), rope(k, n)> == <rope(q, m + s), rope(k, n + s)> (Su et al., 2021, eq. 16).
    g = np.random.default_rng(seed)
    q, k = g.standard_normal((2, 1, 2 * half_d))
    score = (apply_rope(q, [m], layout=layout) @ apply_rope(k, [n], layout=layout).T).item()
    shifted = (apply_rope(q, [m + s], layout=layout) @ apply_rope(k, [n + s], layout=layout).T).item()
    assert shifted == pytest.approx(score, rel=1e-9, abs=1e-9)
    # ... and equals rotating k alone by the offset n - m.
    relative = (q @ apply_rope(k, [n - m], layout=layout).T).item()
    assert relative == pytest.approx(score, rel=1e-9, abs=1e-9)


def test_apply_rope_with_a_cache_uses_absolute_positions():
    # Rotating the new token at its absolute position == the same row of the full sequence.
    x = rng(4).standard_normal((2, 9, 8))
    full = apply_rope(x)
    np.testing.assert_allclose(apply_rope(x[:, 6:], positions=[6, 7, 8]), full[:, 6:], rtol=1e-14)


def test_apply_rope_dtypes():
    x = rng(5).standard_normal((3, 4, 32))
    pos = np.array([0, 10, 1000, 100000])
    ref = apply_rope(x, pos)
    assert ref.dtype == np.float64
    out32 = apply_rope(x.astype(np.float32), pos)
    assert out32.dtype == np.float32
    # Angles are computed in float64: at position 1e5 a float32 angle would be off by ~4e-3 rad.
    np.testing.assert_allclose(out32, ref, atol=2e-6)
    out16 = apply_rope(x.astype(np.float16), pos)
    assert out16.dtype == np.float32
    np.testing.assert_allclose(out16, apply_rope(x.astype(np.float16).astype(np.float32), pos))
    ints = apply_rope([[1, 0], [0, 1]])
    assert ints.dtype == np.float64
    # float32 positions are accepted (and used as float64 from there on).
    np.testing.assert_allclose(apply_rope(x, pos.astype(np.float32)), ref, rtol=1e-14)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_apply_rope_does_not_modify_inputs(layout):
    x = rng(6).standard_normal((2, 5, 8))
    pos = np.array([3.0, 1.0, 4.0, 1.5, 9.0])
    copies = x.copy(), pos.copy()
    y = apply_rope(x, pos, layout=layout)
    np.testing.assert_array_equal(x, copies[0])
    np.testing.assert_array_equal(pos, copies[1])
    assert not np.shares_memory(y, x)
    for dtype in (np.float64, np.float32):
        ro = x.astype(dtype)
        ro.flags.writeable = False
        ro_pos = pos.copy()
        ro_pos.flags.writeable = False
        apply_rope(ro, ro_pos, layout=layout)


@pytest.mark.parametrize(
    "x_shape, kwargs, err, match",
    [
        ((4, 7), {}, ValueError, "head_dim"),  # odd head_dim
        ((4, 0), {}, ValueError, "head_dim"),
        ((8,), {}, ValueError, "x"),  # 1-D x
        ((), {}, ValueError, "x"),
        ((4, 8), {"positions": [0, 1, 2]}, ValueError, "positions"),  # length != t
        ((4, 8), {"positions": np.zeros((1, 4))}, ValueError, "positions"),
        ((4, 8), {"positions": 3}, ValueError, "positions"),
        ((4, 8), {"positions": [0, 1, np.nan, 3]}, ValueError, "positions"),
        ((4, 8), {"positions": [0, 1, np.inf, 3]}, ValueError, "positions"),
        ((4, 8), {"positions": ["a", "b", "c", "d"]}, TypeError, "positions"),
        ((4, 8), {"base": 0.0}, ValueError, "base"),
        ((4, 8), {"base": -1.0}, ValueError, "base"),
        ((4, 8), {"base": np.nan}, ValueError, "base"),
        ((4, 8), {"base": "1e4"}, TypeError, "base"),
        ((4, 8), {"layout": "neox"}, ValueError, "layout"),
        ((4, 8), {"layout": None}, ValueError, "layout"),
    ],
)
def test_apply_rope_errors(x_shape, kwargs, err, match):
    x = rng(7).standard_normal(x_shape)
    with pytest.raises(err, match=match):
        apply_rope(x, **kwargs)


@pytest.mark.parametrize("bad, match", [(np.nan, "x contains NaN"), (np.inf, "x must be finite")])
def test_apply_rope_nan_or_inf_x(bad, match):
    x = np.zeros((3, 4))
    x[1, 2] = bad
    with pytest.raises(ValueError, match=match):
        apply_rope(x)


def test_apply_rope_refuses_non_numeric_x():
    with pytest.raises(TypeError, match="x"):
        apply_rope([["a", "b"]])


# --------------------------------------------------------------------------------------------
# sinusoidal_position_encoding
# --------------------------------------------------------------------------------------------


def test_sinusoidal_position_encoding_formula():
    pe = sinusoidal_position_encoding(50, 16, base=100.0)
    assert pe.shape == (50, 16) and pe.dtype == np.float64
    pos = np.arange(50)[:, None]
    i = np.arange(8)[None, :]
    np.testing.assert_allclose(pe[:, 0::2], np.sin(pos / 100.0 ** (2 * i / 16)), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(pe[:, 1::2], np.cos(pos / 100.0 ** (2 * i / 16)), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(pe[0], np.tile([0.0, 1.0], 8))


def test_sinusoidal_offset_is_a_rotation():
    # pe[pos + k] is pe[pos] with each (sin, cos) pair rotated by k * theta_i, for every pos.
    pe = sinusoidal_position_encoding(40, 8)
    k = 5
    theta = rope_frequencies(8)
    c, s = np.cos(k * theta), np.sin(k * theta)
    sin, cos = pe[:-k, 0::2], pe[:-k, 1::2]
    np.testing.assert_allclose(pe[k:, 0::2], sin * c + cos * s, atol=1e-12)
    np.testing.assert_allclose(pe[k:, 1::2], cos * c - sin * s, atol=1e-12)


@pytest.mark.parametrize(
    "t, d_model, base, err, match",
    [
        (0, 8, 1e4, ValueError, "t"),
        (4, 7, 1e4, ValueError, "d_model"),
        (4, 0, 1e4, ValueError, "d_model"),
        (4.0, 8, 1e4, TypeError, "t"),
        (4, True, 1e4, TypeError, "d_model"),
        (4, 8, 0.0, ValueError, "base"),
    ],
)
def test_sinusoidal_errors(t, d_model, base, err, match):
    with pytest.raises(err, match=match):
        sinusoidal_position_encoding(t, d_model, base=base)
