"""Tests for the evaluation helpers of llmfund.ppl: masks, the causal-LM label shift, strided
(sliding-window) perplexity and bits per byte.

The oracles are plain formulas (a masked mean, ``sequence_nll`` on hand-shifted arrays), models
whose context is known exactly (an n-gram table, a copy model), and, where torch and transformers
are installed, PyTorch's ``cross_entropy(ignore_index=-100)``, Hugging Face's ``ForCausalLMLoss``
and the loop of Hugging Face's guide "Perplexity of fixed-length models".
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from llmfund.decoder import decoder_forward, init_decoder_params
from llmfund.ppl import (
    bits_per_byte,
    causal_lm_nll,
    ppl_from_logits,
    ppl_from_nll,
    sequence_nll,
    strided_nll,
    strided_ppl,
    strided_windows,
)

FAST = settings(max_examples=40, deadline=None)


def frozen(a) -> np.ndarray:
    """A read-only copy: any in-place write by the function under test raises."""
    a = np.array(a)
    a.flags.writeable = False
    return a


def ngram_model(vocab: int, lookback: int, seed: int = 0):
    """A model whose logits at position i depend on tokens i - lookback + 1 .. i only.

    Each of the ``lookback`` most recent tokens adds its own random row, so a window that holds
    all of them gives exactly the logits the whole sequence gives."""
    tables = np.random.default_rng(seed).standard_normal((lookback, vocab, vocab))

    def logits_fn(ids):
        ids = np.asarray(ids)
        out = np.zeros((ids.size, vocab))
        for back in range(lookback):
            out[back:] += tables[back][ids[: ids.size - back]]
        return out

    return logits_fn


def copy_model(vocab: int, p_copy: float = 0.9):
    """Predicts that the current token is followed by what followed its last earlier occurrence
    in the window (uniform when it has none): context helps it exactly when the text repeats."""

    def logits_fn(ids):
        ids = np.asarray(ids)
        t = ids.size
        same = (ids[:, None] == ids[None, :]) & np.tri(t, t, -1, dtype=bool)
        seen = same.any(axis=1)
        last = t - 1 - np.argmax(same[:, ::-1], axis=1)
        guess = ids[np.minimum(last + 1, t - 1)]
        probs = np.full((t, vocab), (1 - p_copy) / (vocab - 1))
        probs[np.arange(t), guess] = p_copy
        probs[~seen] = 1 / vocab
        return np.log(probs)

    return logits_fn


# --------------------------------------------------------------------------------------------
# ppl_from_nll(..., mask=...)
# --------------------------------------------------------------------------------------------


@FAST
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
                  elements=st.floats(0, 20)))  # fmt: skip
def test_mask_of_all_ones_is_no_mask(nll):
    assert ppl_from_nll(frozen(nll), mask=frozen(np.ones(nll.shape, bool))) == ppl_from_nll(nll)


@FAST
@given(hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(0, 20)), st.data())
def test_mask_averages_the_selected_tokens_only(nll, data):
    mask = data.draw(hnp.arrays(np.bool_, nll.shape))
    if not mask.any():
        mask[0] = True
    out = ppl_from_nll(nll, mask=mask)
    assert out == pytest.approx(math.exp(nll[mask].mean()), rel=1e-12)
    assert out >= 1.0


def test_masked_tokens_do_not_count_whatever_their_nll():
    nll = np.array([[1.0, 3.0, np.inf], [2.0, 1e9, 0.0]])
    mask = np.array([[True, True, False], [True, False, False]])
    assert ppl_from_nll(nll, mask=mask) == pytest.approx(math.exp(2.0))


def test_mask_is_keyword_only():
    with pytest.raises(TypeError):
        ppl_from_nll([1.0], [True])  # type: ignore[misc]


@pytest.mark.parametrize(
    ("nll", "mask", "error", "match"),
    [
        ([1.0, 2.0], [1, 0], TypeError, r"mask must be a boolean array \(True = the token counts\), got dtype int"),
        ([1.0, 2.0], [True], ValueError, r"mask must have the shape of nll \(2,\), got \(1,\)"),
        ([1.0, 2.0], [False, False], ValueError, "mask selects no token"),
        ([1.0, -2.0], [True, False], ValueError, "nll must be >= 0"),
        ([1.0, np.nan], [True, False], ValueError, "nll contains NaN"),
        ([], np.zeros(0, bool), ValueError, "nll is empty"),
    ],
)
def test_ppl_from_nll_bad_mask(nll, mask, error, match):
    with pytest.raises(error, match=match):
        ppl_from_nll(nll, mask=np.asarray(mask))


# --------------------------------------------------------------------------------------------
# causal_lm_nll
# --------------------------------------------------------------------------------------------


@FAST
@given(st.integers(1, 4), st.integers(1, 7), st.integers(1, 12), st.data())
def test_causal_lm_nll_is_the_shifted_sequence_nll(batch, t, vocab, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    logits = rng.standard_normal((batch, t, vocab)) * 3
    ids = rng.integers(0, vocab, size=(batch, t))
    labels = ids.copy()
    drop = rng.random((batch, t)) < 0.3
    labels[drop] = -100
    nll, mask = causal_lm_nll(frozen(logits), frozen(labels))
    assert nll.shape == mask.shape == (batch, t - 1)
    np.testing.assert_array_equal(mask, ~drop[:, 1:])
    np.testing.assert_array_equal(nll[~mask], 0.0)
    expected = sequence_nll(logits[:, :-1], ids[:, 1:])
    np.testing.assert_array_equal(nll[mask], expected[mask])


def test_causal_lm_nll_shapes_and_dtypes():
    nll, mask = causal_lm_nll(np.zeros((1, 4)), [3])
    assert nll.shape == mask.shape == (0,)
    nll, mask = causal_lm_nll(np.zeros((2, 3, 5, 7), np.float16), np.zeros((2, 3, 5), np.int32))
    assert nll.shape == (2, 3, 4) and nll.dtype == np.float32 and mask.dtype == np.bool_
    np.testing.assert_allclose(nll, math.log(7), rtol=1e-6)


def test_causal_lm_nll_ignore_index_inside_the_vocabulary():
    # PyTorch semantics: any integer may be the ignored value, even a real token id.
    logits = np.log([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    nll, mask = causal_lm_nll(logits, [0, 1, 0], ignore_index=1)
    np.testing.assert_array_equal(mask, [False, True])
    np.testing.assert_allclose(nll, [0.0, math.log(2)])


def test_causal_lm_nll_ignores_whatever_an_ignored_row_predicts():
    logits = np.array([[0.0, 0.0], [-np.inf, 0.0], [0.0, 0.0]])
    nll, mask = causal_lm_nll(logits, [1, 1, -100])  # row 1 would give label 0 probability 0
    np.testing.assert_array_equal(nll, [math.log(2), 0.0])
    assert ppl_from_nll(nll, mask=mask) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("logits", "labels", "kwargs", "error", "match"),
    [
        (np.zeros(3), [0, 1, 2], {}, ValueError, r"logits must have shape \(\.\.\., t, vocab\), got shape \(3,\)"),
        (np.zeros((0, 3)), np.zeros(0, int), {}, ValueError, "logits must hold at least one position"),
        (np.zeros((2, 0)), [0, 0], {}, ValueError, "logits has an empty vocabulary"),
        (np.zeros((2, 3)), [0, 3], {}, ValueError, r"labels must be in \[0, 3\) or equal ignore_index=-100, got 3"),
        (np.zeros((2, 3)), [0, -1], {}, ValueError, r"labels must be in \[0, 3\) or equal ignore_index=-100, got -1"),
        (np.zeros((2, 3)), [0, -100], {"ignore_index": -1}, ValueError, "ignore_index=-1, got -100"),
        (np.zeros((2, 3)), [0.0, 1.0], {}, TypeError, "labels must have an integer dtype, got float64"),
        (np.zeros((2, 3)), [True, False], {}, TypeError, "labels must have an integer dtype, got bool"),
        (np.zeros((2, 3)), [0, 1, 2], {}, ValueError, r"labels must have shape logits.shape\[:-1\] = \(2,\), got \(3,\)"),
        (np.zeros((2, 3)), [0, 1], {"ignore_index": -100.0}, TypeError, "ignore_index must be an integer"),
        (np.array([[0.0, np.nan]] * 2), [0, 1], {}, ValueError, "logits contains NaN"),
        ([["a", "b"]] * 2, [0, 1], {}, TypeError, "logits must be an array of numbers"),
    ],
)
def test_causal_lm_nll_bad_input(logits, labels, kwargs, error, match):
    with pytest.raises(error, match=match):
        causal_lm_nll(logits, np.asarray(labels), **kwargs)


@pytest.mark.reference
def test_causal_lm_nll_matches_pytorch_and_hugging_face():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers.loss.loss_utils import ForCausalLMLoss

    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((3, 9, 50)) * 4).astype(np.float32)
    labels = rng.integers(0, 50, size=(3, 9))
    labels[0, 6:] = -100  # right padding
    labels[1, :4] = -100  # a prompt that is not scored
    nll, mask = causal_lm_nll(logits, labels)
    per_token = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits[:, :-1].reshape(-1, 50)),
        torch.from_numpy(labels[:, 1:].reshape(-1)),
        ignore_index=-100,
        reduction="none",
    ).numpy()
    np.testing.assert_allclose(nll.reshape(-1), per_token, rtol=1e-5, atol=1e-6)
    loss = ForCausalLMLoss(torch.from_numpy(logits), torch.from_numpy(labels), vocab_size=50)
    assert ppl_from_nll(nll, mask=mask) == pytest.approx(math.exp(loss.item()), rel=1e-5)


# --------------------------------------------------------------------------------------------
# strided_windows
# --------------------------------------------------------------------------------------------


@FAST
@given(st.integers(2, 200), st.integers(2, 40), st.data())
def test_windows_score_every_token_once(n, max_length, data):
    stride = data.draw(st.integers(1, max_length))
    windows = strided_windows(n, max_length=max_length, stride=stride)
    counts = np.zeros(n, int)
    prev_end = 0
    for i, (begin, end, first) in enumerate(windows):
        assert 0 <= begin < first < end <= n and end - begin <= max_length
        assert first >= prev_end  # nothing is scored twice
        if i > 0 and end - begin == max_length:
            assert first - begin >= max_length - stride  # context of every scored token
        counts[first:end] += 1
        prev_end = end
    assert windows[-1][1] == n or (stride == max_length and windows[-1][1] == n - 1)
    assert counts[0] == 0 and counts.max() == 1
    if stride < max_length:
        assert counts[1:].min() == 1  # every token but the first
    else:
        assert counts.sum() == n - math.ceil(n / max_length)  # each chunk's first token is lost


def test_windows_examples():
    assert strided_windows(10, max_length=4, stride=2) == [(0, 4, 1), (2, 6, 4), (4, 8, 6), (6, 10, 8)]
    assert strided_windows(10, max_length=4, stride=4) == [(0, 4, 1), (4, 8, 5), (8, 10, 9)]
    assert strided_windows(9, max_length=4, stride=4) == [(0, 4, 1), (4, 8, 5)]  # "8" alone scores nothing
    assert strided_windows(5, max_length=8, stride=3) == [(0, 5, 1)]
    assert strided_windows(5, max_length=2, stride=1) == [(0, 2, 1), (1, 3, 2), (2, 4, 3), (3, 5, 4)]


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((1, 4, 2), ValueError, "n_tokens must be >= 2, got 1"),
        ((10, 1, 1), ValueError, "max_length must be >= 2, got 1"),
        ((10, 4, 0), ValueError, "stride must be >= 1, got 0"),
        ((10, 4, 5), ValueError, r"stride must be <= max_length = 4 \(a larger stride would skip tokens\), got 5"),
        ((10.0, 4, 2), TypeError, "n_tokens must be an integer"),
        ((10, 4, True), TypeError, "stride must be an integer"),
    ],
)
def test_windows_bad_input(args, error, match):
    n, max_length, stride = args
    with pytest.raises(error, match=match):
        strided_windows(n, max_length=max_length, stride=stride)


# --------------------------------------------------------------------------------------------
# strided_nll / strided_ppl
# --------------------------------------------------------------------------------------------


@FAST
@given(st.integers(1, 4), st.integers(2, 60), st.data())
def test_enough_context_gives_the_full_sequence_nll_exactly(lookback, n, data):
    vocab = 7
    fn = ngram_model(vocab, lookback, seed=lookback)
    tokens = np.random.default_rng(n).integers(0, vocab, size=n)
    max_length = data.draw(st.integers(lookback + 1, lookback + 12))
    stride = data.draw(st.integers(1, max_length - lookback))  # max_length - stride >= lookback
    nll, scored = strided_nll(fn, frozen(tokens), max_length=max_length, stride=stride)
    full = sequence_nll(fn(tokens)[:-1], tokens[1:])
    np.testing.assert_array_equal(scored, np.arange(n) > 0)
    np.testing.assert_array_equal(nll[1:], full)
    assert nll[0] == 0.0
    out = strided_ppl(fn, tokens, max_length=max_length, stride=stride)
    assert out == ppl_from_logits(fn(tokens)[:-1], tokens[1:])


def test_stride_one_bigram_equals_full_sequence():
    table = np.log(np.random.default_rng(0).dirichlet(np.ones(5), size=5))
    tokens = np.random.default_rng(1).integers(0, 5, size=50)
    full = ppl_from_logits(table[tokens[:-1]], tokens[1:])
    assert strided_ppl(lambda ids: table[ids], tokens, max_length=2, stride=1) == full


@pytest.mark.parametrize("stride", [1, 3, 8, 16])
def test_one_window_when_the_text_fits_real_decoder(stride):
    params = init_decoder_params(40, 16, 2, 2, rng=np.random.default_rng(0))
    tokens = np.random.default_rng(1).integers(0, 40, size=16)
    calls = []

    def logits_fn(ids):
        calls.append(ids.size)
        return decoder_forward(params, ids)

    out = strided_ppl(logits_fn, tokens, max_length=16, stride=stride)
    assert calls == [16]
    full = ppl_from_logits(decoder_forward(params, tokens)[:-1], tokens[1:])
    assert out == pytest.approx(full, rel=1e-6)


def test_chunks_lose_context_the_strided_windows_keep():
    vocab, period = 64, 48
    tokens = np.tile(np.random.default_rng(0).permutation(vocab)[:period], 4)
    fn = copy_model(vocab)
    full = ppl_from_logits(fn(tokens)[:-1], tokens[1:])
    strided = strided_ppl(fn, tokens, max_length=64, stride=8)  # >= 56 tokens of context: enough
    chunked = strided_ppl(fn, tokens, max_length=64, stride=64)
    assert strided == pytest.approx(full, rel=1e-12)
    assert chunked > 3 * strided


def test_strided_ppl_weights_windows_by_scored_tokens():
    # Windows of very different sizes: the token-weighted mean is the answer, a mean of window
    # means is not.
    fn = copy_model(16)
    tokens = np.tile(np.arange(10), 4)[:37]
    nll, scored = strided_nll(fn, tokens, max_length=12, stride=10)
    windows = strided_windows(tokens.size, max_length=12, stride=10)
    sizes = [end - first for _, end, first in windows]
    assert len(set(sizes)) > 1
    means = [nll[first:end].mean() for _, end, first in windows]
    exact = strided_ppl(fn, tokens, max_length=12, stride=10)
    assert exact == pytest.approx(math.exp(np.dot(means, sizes) / sum(sizes)), rel=1e-12)
    assert exact == pytest.approx(math.exp(nll[scored].sum() / scored.sum()), rel=1e-12)
    assert abs(math.exp(np.mean(means)) - exact) > 1e-3


@pytest.mark.parametrize("vocab", [2, 13, 100])
def test_uniform_model_has_ppl_vocab_through_the_windows(vocab):
    tokens = np.arange(30) % vocab
    out = strided_ppl(lambda ids: np.zeros((ids.size, vocab)), tokens, max_length=7, stride=3)
    assert out == pytest.approx(vocab, rel=1e-12)


def test_logits_fn_gets_a_copy_and_int64_windows():
    tokens = frozen(np.array([1, 2, 3, 1, 2], dtype=np.int16))
    seen = []

    def logits_fn(ids):
        seen.append(ids.dtype)
        ids[:] = 0  # must not reach the caller's tokens
        return np.zeros((ids.size, 4))

    nll, scored = strided_nll(logits_fn, tokens, max_length=3, stride=1)
    assert set(seen) == {np.dtype(np.int64)}
    np.testing.assert_allclose(nll[scored], math.log(4))


@pytest.mark.parametrize(
    ("fn", "tokens", "kwargs", "error", "match"),
    [
        (3, [0, 1], {}, TypeError, "logits_fn must be callable, got int"),
        (lambda ids: np.zeros((ids.size, 4)), [[0, 1]], {}, ValueError, r"tokens must be 1-D \(one text\), got shape \(1, 2\)"),
        (lambda ids: np.zeros((ids.size, 4)), [0], {}, ValueError, "tokens must hold at least 2 tokens"),
        (lambda ids: np.zeros((ids.size, 4)), [0.0, 1.0], {}, TypeError, "tokens must have an integer dtype"),
        (lambda ids: np.zeros((ids.size, 4)), [0, -1], {}, ValueError, "tokens must be >= 0, got -1"),
        (lambda ids: np.zeros((ids.size - 1, 4)), [0, 1, 2], {}, ValueError,
         r"logits_fn must return logits of shape \(t, vocab\) for a window of t = 3 tokens, got shape \(2, 4\)"),
        (lambda ids: np.zeros(ids.size), [0, 1, 2], {}, ValueError, "logits_fn must return logits of shape"),
        (lambda ids: np.zeros((ids.size, 2)), [0, 1, 2], {}, ValueError,
         r"tokens must be < 2 \(the vocabulary of logits_fn's logits\), got 2"),
        (lambda ids: [["x"] * 4] * ids.size, [0, 1, 2], {}, TypeError, r"logits_fn\(ids\) must be an array of numbers"),
        (lambda ids: np.full((ids.size, 4), np.nan), [0, 1, 2], {}, ValueError, "logits contains NaN"),
        (lambda ids: np.zeros((ids.size, 4)), [0, 1, 2], {"stride": 9}, ValueError, "stride must be <= max_length"),
        (lambda ids: np.zeros((ids.size, 4)), [0, 1, 2], {"max_length": 1}, ValueError, "max_length must be >= 2"),
    ],
)
def test_strided_bad_input(fn, tokens, kwargs, error, match):
    kw = {"max_length": 4, "stride": 2} | kwargs
    with pytest.raises(error, match=match):
        strided_nll(fn, np.asarray(tokens), **kw)
    with pytest.raises(error, match=match):
        strided_ppl(fn, np.asarray(tokens), **kw)


@pytest.mark.reference
@pytest.mark.parametrize(("max_length", "stride"), [(32, 8), (32, 32), (20, 7), (64, 16)])
def test_strided_ppl_is_the_hugging_face_guide_loop_with_exact_counts(max_length, stride):
    """The guide's loop (-100 on the context labels, the model shifting inside), summing the
    per-token losses instead of weighting window means: the same number as strided_ppl."""
    torch = pytest.importorskip("torch")
    vocab = 64
    fn = copy_model(vocab)
    tokens = np.tile(np.random.default_rng(0).permutation(vocab)[:40], 3)[:113]
    seq_len = tokens.size
    nll_sum, n_tokens, prev_end_loc = 0.0, 0, 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        input_ids = torch.from_numpy(tokens[begin_loc:end_loc])
        target_ids = input_ids.clone()
        target_ids[:-trg_len] = -100
        logits = torch.from_numpy(fn(tokens[begin_loc:end_loc]))
        losses = torch.nn.functional.cross_entropy(
            logits[:-1], target_ids[1:], ignore_index=-100, reduction="sum"
        )
        nll_sum += losses.item()
        n_tokens += int((target_ids[1:] != -100).sum())
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    expected = math.exp(nll_sum / n_tokens)
    assert strided_ppl(fn, tokens, max_length=max_length, stride=stride) == pytest.approx(expected, rel=1e-12)
    _, scored = strided_nll(fn, tokens, max_length=max_length, stride=stride)
    assert scored.sum() == n_tokens


# --------------------------------------------------------------------------------------------
# bits_per_byte
# --------------------------------------------------------------------------------------------


@FAST
@given(hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(0, 20)), st.integers(1, 500))
def test_bits_per_byte_and_ppl_are_two_views_of_one_total(nll, n_bytes):
    bpb = bits_per_byte(frozen(nll), n_bytes)
    assert bpb == pytest.approx(nll.sum() / (n_bytes * math.log(2)), rel=1e-12, abs=1e-300)
    assert ppl_from_nll(nll) == pytest.approx(2 ** (bpb * n_bytes / nll.size), rel=1e-9)


def test_bits_per_byte_does_not_depend_on_the_tokenisation():
    text = "abab"
    as_chars = np.full(4, math.log(2.0))
    as_pairs = np.full(2, math.log(4.0))
    assert ppl_from_nll(as_chars) == pytest.approx(2.0) and ppl_from_nll(as_pairs) == pytest.approx(4.0)
    assert bits_per_byte(as_chars, len(text)) == pytest.approx(1.0)
    assert bits_per_byte(as_pairs, len(text)) == pytest.approx(1.0)


def test_bits_per_byte_with_mask():
    nll = np.array([math.log(2.0), 50.0, math.log(2.0)])
    assert bits_per_byte(nll, 2, mask=np.array([True, False, True])) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("nll", "n_bytes", "error", "match"),
    [
        ([1.0], 0, ValueError, "n_bytes must be >= 1, got 0"),
        ([1.0], 2.0, TypeError, "n_bytes must be an integer"),
        ([-1.0], 2, ValueError, "nll must be >= 0"),
        ([], 2, ValueError, "nll is empty"),
    ],
)
def test_bits_per_byte_bad_input(nll, n_bytes, error, match):
    with pytest.raises(error, match=match):
        bits_per_byte(nll, n_bytes)
