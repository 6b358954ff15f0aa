"""llmfund's sampling filters and NLL against Hugging Face transformers and PyTorch.

These run only with the ``reference`` extra installed (``pip install -e ".[reference]"``);
without torch or transformers the whole module is reported as skipped. Logits are float32, as a
model produces them, so the comparisons are in the precision HF itself works in.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from llmfund import sampling
from llmfund.ppl import ppl_from_logits, sequence_nll
from llmfund.sampling import (
    apply_repetition_penalty,
    apply_temperature,
    min_p_filter,
    sample,
    top_k_filter,
    top_p_filter,
)

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("torch and transformers are not installed (the reference extra)", allow_module_level=True)

pytestmark = pytest.mark.reference
SEEDS = range(4)

# Imported when the first test here runs, not at collection: the pytest-xdist worker that runs
# none of these tests does not pay for importing torch and transformers (about 3 s).
torch = None
MinPLogitsWarper = RepetitionPenaltyLogitsProcessor = TemperatureLogitsWarper = None
TopKLogitsWarper = TopPLogitsWarper = None


@pytest.fixture(autouse=True, scope="module")
def _import_references():
    global torch, MinPLogitsWarper, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper
    global TopKLogitsWarper, TopPLogitsWarper
    import torch
    from transformers.generation.logits_process import (
        MinPLogitsWarper,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )


def logits32(seed: int, shape=(4, 1000), scale=3.0, ties=False) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    if ties:
        x = np.round(x)  # many equal logits, so boundaries fall inside runs of ties
    return x.astype(np.float32)


def hf(warpers, x: np.ndarray) -> np.ndarray:
    scores = torch.from_numpy(x.copy())
    for warper in warpers:
        scores = warper(None, scores)
    return scores.numpy()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("temperature", [0.3, 0.8, 1.7])
def test_temperature_bit_for_bit(seed, temperature):
    x = logits32(seed)
    np.testing.assert_array_equal(
        apply_temperature(x, temperature), hf([TemperatureLogitsWarper(temperature)], x)
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 50, 999, 1000, 5000])
@pytest.mark.parametrize("ties", [False, True])
def test_top_k_bit_for_bit(seed, k, ties):
    x = logits32(seed, ties=ties)
    np.testing.assert_array_equal(top_k_filter(x, k), hf([TopKLogitsWarper(k)], x))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [0.05, 0.5, 0.9, 0.95, 0.999, 1.0])
def test_top_p_same_kept_set(seed, p):
    x = logits32(seed, scale=1.0 + seed)
    np.testing.assert_array_equal(top_p_filter(x, p), hf([TopPLogitsWarper(p)], x))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [0.3, 0.9])
def test_top_p_with_ties_keeps_as_many(seed, p):
    # HF sorts with an unstable sort, so which of several equal logits it keeps at the boundary
    # is arbitrary; we keep the lower ids. The number kept, and the kept values, must agree.
    x = logits32(seed, ties=True)
    ours, theirs = top_p_filter(x, p), hf([TopPLogitsWarper(p)], x)
    np.testing.assert_array_equal(np.isfinite(ours).sum(-1), np.isfinite(theirs).sum(-1))
    for r in range(x.shape[0]):
        np.testing.assert_array_equal(
            np.sort(ours[r][np.isfinite(ours[r])]), np.sort(theirs[r][np.isfinite(theirs[r])])
        )


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_top_p_exact_boundaries(n):
    # n equal tokens: every cumulative mass is an exact multiple of 1/n in float32, so p = j/n
    # lands exactly on a boundary, where "mass <= 1 - p is removed" must keep exactly j tokens.
    x = np.zeros((1, n), dtype=np.float32)
    for j in range(1, n + 1):
        p = j / n
        ours, theirs = top_p_filter(x, p), hf([TopPLogitsWarper(p)], x)
        assert np.isfinite(ours).sum() == np.isfinite(theirs).sum() == j


def test_top_p_one_drops_only_zero_probability_tokens():
    x = np.float32([[0.0, -50.0, -120.0, -200.0, -np.inf, 3.0]])
    np.testing.assert_array_equal(top_p_filter(x, 1.0), hf([TopPLogitsWarper(1.0)], x))
    assert np.isfinite(top_p_filter(x, 1.0)).sum() == 3


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("min_p", [0.0, 0.01, 0.1, 0.5, 1.0])
def test_min_p_same_kept_set(seed, min_p):
    x = logits32(seed)
    np.testing.assert_array_equal(min_p_filter(x, min_p), hf([MinPLogitsWarper(min_p)], x))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("penalty", [0.5, 1.0, 1.3, 2.0])
def test_repetition_penalty_bit_for_bit(seed, penalty):
    x = logits32(seed, shape=(3, 50))
    ids = np.random.default_rng(seed + 100).integers(0, 50, size=(3, 30))  # with repeats
    theirs = RepetitionPenaltyLogitsProcessor(penalty)(torch.from_numpy(ids), torch.from_numpy(x))
    np.testing.assert_array_equal(apply_repetition_penalty(x, ids, penalty), theirs.numpy())


SETTINGS = [
    dict(temperature=0.8, top_k=50, top_p=0.9),
    dict(temperature=0.7, top_k=20),
    dict(temperature=1.0, top_p=0.8),
    dict(temperature=1.3, top_p=0.95, min_p=0.05),
    dict(temperature=0.9, top_k=100, top_p=0.5, min_p=0.2),
]


def hf_warpers(temperature=1.0, top_k=None, top_p=None, min_p=None):
    """HF's order: temperature, top-k, top-p, min-p (GenerationMixin._get_logits_processor)."""
    warpers = [TemperatureLogitsWarper(temperature)]
    if top_k is not None:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p is not None:
        warpers.append(TopPLogitsWarper(top_p))
    if min_p is not None:
        warpers.append(MinPLogitsWarper(min_p))
    return warpers


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("setting", SETTINGS)
def test_sample_distribution_matches_hf_warpers_and_softmax(seed, setting):
    x = logits32(seed, shape=(4, 8192), scale=2.0 + seed)
    ours = sampling._sampling_probabilities(x, **setting)
    theirs = torch.softmax(torch.from_numpy(hf(hf_warpers(**setting), x)), dim=-1).numpy()
    np.testing.assert_array_equal(ours > 0, theirs > 0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    tokens = sample(x, **setting, rng=seed)
    assert np.all(theirs[np.arange(4), tokens] > 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_sample_frequencies_match_torch_multinomial(seed):
    # Same distribution as softmax + torch.multinomial: compare draw frequencies on one row.
    x = logits32(seed, shape=(1, 30), scale=1.0)
    setting = dict(temperature=0.8, top_k=10, top_p=0.9)
    n = 20_000
    ours = np.bincount(sample(np.repeat(x, n, axis=0), **setting, rng=seed), minlength=30) / n
    probs = torch.softmax(torch.from_numpy(hf(hf_warpers(**setting), x)), dim=-1)
    torch.manual_seed(seed)
    theirs = np.bincount(torch.multinomial(probs[0], n, replacement=True).numpy(), minlength=30) / n
    np.testing.assert_array_equal(ours > 0, theirs > 0)
    assert np.abs(ours - theirs).max() < 0.02


@pytest.mark.parametrize("seed", SEEDS)
def test_sequence_nll_equals_cross_entropy(seed):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((2, 17, 301)) * 4).astype(np.float32)
    logits[0, 3, :100] = -np.inf  # masked tokens, not on the label
    labels = rng.integers(100, 301, size=(2, 17))
    theirs = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits).reshape(-1, 301), torch.from_numpy(labels).reshape(-1),
        reduction="none",
    ).reshape(2, 17)
    ours = sequence_nll(logits, labels)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(
        sequence_nll(logits.astype(np.float64), labels),
        torch.nn.functional.cross_entropy(
            torch.from_numpy(logits.astype(np.float64)).reshape(-1, 301),
            torch.from_numpy(labels).reshape(-1), reduction="none",
        ).reshape(2, 17).numpy(),
        rtol=1e-12, atol=1e-12,
    )
    ppl = torch.exp(theirs.double().mean()).item()
    assert ppl_from_logits(logits, labels) == pytest.approx(ppl, rel=1e-5)
