"""Tests for llmfund.attention: softmax, causal masks, scaled dot-product and multi-head attention.

The oracle for attention is always the formula written out in the test (or ``naive_attention``,
itself checked against the formula here), never the function under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from llmfund.attention import (
    attention_weights,
    causal_mask,
    log_softmax,
    multi_head_attention,
    naive_attention,
    scaled_dot_product_attention,
    softmax,
)

FAST = settings(max_examples=40, deadline=None)

finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False, width=64)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Read-only copies: any in-place write by the function under test raises."""
    out = []
    for a in arrays:
        a = np.array(a)
        a.flags.writeable = False
        out.append(a)
    return tuple(out)


def formula_attention(q, k, v, keep=None):
    """softmax(q k^T / sqrt(d)) v in float64, masked with -inf; empty rows give zeros."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if keep is not None:
        s = np.where(keep, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(s - m)
    z = e.sum(axis=-1, keepdims=True)
    return (e / np.where(z == 0, 1.0, z)) @ v


# --------------------------------------------------------------------------------------------
# softmax / log_softmax
# --------------------------------------------------------------------------------------------


def test_softmax_known_values():
    np.testing.assert_allclose(
        softmax([1.0, 2.0, 3.0]), np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-15
    )
    np.testing.assert_allclose(softmax([0.0, 0.0, 0.0, 0.0]), [0.25] * 4, rtol=0)


@FAST
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=finite),
       st.floats(-1e3, 1e3))
def test_softmax_rows_sum_to_one_and_shift_invariant(x, c):
    p = softmax(x)
    assert p.shape == x.shape
    assert np.all(p >= 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(softmax(x + c), p, rtol=1e-9, atol=1e-12)
    # log_softmax is log(softmax) where nothing underflows, and also shift-invariant.
    np.testing.assert_allclose(log_softmax(x), np.log(p), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(log_softmax(x + c), log_softmax(x), rtol=1e-9, atol=1e-9)


def test_softmax_axis():
    x = rng().standard_normal((3, 5))
    np.testing.assert_allclose(softmax(x, axis=0), softmax(x.T).T, rtol=1e-15)
    np.testing.assert_allclose(log_softmax(x, axis=0), log_softmax(x.T).T, rtol=1e-15)
    np.testing.assert_allclose(softmax(x, axis=0).sum(axis=0), 1.0, rtol=1e-12)


@pytest.mark.parametrize(
    "x, p, lp",
    [
        ([1e4, 0.0, -np.inf], [1.0, 0.0, 0.0], [0.0, -1e4, -np.inf]),
        ([-1e4, 0.0, -np.inf], [0.0, 1.0, 0.0], [-1e4, 0.0, -np.inf]),
        ([1e300, 0.0, -1e300], [1.0, 0.0, 0.0], [0.0, -1e300, -2e300]),
        ([-np.inf, -1e4, -np.inf], [0.0, 1.0, 0.0], [-np.inf, 0.0, -np.inf]),
    ],
)
def test_softmax_extreme_values_are_exact(x, p, lp):
    # One dominant entry: the naive exp(x) / sum(exp(x)) gives inf/inf = NaN here.
    got = softmax(x)
    assert np.all(np.isfinite(got))
    assert got.tolist() == p
    assert log_softmax(x).tolist() == lp
    finite = np.array(x)[np.isfinite(x)]
    if np.all(np.abs(finite) < 1e38):  # representable in float32: same exact answer there
        p32 = softmax(np.array(x, dtype=np.float32))
        assert p32.dtype == np.float32 and p32.tolist() == p


def test_softmax_one_finite_entry_among_minus_inf():
    x = np.array([[-np.inf, 3.0, -np.inf], [-np.inf, -np.inf, -1e4], [1e4, -np.inf, -np.inf]])
    p = softmax(x)
    assert p.tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    assert log_softmax(x).tolist() == [
        [-np.inf, 0.0, -np.inf],
        [-np.inf, -np.inf, 0.0],
        [0.0, -np.inf, -np.inf],
    ]


def test_log_softmax_keeps_probabilities_softmax_underflows():
    lp = log_softmax([0.0, -1000.0])
    assert lp.tolist() == [0.0, -1000.0]  # log(softmax) would give -inf for the second
    assert softmax([0.0, -1000.0])[1] == 0.0


@pytest.mark.parametrize("fn", [softmax, log_softmax])
def test_softmax_all_minus_inf_row_is_an_error(fn):
    with pytest.raises(ValueError, match="all -inf"):
        fn([[0.0, 1.0], [-np.inf, -np.inf]])


@pytest.mark.parametrize("fn", [softmax, log_softmax])
@pytest.mark.parametrize(
    "bad, err, match",
    [
        ([0.0, np.nan], ValueError, "NaN"),
        ([0.0, np.inf], ValueError, r"\+inf"),
        ([], ValueError, "empty"),
        (3.0, ValueError, "scalar"),
        (["a", "b"], TypeError, "x"),
        ([1 + 2j, 0], TypeError, "real"),
    ],
)
def test_softmax_bad_input(fn, bad, err, match):
    with pytest.raises(err, match=match):
        fn(bad)


@pytest.mark.parametrize("fn", [softmax, log_softmax])
def test_softmax_dtypes(fn):
    x = np.array([[0.5, -1.0, 2.0]])
    assert fn(x).dtype == np.float64
    assert fn(x.astype(np.float32)).dtype == np.float32
    assert fn(x.astype(np.float16)).dtype == np.float32
    assert fn([[1, 2, 3]]).dtype == np.float64
    np.testing.assert_allclose(fn(x.astype(np.float32)), fn(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fn", [softmax, log_softmax])
def test_softmax_does_not_modify_input(fn):
    x = rng().standard_normal((4, 6))
    original = x.copy()
    fn(x)
    np.testing.assert_array_equal(x, original)
    (ro,) = frozen(x)
    np.testing.assert_allclose(fn(ro), fn(original))
    x32 = x.astype(np.float32)
    copy32 = x32.copy()
    fn(x32)
    np.testing.assert_array_equal(x32, copy32)


# --------------------------------------------------------------------------------------------
# causal_mask
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("t_q, t_k", [(1, 1), (3, 3), (1, 5), (2, 5), (5, 5), (5, 2), (7, 130)])
def test_causal_mask_bottom_right_aligned(t_q, t_k):
    mask = causal_mask(t_q, t_k)
    assert mask.dtype == np.bool_ and mask.shape == (t_q, t_k)
    for i in range(t_q):
        absolute = t_k - t_q + i  # query i sits at this position of the sequence
        for j in range(t_k):
            assert mask[i, j] == (j <= absolute)


def test_causal_mask_square_is_lower_triangle():
    np.testing.assert_array_equal(causal_mask(6, 6), np.tril(np.ones((6, 6), dtype=bool)))
    assert causal_mask(1, 4).tolist() == [[True] * 4]  # a decode step sees everything cached
    assert causal_mask(3, 1).tolist() == [[False], [False], [True]]


@pytest.mark.parametrize(
    "t_q, t_k, err, match",
    [
        (0, 3, ValueError, "t_q"),
        (3, 0, ValueError, "t_k"),
        (-1, 3, ValueError, "t_q"),
        (2.0, 3, TypeError, "t_q"),
        (True, 3, TypeError, "t_q"),
        (3, "4", TypeError, "t_k"),
    ],
)
def test_causal_mask_bad_sizes(t_q, t_k, err, match):
    with pytest.raises(err, match=match):
        causal_mask(t_q, t_k)


def test_causal_mask_accepts_numpy_integers():
    np.testing.assert_array_equal(causal_mask(np.int64(3), np.int32(4)), causal_mask(3, 4))


# --------------------------------------------------------------------------------------------
# attention_weights
# --------------------------------------------------------------------------------------------


def test_attention_weights_formula():
    q, k = rng(1).standard_normal((2, 2, 5, 8))
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(8)
    expected = np.exp(s) / np.exp(s).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(attention_weights(q, k), expected, rtol=1e-12)


def test_attention_weights_mask_and_causal_both_apply():
    q, k = rng(2).standard_normal((2, 4, 8))
    mask = np.array([True, False, True, True])  # a padding mask over keys, broadcast to rows
    alpha = attention_weights(q, k, mask=mask, is_causal=True)
    keep = mask[None, :] & np.tril(np.ones((4, 4), dtype=bool))
    assert np.all(alpha[~keep] == 0.0)
    np.testing.assert_allclose(alpha.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(alpha, formula_weights(q, k, keep), rtol=1e-12)


def formula_weights(q, k, keep):
    s = np.where(keep, q @ k.T / np.sqrt(q.shape[-1]), -np.inf)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_attention_weights_row_with_no_key_is_zero():
    q, k = rng(3).standard_normal((2, 3, 4))
    mask = np.array([[True, True, False], [False, False, False], [False, True, True]])
    alpha = attention_weights(q, k, mask=mask)
    assert np.all(np.isfinite(alpha))
    assert alpha[1].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(alpha[[0, 2]].sum(axis=-1), 1.0)
    # The causal mask with t_q > t_k leaves the first rows empty too.
    alpha = attention_weights(rng(4).standard_normal((4, 4)), k, is_causal=True)
    assert np.all(alpha[0] == 0.0)
    np.testing.assert_allclose(alpha[1:].sum(axis=-1), 1.0)


def test_attention_weights_no_overflow_with_large_scores():
    q = np.array([[1e3, 0.0], [0.0, 1e3]])
    k = np.array([[1e3, 0.0], [0.0, 1e3]])
    alpha = attention_weights(q, k)
    assert alpha.tolist() == [[1.0, 0.0], [0.0, 1.0]]


# --------------------------------------------------------------------------------------------
# scaled_dot_product_attention vs the textbook
# --------------------------------------------------------------------------------------------


@st.composite
def qkv_and_mask(draw, *, one_key_per_row: bool = True):
    """Random q, k, v with batch dims, t_q != t_k allowed, and a random boolean mask."""
    batch = draw(st.sampled_from([(), (2,), (2, 3)]))
    t_q = draw(st.integers(1, 9))
    t_k = draw(st.integers(1, 9))
    d_k = draw(st.integers(1, 8))
    d_v = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    g = np.random.default_rng(seed)
    scale = draw(st.sampled_from([0.1, 1.0, 10.0]))
    q = scale * g.standard_normal(batch + (t_q, d_k))
    k = g.standard_normal(batch + (t_k, d_k))
    v = g.standard_normal(batch + (t_k, d_v))
    mask = g.random(batch + (t_q, t_k)) < draw(st.sampled_from([0.3, 0.7, 1.0]))
    if one_key_per_row:
        cols = g.integers(0, t_k, size=batch + (t_q,))
        np.put_along_axis(mask, cols[..., None], True, axis=-1)
    return q, k, v, mask


@FAST
@given(qkv_and_mask())
def test_sdpa_equals_naive_attention_random_masks(args):
    q, k, v, mask = args
    fast = scaled_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(fast, naive_attention(q, k, v, mask=mask), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast, formula_attention(q, k, v, mask), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        scaled_dot_product_attention(q, k, v), naive_attention(q, k, v), rtol=1e-10, atol=1e-12
    )


@FAST
@given(qkv_and_mask(one_key_per_row=False))
def test_sdpa_empty_rows_give_zero_output(args):
    q, k, v, mask = args
    out = scaled_dot_product_attention(q, k, v, mask=mask)
    assert np.all(np.isfinite(out))
    empty = ~mask.any(axis=-1)
    assert np.all(out[empty] == 0.0)
    np.testing.assert_allclose(out, formula_attention(q, k, v, mask), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "t_q, t_k", [(1, 1), (5, 5), (1, 300), (3, 300), (260, 260), (129, 257), (260, 130), (257, 1)]
)
def test_sdpa_causal_fast_path_equals_explicit_mask(t_q, t_k):
    # is_causal without a mask takes a blocked path that skips the upper triangle; it must
    # equal the plain masked computation, including t_q > t_k (leading rows empty -> 0).
    g = rng(5)
    q = g.standard_normal((2, t_q, 16))
    k = g.standard_normal((2, t_k, 16))
    v = g.standard_normal((2, t_k, 8))
    keep = causal_mask(t_q, t_k)
    out = scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(out, formula_attention(q, k, v, keep), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        out, scaled_dot_product_attention(q, k, v, mask=keep), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        out,
        scaled_dot_product_attention(q, k, v, mask=np.ones((t_q, t_k), bool), is_causal=True),
        rtol=1e-10,
        atol=1e-12,
    )
    if t_q > t_k:
        assert np.all(out[:, : t_q - t_k] == 0.0)


def test_sdpa_mask_and_causal_both_apply():
    g = rng(6)
    q, k, v = g.standard_normal((3, 6, 4))
    mask = g.random((6, 6)) < 0.6
    out = scaled_dot_product_attention(q, k, v, mask=mask, is_causal=True)
    keep = mask & np.tril(np.ones((6, 6), bool))
    np.testing.assert_allclose(out, formula_attention(q, k, v, keep), rtol=1e-12, atol=1e-14)


def test_sdpa_first_causal_token_sees_only_itself():
    q, k, v = rng(7).standard_normal((3, 4, 8))
    out = scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(out[0], v[0], rtol=1e-14)


def test_sdpa_decode_step_sees_every_key():
    # One new query against t_k cached keys: causal (bottom-right) == no mask at all.
    g = rng(8)
    q = g.standard_normal((2, 1, 8))
    k = g.standard_normal((2, 9, 8))
    v = g.standard_normal((2, 9, 8))
    np.testing.assert_allclose(
        scaled_dot_product_attention(q, k, v, is_causal=True),
        scaled_dot_product_attention(q, k, v),
        rtol=1e-13,
    )


@st.composite
def causal_change(draw):
    t = draw(st.integers(2, 160))
    i = draw(st.integers(0, t - 2))
    d = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    return t, i, d, seed


@FAST
@given(causal_change())
def test_sdpa_causal_output_ignores_the_future(args):
    t, i, d, seed = args
    g = np.random.default_rng(seed)
    q, k, v = g.standard_normal((3, 2, t, d))
    q2, k2, v2 = q.copy(), k.copy(), v.copy()
    # Change every token after i (its query, key and value), drastically.
    q2[..., i + 1 :, :] = 100 * g.standard_normal(q2[..., i + 1 :, :].shape)
    k2[..., i + 1 :, :] = 100 * g.standard_normal(k2[..., i + 1 :, :].shape)
    v2[..., i + 1 :, :] = 100 * g.standard_normal(v2[..., i + 1 :, :].shape)
    a = scaled_dot_product_attention(q, k, v, is_causal=True)
    b = scaled_dot_product_attention(q2, k2, v2, is_causal=True)
    np.testing.assert_array_equal(a[..., : i + 1, :], b[..., : i + 1, :])
    assert not np.allclose(a[..., i + 1 :, :], b[..., i + 1 :, :])


def test_sdpa_broadcasts_shared_kv_heads():
    g = rng(9)
    q = g.standard_normal((2, 4, 5, 8))  # (b, heads, t, d)
    k = g.standard_normal((2, 1, 5, 8))  # one KV head for all four query heads
    v = g.standard_normal((2, 1, 5, 3))
    out = scaled_dot_product_attention(q, k, v, is_causal=True)
    rep = scaled_dot_product_attention(q, np.repeat(k, 4, axis=1), np.repeat(v, 4, axis=1), is_causal=True)
    assert out.shape == (2, 4, 5, 3)
    np.testing.assert_allclose(out, rep, rtol=1e-14)


def test_sdpa_large_scores_are_stable():
    g = rng(10)
    q, k, v = g.standard_normal((3, 6, 8))
    out = scaled_dot_product_attention(1e3 * q, 1e3 * k, v)
    assert np.all(np.isfinite(out))
    # Scores ~1e6: each row is (almost exactly) the value of its best-matching key.
    best = np.argmax(q @ k.T, axis=-1)
    np.testing.assert_allclose(out, v[best], atol=1e-12)
    out32 = scaled_dot_product_attention(*(a.astype(np.float32) for a in (1e3 * q, 1e3 * k, v)))
    assert np.all(np.isfinite(out32))


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_dtypes(causal):
    q, k, v = rng(11).standard_normal((3, 5, 8))
    ref = scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert ref.dtype == np.float64
    for dtype, want, tol in [(np.float32, np.float32, 1e-5), (np.float16, np.float32, 3e-3)]:
        out = scaled_dot_product_attention(*(a.astype(dtype) for a in (q, k, v)), is_causal=causal)
        assert out.dtype == want
        np.testing.assert_allclose(out, ref, atol=tol)
        w = attention_weights(q.astype(dtype), k.astype(dtype), is_causal=causal)
        assert w.dtype == want
    # Mixed float32/float64 computes in float64; integers become float64; lists work.
    assert scaled_dot_product_attention(q.astype(np.float32), k, v).dtype == np.float64
    ints = scaled_dot_product_attention([[1, 0]], [[1, 0], [0, 1]], [[1, 2], [3, 4]])
    assert ints.dtype == np.float64
    np.testing.assert_allclose(ints, formula_attention([[1, 0]], [[1, 0], [0, 1]], [[1, 2], [3, 4]]))


def test_sdpa_and_weights_do_not_modify_inputs():
    g = rng(12)
    q, k, v = g.standard_normal((3, 2, 6, 4))
    mask = g.random((6, 6)) < 0.5
    copies = [a.copy() for a in (q, k, v, mask)]
    for causal in (False, True):
        for m in (None, mask):
            scaled_dot_product_attention(q, k, v, mask=m, is_causal=causal)
            attention_weights(q, k, mask=m, is_causal=causal)
            naive_attention(q, k, v)
    for a, c in zip((q, k, v, mask), copies):
        np.testing.assert_array_equal(a, c)
    # Read-only inputs (float32 too, where no conversion copy happens) work.
    for dtype in (np.float64, np.float32):
        ro = frozen(*(a.astype(dtype) for a in (q, k, v)))
        (ro_mask,) = frozen(mask)
        scaled_dot_product_attention(*ro, is_causal=True)
        scaled_dot_product_attention(*ro, mask=ro_mask)
        attention_weights(ro[0], ro[1], mask=ro_mask, is_causal=True)


@pytest.mark.parametrize("which", ["q", "k", "v"])
@pytest.mark.parametrize("bad, match", [(np.nan, "NaN"), (np.inf, "inf")])
def test_sdpa_nan_or_inf_input(which, bad, match):
    arrays = dict(zip("qkv", rng(13).standard_normal((3, 4, 4))))
    arrays[which][2, 1] = bad
    with pytest.raises(ValueError, match=match) as info:
        scaled_dot_product_attention(arrays["q"], arrays["k"], arrays["v"])
    assert which in str(info.value)
    if which != "v":
        with pytest.raises(ValueError, match=which):
            attention_weights(arrays["q"], arrays["k"])


@pytest.mark.parametrize(
    "q_shape, k_shape, v_shape, match",
    [
        ((4, 8), (4, 6), (4, 8), "d_k"),  # d_k differs
        ((4, 8), (5, 8), (4, 8), "v"),  # t_k of k and v differ
        ((8,), (4, 8), (4, 8), "q"),  # 1-D q
        ((4, 8), (8,), (8,), "k"),  # 1-D k
        ((4, 8), (4, 8), (8,), "v"),  # 1-D v
        ((2, 4, 8), (3, 4, 8), (3, 4, 8), "batch"),  # batch dims do not broadcast
        ((2, 4, 8), (2, 4, 8), (3, 4, 8), "batch"),
        ((2, 4, 8), (1, 4, 8), (3, 4, 8), "batch"),  # q~k and k~v broadcast, q and v do not
        ((0, 8), (4, 8), (4, 8), "non-empty"),
        ((4, 8), (0, 8), (0, 8), "non-empty"),
    ],
)
def test_sdpa_shape_errors(q_shape, k_shape, v_shape, match):
    g = rng(14)
    q, k, v = (g.standard_normal(s) for s in (q_shape, k_shape, v_shape))
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(q, k, v)
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(q, k, v, is_causal=True)


@pytest.mark.parametrize("fn", ["sdpa", "weights"])
@pytest.mark.parametrize(
    "mask, err",
    [
        (np.ones((4, 4), dtype=bool), ValueError),  # t_k is 5
        (np.ones((3, 5), dtype=bool), ValueError),  # t_q is 4
        (np.ones((2,), dtype=bool), ValueError),
        (np.ones((3, 4, 5), dtype=bool), ValueError),  # batch 3 vs 2
        (np.ones((4, 5)), TypeError),  # a float (additive?) mask is refused
        (np.zeros((4, 5), dtype=int), TypeError),
    ],
)
def test_bad_mask(fn, mask, err):
    g = rng(15)
    q = g.standard_normal((2, 4, 8))
    k = g.standard_normal((2, 5, 8))
    v = g.standard_normal((2, 5, 3))
    with pytest.raises(err, match="mask"):
        if fn == "sdpa":
            scaled_dot_product_attention(q, k, v, mask=mask)
        else:
            attention_weights(q, k, mask=mask)


@pytest.mark.parametrize("is_causal", [1, "yes", None])
def test_is_causal_must_be_bool(is_causal):
    q = rng(16).standard_normal((3, 4))
    with pytest.raises(TypeError, match="is_causal"):
        scaled_dot_product_attention(q, q, q, is_causal=is_causal)
    with pytest.raises(TypeError, match="is_causal"):
        attention_weights(q, q, is_causal=is_causal)


def test_sdpa_accepts_broadcast_masks():
    g = rng(17)
    q, k, v = g.standard_normal((3, 2, 4, 8))
    padding = np.array([True, True, False, True])  # (t_k,)
    row = padding[None, :]  # (1, t_k)
    per_batch = np.broadcast_to(padding, (2, 1, 4))
    expected = formula_attention(q, k, v, np.broadcast_to(padding, (2, 4, 4)))
    for m in (padding, row, per_batch):
        np.testing.assert_allclose(scaled_dot_product_attention(q, k, v, mask=m), expected, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# naive_attention
# --------------------------------------------------------------------------------------------


def test_naive_attention_is_the_formula_and_float64():
    q, k, v = rng(18).standard_normal((3, 5, 4))
    out = naive_attention(q.astype(np.float32), k.astype(np.float32), v.astype(np.float32))
    assert out.dtype == np.float64
    np.testing.assert_allclose(naive_attention(q, k, v), formula_attention(q, k, v), rtol=1e-12)


def test_naive_attention_refuses_a_row_without_keys():
    q, k, v = rng(19).standard_normal((3, 2, 4))
    with pytest.raises(ValueError, match="mask"):
        naive_attention(q, k, v, mask=np.array([[True, False], [False, False]]))


# --------------------------------------------------------------------------------------------
# multi_head_attention
# --------------------------------------------------------------------------------------------


def per_head_loop(x, w_q, w_k, w_v, w_o, n_heads, n_kv_heads, is_causal):
    """MHA as the paper reads: for each head, slice its columns, attend, concatenate, project."""
    x = np.asarray(x, dtype=np.float64)
    head_dim = w_q.shape[1] // n_heads
    group = n_heads // n_kv_heads
    t = x.shape[0]
    keep = np.tril(np.ones((t, t), dtype=bool)) if is_causal else None
    heads = []
    for h in range(n_heads):
        g = h // group  # the KV head this query head reads (HF Llama repeat_kv)
        qh = x @ w_q[:, h * head_dim : (h + 1) * head_dim]
        kh = x @ w_k[:, g * head_dim : (g + 1) * head_dim]
        vh = x @ w_v[:, g * head_dim : (g + 1) * head_dim]
        heads.append(formula_attention(qh, kh, vh, keep))
    return np.concatenate(heads, axis=-1) @ w_o


@st.composite
def mha_case(draw, gqa: bool):
    n_kv = draw(st.integers(1, 3))
    group = draw(st.integers(1, 3)) if gqa else 1
    n_heads = n_kv * group if gqa else draw(st.integers(1, 4))
    n_kv = n_kv if gqa else n_heads
    head_dim = draw(st.integers(1, 6))
    d_model = draw(st.integers(1, 10))  # need not equal n_heads * head_dim
    d_out = draw(st.integers(1, 7))
    t = draw(st.integers(1, 7))
    batch = draw(st.sampled_from([(), (2,)]))
    is_causal = draw(st.booleans())
    g = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = g.standard_normal(batch + (t, d_model))
    w_q = g.standard_normal((d_model, n_heads * head_dim)) / np.sqrt(d_model)
    w_k = g.standard_normal((d_model, n_kv * head_dim)) / np.sqrt(d_model)
    w_v = g.standard_normal((d_model, n_kv * head_dim))
    w_o = g.standard_normal((n_heads * head_dim, d_out))
    return x, w_q, w_k, w_v, w_o, n_heads, n_kv, is_causal


def loop_over_batch(x, *args):
    if x.ndim == 2:
        return per_head_loop(x, *args)
    return np.stack([per_head_loop(xi, *args) for xi in x])


@FAST
@given(mha_case(gqa=False))
def test_mha_equals_per_head_loop(case):
    x, w_q, w_k, w_v, w_o, n_heads, n_kv, is_causal = case
    out = multi_head_attention(x, w_q, w_k, w_v, w_o, n_heads, is_causal=is_causal)
    expected = loop_over_batch(x, w_q, w_k, w_v, w_o, n_heads, n_heads, is_causal)
    assert out.shape == x.shape[:-1] + (w_o.shape[1],)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    same = multi_head_attention(x, w_q, w_k, w_v, w_o, n_heads, n_kv_heads=n_heads, is_causal=is_causal)
    np.testing.assert_array_equal(same, out)


def repeat_kv_weights(w, n_kv, group, head_dim):
    """Repeat each KV head's columns ``group`` times, consecutively (HF Llama repeat_kv)."""
    blocks = w.reshape(w.shape[0], n_kv, 1, head_dim)
    return np.broadcast_to(blocks, (w.shape[0], n_kv, group, head_dim)).reshape(w.shape[0], -1)


@FAST
@given(mha_case(gqa=True))
def test_gqa_equals_mha_with_repeated_kv_weights(case):
    x, w_q, w_k, w_v, w_o, n_heads, n_kv, is_causal = case
    head_dim = w_q.shape[1] // n_heads
    group = n_heads // n_kv
    gqa = multi_head_attention(x, w_q, w_k, w_v, w_o, n_heads, n_kv_heads=n_kv, is_causal=is_causal)
    mha = multi_head_attention(
        x,
        w_q,
        repeat_kv_weights(w_k, n_kv, group, head_dim),
        repeat_kv_weights(w_v, n_kv, group, head_dim),
        w_o,
        n_heads,
        is_causal=is_causal,
    )
    np.testing.assert_allclose(gqa, mha, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        gqa, loop_over_batch(x, w_q, w_k, w_v, w_o, n_heads, n_kv, is_causal), rtol=1e-10, atol=1e-10
    )


def test_gqa_groups_are_consecutive_not_strided():
    # 4 query heads, 2 KV heads: heads 0,1 read KV head 0 and heads 2,3 read KV head 1.
    # With KV head 1's values zero, exactly the output columns of heads 2 and 3 vanish.
    g = rng(20)
    d_model, n_heads, n_kv, head_dim = 6, 4, 2, 3
    x = g.standard_normal((5, d_model))
    w_q = g.standard_normal((d_model, n_heads * head_dim))
    w_k = g.standard_normal((d_model, n_kv * head_dim))
    w_v = g.standard_normal((d_model, n_kv * head_dim))
    w_v[:, head_dim:] = 0.0
    eye = np.eye(n_heads * head_dim)  # w_o = I exposes the concatenated heads
    y = multi_head_attention(x, w_q, w_k, w_v, eye, n_heads, n_kv_heads=n_kv)
    assert np.all(y[:, 2 * head_dim :] == 0.0)
    assert np.all(np.abs(y[:, : 2 * head_dim]).sum(axis=0) > 0)


def test_mqa_single_kv_head():
    g = rng(21)
    x = g.standard_normal((2, 6, 8))
    w_q = g.standard_normal((8, 4 * 2))
    w_k, w_v = g.standard_normal((2, 8, 2))
    w_o = g.standard_normal((8, 8))
    out = multi_head_attention(x, w_q, w_k, w_v, w_o, 4, n_kv_heads=1, is_causal=True)
    np.testing.assert_allclose(out, loop_over_batch(x, w_q, w_k, w_v, w_o, 4, 1, True), rtol=1e-10)


def test_mha_causal_ignores_the_future():
    g = rng(22)
    x = g.standard_normal((7, 8))
    w_q, w_k, w_v, w_o = g.standard_normal((4, 8, 8))
    a = multi_head_attention(x, w_q, w_k, w_v, w_o, 2, is_causal=True)
    x2 = x.copy()
    x2[4:] = 50.0
    b = multi_head_attention(x2, w_q, w_k, w_v, w_o, 2, is_causal=True)
    np.testing.assert_allclose(a[:4], b[:4], rtol=1e-12)


def test_mha_dtypes_and_array_likes():
    g = rng(23)
    x = g.standard_normal((5, 8))
    ws = g.standard_normal((4, 8, 8))
    ref = multi_head_attention(x, *ws, 2)
    assert ref.dtype == np.float64
    out32 = multi_head_attention(x.astype(np.float32), *ws.astype(np.float32), 2)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, ref, rtol=1e-4, atol=1e-4)
    out16 = multi_head_attention(x.astype(np.float16), *ws.astype(np.float16), 2)
    assert out16.dtype == np.float32
    lists = multi_head_attention(x.tolist(), *(w.tolist() for w in ws), 2)
    np.testing.assert_allclose(lists, ref, rtol=1e-14)


def test_mha_does_not_modify_inputs():
    g = rng(24)
    x = g.standard_normal((2, 5, 8))
    ws = [g.standard_normal((8, 8)), g.standard_normal((8, 4)), g.standard_normal((8, 4)), g.standard_normal((8, 8))]
    copies = [a.copy() for a in [x, *ws]]
    multi_head_attention(x, *ws, 4, n_kv_heads=2, is_causal=True)
    for a, c in zip([x, *ws], copies):
        np.testing.assert_array_equal(a, c)
    ro = frozen(x, *ws)
    multi_head_attention(ro[0], *ro[1:], 4, n_kv_heads=2, is_causal=True)
    ro32 = frozen(*(a.astype(np.float32) for a in [x, *ws]))
    multi_head_attention(ro32[0], *ro32[1:], 4, n_kv_heads=2, is_causal=True)


def _mha_args(d_model=8, q_width=8, kv_width=8, o_rows=8, x_shape=(5, 8)):
    g = rng(25)
    return (
        g.standard_normal(x_shape),
        g.standard_normal((d_model, q_width)),
        g.standard_normal((d_model, kv_width)),
        g.standard_normal((d_model, kv_width)),
        g.standard_normal((o_rows, 8)),
    )


@pytest.mark.parametrize(
    "kwargs, n_heads, n_kv_heads, err, match",
    [
        ({}, 3, None, ValueError, "n_heads"),  # 3 does not divide w_q width 8
        ({"kv_width": 4}, 4, 3, ValueError, "n_kv_heads"),  # 4 not a multiple of 3
        ({}, 0, None, ValueError, "n_heads"),
        ({}, -2, None, ValueError, "n_heads"),
        ({}, 2, 0, ValueError, "n_kv_heads"),
        ({}, 2.0, None, TypeError, "n_heads"),
        ({}, True, None, TypeError, "n_heads"),
        ({}, 2, 1.0, TypeError, "n_kv_heads"),
        ({"x_shape": (8,)}, 2, None, ValueError, "x"),  # 1-D x
        ({"x_shape": (1, 2, 5, 8)}, 2, None, ValueError, "x"),
        ({"x_shape": (5, 7)}, 2, None, ValueError, "w_q"),  # d_model 7 vs w_q rows 8
        ({"kv_width": 6}, 2, None, ValueError, "w_k"),
        ({"o_rows": 6}, 2, None, ValueError, "w_o"),
    ],
)
def test_mha_errors(kwargs, n_heads, n_kv_heads, err, match):
    args = _mha_args(**kwargs)
    with pytest.raises(err, match=match):
        multi_head_attention(*args, n_heads, n_kv_heads=n_kv_heads)


def test_mha_errors_name_bad_weights_and_nan():
    x, w_q, w_k, w_v, w_o = _mha_args()
    with pytest.raises(ValueError, match="w_v"):
        multi_head_attention(x, w_q, w_k, w_v[:, :4], w_o, 2)
    with pytest.raises(ValueError, match="w_k"):
        multi_head_attention(x, w_q, w_k[None], w_v, w_o, 2)
    x[1, 1] = np.nan
    with pytest.raises(ValueError, match="x contains NaN"):
        multi_head_attention(x, w_q, w_k, w_v, w_o, 2)
    x[1, 1] = 0.0
    w_o[0, 0] = np.nan
    with pytest.raises(ValueError, match="w_o contains NaN"):
        multi_head_attention(x, w_q, w_k, w_v, w_o, 2)
