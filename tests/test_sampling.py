"""Tests for llmfund.sampling: temperature, top-k, top-p, min-p, repetition penalty and sample.

Oracles are written out here: sorted probabilities and cumulative sums for top-p, the k-th value
from a full sort for top-k, the definitions for min-p and the penalty. ``sample`` is checked by
the support it draws from, by its exact distribution (``_sampling_probabilities``), by draw
frequencies, and by the equality of its fast candidate path with the whole-vocabulary path.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from llmfund import sampling
from llmfund.sampling import (
    apply_repetition_penalty,
    apply_temperature,
    min_p_filter,
    sample,
    top_k_filter,
    top_p_filter,
)

FAST = settings(max_examples=40, deadline=None)
NEG = -np.inf


def frozen(a) -> np.ndarray:
    """A read-only copy: any in-place write by the function under test raises."""
    a = np.array(a)
    a.flags.writeable = False
    return a


def softmax64(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@st.composite
def logit_rows(draw, max_rows=3, max_vocab=40, allow_neg_inf=True):
    """(rows, vocab) float64 logits, possibly with -inf, never a row that is all -inf."""
    rows = draw(st.integers(1, max_rows))
    vocab = draw(st.integers(1, max_vocab))
    x = draw(hnp.arrays(np.float64, (rows, vocab), elements=st.floats(-20, 20, width=64)))
    if allow_neg_inf:
        dead = draw(hnp.arrays(np.bool_, (rows, vocab)))
        dead[:, draw(st.integers(0, vocab - 1))] = False  # one live token per row at least
        x = np.where(dead, NEG, x)
    return x


# --------------------------------------------------------------------------------------------
# apply_temperature
# --------------------------------------------------------------------------------------------


def test_temperature_divides_and_keeps_neg_inf():
    out = apply_temperature(frozen([2.0, -1.0, NEG]), 0.5)
    np.testing.assert_array_equal(out, [4.0, -2.0, NEG])


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float64, np.float64), (np.float32, np.float32), (np.float16, np.float32), (int, float)],
)
def test_temperature_dtypes(dtype, expected):
    assert apply_temperature(np.array([1, 2], dtype=dtype), 2.0).dtype == expected


def test_temperature_returns_a_new_array_even_at_one():
    x = np.array([1.0, 2.0])
    out = apply_temperature(x, 1.0)
    out[0] = 9.0
    assert x[0] == 1.0


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
def test_temperature_bad_values(bad):
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature([1.0, 2.0], bad)


def test_temperature_zero_points_to_greedy():
    greedy = r"temperature must be > 0.*sample\(logits, temperature=0\)"
    with pytest.raises(ValueError, match=greedy):
        apply_temperature([1.0, 2.0], 0.0)


@pytest.mark.parametrize("bad", ["0.7", True, None])
def test_temperature_wrong_type(bad):
    with pytest.raises(TypeError, match="temperature"):
        apply_temperature([1.0, 2.0], bad)


def test_temperature_overflow_is_an_error_not_inf():
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(np.float32([10.0, 1.0]), 1e-40)


# --------------------------------------------------------------------------------------------
# top_k_filter
# --------------------------------------------------------------------------------------------


def test_top_k_keeps_the_k_largest():
    out = top_k_filter(frozen([1.0, 4.0, 3.0, 2.0]), 2)
    np.testing.assert_array_equal(out, [NEG, 4.0, 3.0, NEG])


def test_top_k_keeps_ties_at_the_boundary():
    np.testing.assert_array_equal(top_k_filter([5.0, 4.0, 1.0, 4.0], 2), [5.0, 4.0, NEG, 4.0])
    np.testing.assert_array_equal(top_k_filter([3.0, 3.0, 3.0], 1), [3.0, 3.0, 3.0])


@pytest.mark.parametrize("k", [3, 4, 100])
def test_top_k_at_or_above_vocab_keeps_everything_in_a_copy(k):
    x = np.array([1.0, NEG, 2.0])
    out = top_k_filter(x, k)
    np.testing.assert_array_equal(out, x)
    assert not np.shares_memory(out, x)


def test_top_k_with_neg_inf_entries():
    # Only two live tokens: the 3rd largest is -inf, and -inf tokens stay -inf.
    np.testing.assert_array_equal(top_k_filter([1.0, NEG, 2.0, NEG], 3), [1.0, NEG, 2.0, NEG])


@pytest.mark.parametrize(
    ("dtype", "expected"), [(np.float32, np.float32), (np.float16, np.float32)]
)
def test_top_k_dtype(dtype, expected):
    assert top_k_filter(np.array([[1, 2, 3]], dtype=dtype), 1).dtype == expected


@FAST
@given(logit_rows(), st.integers(1, 45))
def test_top_k_matches_a_full_sort(x, k):
    out = top_k_filter(frozen(x), k)
    kth = -np.sort(-x, axis=-1)[:, min(k, x.shape[-1]) - 1 : min(k, x.shape[-1])]
    np.testing.assert_array_equal(out, np.where(x >= kth, x, NEG))
    # batched rows are independent
    for r in range(x.shape[0]):
        np.testing.assert_array_equal(out[r], top_k_filter(x[r], k))


@pytest.mark.parametrize("bad", [0, -1])
def test_top_k_bad_values(bad):
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k_filter([1.0, 2.0], bad)


@pytest.mark.parametrize("bad", [1.5, 2.0, True, np.float64(2)])
def test_top_k_not_an_integer(bad):
    with pytest.raises(TypeError, match="k must be an integer"):
        top_k_filter([1.0, 2.0], bad)


# --------------------------------------------------------------------------------------------
# top_p_filter
# --------------------------------------------------------------------------------------------


def test_top_p_keeps_the_token_that_crosses_p():
    logits = np.log([0.5, 0.3, 0.15, 0.05])
    kept = np.isfinite(top_p_filter(frozen(logits), 0.7))
    np.testing.assert_array_equal(kept, [True, True, False, False])
    kept = np.isfinite(top_p_filter(logits, 0.81))
    np.testing.assert_array_equal(kept, [True, True, True, False])


def test_top_p_exact_boundaries_and_ties_ranked_by_index():
    # Four equal tokens: masses are exact multiples of 1/4 in any dtype.
    for dtype in (np.float64, np.float32):
        x = np.zeros(4, dtype=dtype)
        np.testing.assert_array_equal(np.isfinite(top_p_filter(x, 0.5)), [1, 1, 0, 0])
        np.testing.assert_array_equal(np.isfinite(top_p_filter(x, 0.75)), [1, 1, 1, 0])
        np.testing.assert_array_equal(np.isfinite(top_p_filter(x, 0.76)), [1, 1, 1, 1])
        np.testing.assert_array_equal(np.isfinite(top_p_filter(x, 0.01)), [1, 0, 0, 0])


def test_top_p_one_keeps_every_token_of_nonzero_probability():
    # exp(-200) underflows to 0 in float32 but not in float64; exp(-50) survives in both.
    x = [0.0, -50.0, -200.0, NEG]
    np.testing.assert_array_equal(np.isfinite(top_p_filter(np.float32(x), 1.0)), [1, 1, 0, 0])
    np.testing.assert_array_equal(np.isfinite(top_p_filter(np.float64(x), 1.0)), [1, 1, 1, 0])


def test_top_p_keeps_values_dtype_and_leaves_input_alone():
    x = frozen(np.float32([[2.0, 1.0, 0.0], [0.0, 0.0, 5.0]]))
    out = top_p_filter(x, 0.9)
    assert out.dtype == np.float32
    kept = np.isfinite(out)
    np.testing.assert_array_equal(out[kept], x[kept])
    assert top_p_filter(np.float16([1.0, 2.0]), 0.5).dtype == np.float32


def test_top_p_row_of_neg_inf_passes_through():
    out = top_p_filter([[0.0, 1.0], [NEG, NEG]], 0.5)
    np.testing.assert_array_equal(out, [[NEG, 1.0], [NEG, NEG]])


def test_top_p_large_vocabulary_uses_candidates_and_agrees_with_oracle():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5000)) * 3
    out = top_p_filter(x, 0.9)
    probs = softmax64(x)
    for r in range(4):
        order = np.argsort(-x[r], kind="stable")
        above = np.cumsum(probs[r, order]) - probs[r, order]
        np.testing.assert_array_equal(np.isfinite(out[r, order]), above < 0.9)


@FAST
@given(logit_rows(), st.floats(0.01, 1.0))
def test_top_p_keeps_the_minimal_set(x, p):
    out = top_p_filter(frozen(x), p)
    probs = softmax64(x)
    kept = np.isfinite(out)
    assert kept.any(axis=-1).all()
    for r in range(x.shape[0]):
        mass = probs[r, kept[r]].sum()
        smallest = probs[r, kept[r]].min()
        # The kept set reaches p, and without its least likely token it would not (1e-9 slack
        # for rounding: the decision itself is made in the logits' precision, as HF does).
        assert mass >= p - 1e-9
        assert mass - smallest < p + 1e-9
        # Every removed token is at most as likely as every kept one.
        if (~kept[r]).any():
            assert probs[r, ~kept[r]].max() <= smallest


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_top_p_bad_values(bad):
    with pytest.raises(ValueError, match=r"^p must (be in \(0, 1\]|not be NaN)"):
        top_p_filter([1.0, 2.0], bad)


def test_top_p_message_names_value():
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\], got 1.5"):
        top_p_filter([1.0, 2.0], 1.5)
    with pytest.raises(TypeError, match="p must be a real number"):
        top_p_filter([1.0, 2.0], "0.9")


# --------------------------------------------------------------------------------------------
# min_p_filter
# --------------------------------------------------------------------------------------------


def test_min_p_removes_tokens_below_the_scaled_top_probability():
    x = np.log([0.5, 0.3, 0.15, 0.05])
    np.testing.assert_array_equal(np.isfinite(min_p_filter(frozen(x), 0.25)), [1, 1, 1, 0])
    np.testing.assert_array_equal(np.isfinite(min_p_filter(x, 0.5)), [1, 1, 0, 0])


def test_min_p_extremes():
    x = np.array([[1.0, 3.0, 3.0, NEG], [0.0, -1.0, -2.0, -3.0]])
    np.testing.assert_array_equal(min_p_filter(x, 0.0), x)
    expected = [[NEG, 3.0, 3.0, NEG], [0.0, NEG, NEG, NEG]]
    np.testing.assert_array_equal(min_p_filter(x, 1.0), expected)


@FAST
@given(logit_rows(), st.floats(0.0, 1.0))
def test_min_p_matches_definition(x, min_p):
    probs = softmax64(x)
    kept = np.isfinite(min_p_filter(frozen(x), min_p))
    assert kept.any(axis=-1).all()
    threshold = min_p * probs.max(axis=-1, keepdims=True)
    clear = np.abs(probs - threshold) > 1e-12 * threshold  # away from the rounding boundary
    live = probs > 0
    np.testing.assert_array_equal(kept[clear & live], (probs >= threshold)[clear & live])


@pytest.mark.parametrize("bad", [-0.1, 1.01, float("nan")])
def test_min_p_bad_values(bad):
    with pytest.raises(ValueError, match=r"^min_p must (be in \[0, 1\]|not be NaN)"):
        min_p_filter([1.0, 2.0], bad)


# --------------------------------------------------------------------------------------------
# apply_repetition_penalty
# --------------------------------------------------------------------------------------------


def test_penalty_divides_positive_multiplies_negative_once_per_token():
    x, ids = frozen([2.0, -1.0, 0.0, 4.0, NEG]), frozen([0, 1, 0, 2, 4, 0])
    out = apply_repetition_penalty(x, ids, 2.0)
    np.testing.assert_array_equal(out, [1.0, -2.0, 0.0, 4.0, NEG])


def test_penalty_one_row_of_ids_applies_to_every_row():
    x = np.array([[2.0, 2.0, 2.0], [-2.0, -2.0, -2.0]])
    np.testing.assert_array_equal(
        apply_repetition_penalty(x, [1], 2.0), [[2.0, 1.0, 2.0], [-2.0, -4.0, -2.0]]
    )


def test_penalty_row_by_row_and_broadcast():
    x = np.ones((2, 3, 4))
    ids = np.array([[[0], [1], [2]], [[3], [3], [3]]])
    out = apply_repetition_penalty(x, ids, 4.0)
    expected = np.ones((2, 3, 4))
    expected[0, 0, 0] = expected[0, 1, 1] = expected[0, 2, 2] = 0.25
    expected[1, :, 3] = 0.25
    np.testing.assert_array_equal(out, expected)
    # (3, n) broadcasts over the leading 2
    out = apply_repetition_penalty(x, [[0], [1], [2]], 4.0)
    np.testing.assert_array_equal(out[1], out[0])
    assert out[0, 1, 1] == 0.25


def test_penalty_no_previous_tokens_is_a_copy():
    x = np.float32([[1.0, -1.0]])
    out = apply_repetition_penalty(x, np.zeros((1, 0), dtype=np.int64), 1.5)
    np.testing.assert_array_equal(out, x)
    assert out.dtype == np.float32 and not np.shares_memory(out, x)


@FAST
@given(logit_rows(allow_neg_inf=False), st.data(), st.floats(0.1, 5.0))
def test_penalty_matches_a_loop(x, data, penalty):
    n = data.draw(st.integers(0, 10))
    ids = data.draw(hnp.arrays(np.int64, (x.shape[0], n), elements=st.integers(0, x.shape[1] - 1)))
    expected = x.copy()
    for r in range(x.shape[0]):
        for token in set(ids[r].tolist()):
            z = x[r, token]
            expected[r, token] = z / penalty if z > 0 else z * penalty
    out = apply_repetition_penalty(frozen(x), frozen(ids), penalty)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_penalty_bad_values(bad):
    with pytest.raises(ValueError, match="penalty"):
        apply_repetition_penalty([1.0, 2.0], [0], bad)


@pytest.mark.parametrize(
    ("ids", "error", "match"),
    [
        ([2], ValueError, r"previous_tokens must be < 2 \(the vocabulary size\), got 2"),
        ([-1], ValueError, "previous_tokens must be >= 0, got -1"),
        ([0.0], TypeError, "previous_tokens must have an integer dtype"),
        ([True], TypeError, "previous_tokens must have an integer dtype"),
        (0, ValueError, "previous_tokens must have a token axis"),
        ([[0], [1], [0]], ValueError, "previous_tokens has shape"),
    ],
)
def test_penalty_bad_previous_tokens(ids, error, match):
    with pytest.raises(error, match=match):
        apply_repetition_penalty([[1.0, 2.0], [3.0, 4.0]], ids, 1.2)


# --------------------------------------------------------------------------------------------
# sample
# --------------------------------------------------------------------------------------------


def test_greedy_is_the_first_argmax_and_an_int():
    token = sample(frozen([1.0, 3.0, 3.0]), temperature=0)
    assert token == 1 and type(token) is int
    tokens = sample(np.array([[0.0, 1.0], [5.0, NEG]]), temperature=0, top_p=0.1, top_k=1)
    np.testing.assert_array_equal(tokens, [1, 0])


def test_sample_shapes_and_types():
    assert type(sample([0.0, 1.0], rng=0)) is int
    tokens = sample(np.zeros((2, 3, 7)), top_k=2, rng=0)
    assert tokens.shape == (2, 3) and tokens.dtype == np.int64
    assert sample(np.zeros((0, 7)), rng=0).shape == (0,)
    assert type(sample(np.float16([0.0, 1.0]), top_p=0.5, rng=0)) is int


def test_sample_is_reproducible_and_leaves_global_state_alone():
    x = np.random.default_rng(0).standard_normal((8, 100))
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = sample(x, temperature=0.7, top_k=20, rng=5)
    b = sample(x, temperature=0.7, top_k=20, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    sample(x, top_p=0.8)  # rng=None
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_sample_advances_a_generator():
    gen = np.random.default_rng(0)
    draws = {sample(np.zeros(1000), rng=gen) for _ in range(5)}
    assert len(draws) > 1


def test_sample_frequencies_match_the_probabilities():
    logits = np.log([0.5, 0.3, 0.15, 0.05])
    n = 40_000
    tokens = sample(np.tile(logits, (n, 1)), rng=0)
    freq = np.bincount(tokens, minlength=4) / n
    sigma = np.sqrt(np.array([0.5, 0.3, 0.15, 0.05]) * 0.95 / n)
    assert np.all(np.abs(freq - [0.5, 0.3, 0.15, 0.05]) < 5 * sigma + 1e-3)
    # with top_p=0.7 only the first two, renormalised: 0.625 / 0.375
    tokens = sample(np.tile(logits, (n, 1)), top_p=0.7, rng=1)
    freq = np.bincount(tokens, minlength=4) / n
    assert freq[2] == freq[3] == 0
    assert abs(freq[0] - 0.625) < 0.01


def test_sample_probabilities_follow_huggingface_order():
    # top-k first, then top-p renormalised over the k survivors, then min-p.
    x = np.log([0.4, 0.3, 0.2, 0.1])
    probs = sampling._sampling_probabilities(x, top_k=3, top_p=0.7)
    np.testing.assert_allclose(probs, [4 / 7, 3 / 7, 0, 0])
    probs = sampling._sampling_probabilities(x, top_k=3, min_p=0.6)
    np.testing.assert_allclose(probs, [4 / 7, 3 / 7, 0, 0])
    probs = sampling._sampling_probabilities(x, temperature=0.5)
    np.testing.assert_allclose(probs, softmax64(x / 0.5))


def test_sample_never_draws_neg_inf_or_ties_outside_top_k():
    x = np.array([3.0, NEG, 3.0, 1.0, NEG])
    tokens = sample(np.tile(x, (2000, 1)), top_k=1, rng=0)
    assert set(np.unique(tokens).tolist()) == {0, 2}


def test_sample_all_neg_inf_row_is_an_error():
    with pytest.raises(ValueError, match="logits row 1 is all -inf"):
        sample([[0.0, 1.0], [NEG, NEG]], rng=0)


@st.composite
def settings_strategy(draw, vocab):
    return dict(
        temperature=draw(st.sampled_from([0.0, 0.3, 1.0, 2.5])),
        top_k=draw(st.none() | st.integers(1, vocab + 2)),
        top_p=draw(st.none() | st.floats(0.01, 1.0)),
        min_p=draw(st.none() | st.floats(0.0, 1.0)),
    )


@FAST
@given(logit_rows(max_rows=4), st.data(), st.integers(0, 2**32 - 1))
def test_sample_never_returns_a_filtered_token(x, data, seed):
    s = data.draw(settings_strategy(x.shape[-1]))
    tokens = sample(frozen(x), **s, rng=seed)
    # The kept set, by chaining the public filters in HF's order.
    z = x if s["temperature"] == 0 else apply_temperature(x, s["temperature"])
    if s["top_k"] is not None:
        z = top_k_filter(z, s["top_k"])
    if s["top_p"] is not None:
        z = top_p_filter(z, s["top_p"])
    if s["min_p"] is not None:
        z = min_p_filter(z, s["min_p"])
    chosen = z[np.arange(x.shape[0]), tokens]
    assert np.all(np.isfinite(chosen))
    probs = sampling._sampling_probabilities(x, **s)
    assert np.all(probs[np.arange(x.shape[0]), tokens] > 0)
    # and the probabilities are supported exactly on the chained filters' kept set (up to
    # tokens whose probability underflows to 0)
    assert np.all(np.isfinite(z)[probs > 0])


@FAST
@given(logit_rows(max_rows=4, max_vocab=300), st.data(), st.integers(0, 2**32 - 1))
def test_fast_path_equals_whole_vocabulary_path(x, data, seed):
    s = data.draw(settings_strategy(x.shape[-1]))
    assume(s["temperature"] > 0)
    fast = sampling._sampling_probabilities(x, **s)
    full = sampling._sampling_probabilities(x, **s, full=True)
    if s["top_k"] is not None or s["top_p"] is None or s["top_p"] == 1:
        # The slice only drops tokens of weight 0: every sum is the same, bit for bit.
        np.testing.assert_array_equal(fast, full)
    else:
        # Top-p alone adds the mass outside the slice as one number: equal up to rounding.
        np.testing.assert_array_equal(fast > 0, full > 0)
        np.testing.assert_allclose(fast, full, rtol=1e-12, atol=0)
    args = (x, s["temperature"], s["top_k"], s["top_p"], s["min_p"])
    np.testing.assert_array_equal(
        sampling._draw(*args, np.random.default_rng(seed)),
        sampling._draw(*args, np.random.default_rng(seed), full=True),
    )


def test_fast_path_with_large_vocabulary_and_ties():
    rng = np.random.default_rng(3)
    x = np.round(rng.standard_normal((6, 32_000)) * 4).astype(np.float32)  # many ties
    for s in (dict(top_k=50), dict(top_k=50, top_p=0.9), dict(top_k=7, min_p=0.1), dict(top_p=0.9)):
        fast = sampling._sampling_probabilities(x, temperature=0.8, **s)
        full = sampling._sampling_probabilities(x, temperature=0.8, **s, full=True)
        np.testing.assert_array_equal(fast > 0, full > 0)
        np.testing.assert_allclose(fast, full, rtol=1e-12, atol=0)
        if "top_k" in s:
            np.testing.assert_array_equal(fast, full)
        args = (x, 0.8, s.get("top_k"), s.get("top_p"), s.get("min_p"))
        np.testing.assert_array_equal(
            sampling._draw(*args, np.random.default_rng(0)),
            sampling._draw(*args, np.random.default_rng(0), full=True),
        )


def test_fast_path_with_vocabulary_without_small_divisors():
    # 50 021 is prime: the k-th value comes from a plain partition.
    x = np.random.default_rng(0).standard_normal((2, 50_021))
    fast = sampling._sampling_probabilities(x, top_k=40, top_p=0.5)
    full = sampling._sampling_probabilities(x, top_k=40, top_p=0.5, full=True)
    np.testing.assert_array_equal(fast, full)
    assert ((fast > 0).sum(axis=-1) <= 40).all()


def test_sample_leaves_input_alone():
    x = frozen(np.random.default_rng(0).standard_normal((3, 50)))
    sample(x, temperature=0.5, top_k=5, top_p=0.9, min_p=0.05, rng=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(temperature=-1.0), ValueError, "temperature must be a finite number >= 0, got -1.0"),
        (dict(temperature=float("nan")), ValueError, "temperature must not be NaN"),
        (dict(temperature=float("inf")), ValueError, "temperature"),
        (dict(top_k=0), ValueError, "top_k must be >= 1, got 0"),
        (dict(top_k=2.0), TypeError, "top_k must be an integer"),
        (dict(top_k=True), TypeError, "top_k must be an integer"),
        (dict(top_p=0.0), ValueError, r"top_p must be in \(0, 1\], got 0.0"),
        (dict(top_p=1.5), ValueError, r"top_p must be in \(0, 1\], got 1.5"),
        (dict(top_p=float("nan")), ValueError, "top_p"),
        (dict(min_p=-0.1), ValueError, r"min_p must be in \[0, 1\], got -0.1"),
        (dict(min_p=1.5), ValueError, r"min_p must be in \[0, 1\], got 1.5"),
        (dict(rng="seed"), TypeError, "rng must be None, an int seed or a numpy.random.Generator"),
        (dict(rng=1.5), TypeError, "rng"),
        (dict(rng=True), TypeError, "rng"),
        (dict(rng=np.random.RandomState(0)), TypeError, "rng.*RandomState"),
        (dict(rng=-1), ValueError, "rng must be >= 0, got -1"),
    ],
)
def test_sample_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        sample([1.0, 2.0], **kwargs)


# --------------------------------------------------------------------------------------------
# bad logits, the same for every function
# --------------------------------------------------------------------------------------------

FUNCTIONS = [
    lambda x: apply_temperature(x, 0.7),
    lambda x: top_k_filter(x, 2),
    lambda x: top_p_filter(x, 0.9),
    lambda x: min_p_filter(x, 0.1),
    lambda x: apply_repetition_penalty(x, [0], 1.2),
    lambda x: sample(x, rng=0),
]


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize(
    ("logits", "error", "match"),
    [
        ([1.0, float("nan")], ValueError, "logits contains NaN"),
        ([[1.0, 2.0], [float("nan"), 1.0]], ValueError, "logits contains NaN"),
        ([1.0, float("inf")], ValueError, r"logits contains \+inf"),
        (1.0, ValueError, "logits must have a vocabulary axis, got a scalar"),
        (np.zeros((2, 0)), ValueError, "logits has an empty vocabulary"),
        (["a", "b"], TypeError, "logits must be an array of numbers"),
        ([1 + 1j, 2.0], TypeError, "logits must be real"),
    ],
)
def test_bad_logits(fn, logits, error, match):
    with pytest.raises(error, match=match):
        fn(logits)


def test_inverse_cdf_edges():
    ids = np.array([[10, 11, 12, 13]])
    weights = np.array([[0.0, 2.0, 1.0, 0.0]])
    draw = lambda u: int(sampling._inverse_cdf(ids, weights, np.array([u]))[0])  # noqa: E731
    assert draw(0.0) == 11  # the first token of nonzero weight, never the zero-weight one before it
    assert draw(0.6) == 11 and draw(0.7) == 12  # the cdf is 2/3 after token 11
    assert draw(1.0) == 12  # u * total == total: the last token of nonzero weight, not token 13


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_empty_batch(fn):
    out = fn(np.zeros((0, 5)))
    assert out.shape == ((0, 5) if out.ndim == 2 else (0,))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [1e-9, 1e-20, 1e-300])
def test_top_p_below_dtype_epsilon_still_keeps_the_top_token(dtype, p):
    # 1 - p rounds to 1 in the logits' dtype; the most likely token must survive anyway,
    # and sample must return it rather than silently fall back to another candidate.
    logits = (-0.001 * np.arange(1000)).astype(dtype)
    kept = top_p_filter(logits, p)
    assert np.isfinite(kept).sum() == 1 and np.isfinite(kept[0])
    assert sample(logits, top_p=p, rng=0) == 0
    assert (sample(np.tile(logits, (4, 1)), top_p=p, rng=1) == 0).all()
