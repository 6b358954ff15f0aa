"""Tests for llmfund.ppl: sequence_nll, ppl_from_nll and ppl_from_logits.

The oracle is the textbook formula in float64, ``-log(exp(z_y) / sum_j exp(z_j))``, on logits
small enough that it cannot overflow; the chunked, shifted implementation must agree with it.
"""

from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from llmfund import ppl as ppl_module
from llmfund.ppl import ppl_from_logits, ppl_from_nll, sequence_nll

FAST = settings(max_examples=40, deadline=None)
NEG = -np.inf


def frozen(a) -> np.ndarray:
    """A read-only copy: any in-place write by the function under test raises."""
    a = np.array(a)
    a.flags.writeable = False
    return a


def textbook_nll(logits, labels) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    return -np.log(np.take_along_axis(p, np.asarray(labels)[..., None], axis=-1)[..., 0])


@st.composite
def logits_and_labels(draw, max_vocab=30):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=5))
    vocab = draw(st.integers(1, max_vocab))
    logits = draw(hnp.arrays(np.float64, shape + (vocab,), elements=st.floats(-30, 30, width=64)))
    labels = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, vocab - 1)))
    return logits, labels


# --------------------------------------------------------------------------------------------
# sequence_nll
# --------------------------------------------------------------------------------------------


def test_nll_of_known_probabilities():
    logits = np.log([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(sequence_nll(frozen(logits), frozen([0, 2])), -np.log([0.5, 0.8]))


@FAST
@given(logits_and_labels())
def test_nll_equals_the_textbook_formula(data):
    logits, labels = data
    out = sequence_nll(frozen(logits), frozen(labels))
    assert out.shape == labels.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, textbook_nll(logits, labels), rtol=1e-10, atol=1e-10)
    assert np.all(out >= 0)


def test_nll_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0]])
    assert sequence_nll(logits, [0])[0] == 0.0  # log(1 + e^-1000 + e^-2000) rounds to 0
    assert sequence_nll(logits, [1])[0] == 1000.0
    assert sequence_nll(logits, [2])[0] == 2000.0


def test_nll_with_neg_inf_logits():
    logits = np.array([[0.0, 0.0, NEG], [NEG, 1.0, NEG]])
    np.testing.assert_allclose(sequence_nll(logits, [0, 1]), [math.log(2.0), 0.0])
    # a label on a -inf logit has probability 0: NLL inf, no warning, no NaN
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sequence_nll(logits, [2, 1])[0] == np.inf


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.float64, np.float64),
        (np.float32, np.float32),
        (np.float16, np.float32),
        (np.int32, np.float64),
    ],
)
def test_nll_dtypes(dtype, expected):
    logits = np.array([[1, 2, 3], [3, 2, 1]], dtype=dtype)
    out = sequence_nll(logits, [2, 0])
    assert out.dtype == expected
    np.testing.assert_allclose(out, textbook_nll(logits, [2, 0]), rtol=1e-6)


def test_nll_shapes():
    assert sequence_nll(np.zeros(4), np.int64(1)).shape == ()
    assert sequence_nll(np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 4), dtype=int)).shape == (2, 3, 4)
    assert sequence_nll(np.zeros((0, 5)), np.zeros(0, dtype=int)).shape == (0,)


def test_nll_chunks_agree_with_one_pass(monkeypatch):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 37, 11)).astype(np.float32)
    labels = rng.integers(0, 11, size=(3, 37))
    whole = sequence_nll(logits, labels)
    monkeypatch.setattr(ppl_module, "_CHUNK_ELEMENTS", 30)  # 2 rows a chunk, a ragged last one
    np.testing.assert_array_equal(sequence_nll(logits, labels), whole)
    monkeypatch.setattr(ppl_module, "_CHUNK_ELEMENTS", 1)  # below one row: still one row a chunk
    np.testing.assert_array_equal(sequence_nll(logits, labels), whole)


def test_nll_needs_no_second_array_of_the_input_size():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, 256, 4096), dtype=np.float32)  # 16 MiB
    labels = rng.integers(0, 4096, size=(4, 256))
    tracemalloc.start()
    try:
        sequence_nll(logits, labels)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < logits.nbytes / 4  # one chunk (2 MiB) and small per-row arrays


def test_nll_catches_nan_in_a_late_chunk(monkeypatch):
    monkeypatch.setattr(ppl_module, "_CHUNK_ELEMENTS", 8)
    logits = np.zeros((10, 4))
    logits[9, 3] = np.nan
    with pytest.raises(ValueError, match="logits contains NaN"):
        sequence_nll(logits, np.zeros(10, dtype=int))


@pytest.mark.parametrize(
    ("logits", "labels", "error", "match"),
    [
        ([[0.0, np.nan]], [0], ValueError, "logits contains NaN"),
        ([[0.0, np.inf]], [0], ValueError, r"logits contains \+inf"),
        ([[NEG, NEG]], [0], ValueError, "logits has a row that is all -inf"),
        (1.0, 0, ValueError, "logits must have a vocabulary axis, got a scalar"),
        (np.zeros((2, 0)), [0, 0], ValueError, "logits has an empty vocabulary"),
        ([["a", "b"]], [0], TypeError, "logits must be an array of numbers"),
        ([[0.0, 1.0]], [2], ValueError, r"labels must be < 2 \(the vocabulary size\), got 2"),
        ([[0.0, 1.0]], [-1], ValueError, "labels must be >= 0, got -1"),
        ([[0.0, 1.0]], [1.0], TypeError, "labels must have an integer dtype, got float64"),
        ([[0.0, 1.0]], [True], TypeError, "labels must have an integer dtype, got bool"),
        ([[0.0, 1.0]], [0, 1], ValueError, r"labels must have shape .* = \(1,\), got \(2,\)"),
        (np.zeros((2, 3, 4)), np.zeros((3, 2), dtype=int), ValueError, "labels must have shape"),
    ],
)
def test_nll_bad_input(logits, labels, error, match):
    with pytest.raises(error, match=match):
        sequence_nll(logits, labels)


# --------------------------------------------------------------------------------------------
# ppl_from_nll / ppl_from_logits
# --------------------------------------------------------------------------------------------


def test_ppl_from_nll_is_exp_of_the_mean():
    out = ppl_from_nll(frozen([0.5, 1.5, 1.0]))
    assert type(out) is float
    assert out == pytest.approx(math.e)
    assert ppl_from_nll(np.float32([0.0])) == 1.0


def test_ppl_from_nll_infinite():
    assert ppl_from_nll([1.0, np.inf]) == math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ppl_from_nll([1e6]) == math.inf


@pytest.mark.parametrize(
    ("nll", "error", "match"),
    [
        ([], ValueError, "nll is empty"),
        (np.zeros((2, 0)), ValueError, "nll is empty"),
        ([0.5, -0.1], ValueError, r"nll must be >= 0 \(the NLL of a discrete .*\), got -0.1"),
        ([0.5, np.nan], ValueError, "nll contains NaN"),
        (["a"], TypeError, "nll must be an array of numbers"),
    ],
)
def test_ppl_from_nll_bad_input(nll, error, match):
    with pytest.raises(error, match=match):
        ppl_from_nll(nll)


@FAST
@given(
    st.integers(1, 300), hnp.array_shapes(min_dims=1, max_dims=2, max_side=6), st.floats(-50, 50)
)
def test_ppl_of_uniform_logits_is_the_vocabulary_size(vocab, shape, level):
    logits = np.full(shape + (vocab,), level)
    labels = np.arange(np.prod(shape)).reshape(shape) % vocab
    assert ppl_from_logits(logits, labels) == pytest.approx(vocab, rel=1e-12)


@FAST
@given(logits_and_labels())
def test_ppl_is_at_least_one_and_matches_the_nll(data):
    logits, labels = data
    out = ppl_from_logits(frozen(logits), frozen(labels))
    assert type(out) is float
    assert out >= 1.0
    assert out == ppl_from_nll(sequence_nll(logits, labels))
    assert out == pytest.approx(math.exp(textbook_nll(logits, labels).mean()), rel=1e-9)


def test_ppl_of_a_confident_right_model_is_one():
    logits = np.full((5, 10), -1e4)
    logits[np.arange(5), np.arange(5)] = 0.0
    assert ppl_from_logits(logits, np.arange(5)) == 1.0


def test_ppl_from_logits_empty_labels():
    with pytest.raises(ValueError, match="labels is empty"):
        ppl_from_logits(np.zeros((0, 4)), np.zeros(0, dtype=int))
