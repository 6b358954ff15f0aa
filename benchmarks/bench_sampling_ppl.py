"""Benchmark llmfund.sample and llmfund.sequence_nll against a textbook NumPy version and PyTorch.

Run: ``python benchmarks/bench_sampling_ppl.py`` (add ``--quick`` for fewer repeats). Prints, from
one run, the best-of-N wall time of each version and the ratio ours / theirs (below 1 = we are
faster). Everything runs on one thread (BLAS, OpenMP, torch), so the ratios compare algorithms,
not core counts. The PyTorch / Hugging Face rows appear only when torch and transformers are
installed (``pip install -e .[reference]``).

Compared:
- sampling: ``llmfund.sample`` vs a textbook NumPy sampler (full sort, softmax, cumsum) and vs
  Hugging Face's warpers (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper) + softmax +
  ``torch.multinomial``, on logits shaped like a language model's (a Gaussian bulk plus a few
  likely tokens) and, for top-p alone, also on a flat Gaussian (the worst case for our
  candidate search, whose nucleus holds thousands of tokens);
- NLL: ``llmfund.sequence_nll`` vs a textbook ``log_softmax`` + gather and vs
  ``torch.nn.functional.cross_entropy(reduction="none")``.
"""

from __future__ import annotations

import os

# One thread everywhere, set before NumPy (and its BLAS) or torch is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from llmfund.ppl import sequence_nll  # noqa: E402
from llmfund.sampling import sample  # noqa: E402

try:
    import torch
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    torch.set_num_threads(1)
except ImportError:  # the reference rows are skipped
    torch = None


def best_of(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls, in milliseconds (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def lm_like_logits(batch: int, vocab: int, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian bulk (std 2) plus 20 tokens 8 to 14 nats above it, like an LM's logits."""
    logits = 2.0 * rng.standard_normal((batch, vocab), dtype=np.float32)
    for row in logits:
        likely = rng.choice(vocab, size=20, replace=False)
        row[likely] += rng.uniform(8.0, 14.0, size=20).astype(np.float32)
    return logits


def textbook_sample(logits, temperature, top_k, top_p, rng):
    """The sampler of a textbook: sort the whole row, cut, softmax, cumsum, invert the CDF."""
    z = logits / temperature
    order = np.argsort(-z, axis=-1)
    z = np.take_along_axis(z, order, axis=-1)
    if top_k is not None:
        z[:, top_k:] = -np.inf
    probs = np.exp(z - z[:, :1])
    probs /= probs.sum(axis=-1, keepdims=True)
    if top_p is not None:
        above = np.cumsum(probs, axis=-1) - probs  # the mass ranked strictly above each token
        probs[above >= top_p] = 0
        probs /= probs.sum(axis=-1, keepdims=True)
    cdf = np.cumsum(probs, axis=-1)
    pos = (cdf <= rng.random((len(z), 1))).sum(axis=-1)
    pos = np.minimum(pos, (probs > 0).sum(axis=-1) - 1)
    return np.take_along_axis(order, pos[:, None], axis=-1)[:, 0]


def hf_sample(scores, temperature, top_k, top_p):
    """Hugging Face's sampling step: the warpers, softmax, torch.multinomial."""
    warpers = [TemperatureLogitsWarper(temperature)]
    if top_k is not None:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p is not None:
        warpers.append(TopPLogitsWarper(top_p))
    for warper in warpers:
        scores = warper(None, scores)
    return torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1)


def textbook_nll(logits, labels):
    """log_softmax over the whole array (a second (b, t, vocab) array), then gather the labels."""
    top = logits.max(axis=-1, keepdims=True)
    log_probs = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]


def bench_sampling(repeats: int) -> None:
    print("sample: time in ms (best of %d), ratio = ours / theirs" % repeats)
    header = f"{'case':<44}{'ours':>9}{'textbook':>10}{'HF':>9}{'/textbook':>11}{'/HF':>7}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    settings = [
        ("T=0.8 top_k=50 top_p=0.9", 0.8, 50, 0.9, lm_like_logits),
        ("T=0.8 top_p=0.9", 0.8, None, 0.9, lm_like_logits),
        ("T=0.8 top_p=0.9, flat Gaussian", 0.8, None, 0.9, None),
    ]
    for vocab in (32_000, 128_256):
        for batch in (1, 32):
            for name, temperature, top_k, top_p, make in settings:
                if make is None:
                    logits = rng.standard_normal((batch, vocab), dtype=np.float32)
                else:
                    logits = make(batch, vocab, rng)
                generator = np.random.default_rng(1)
                ours = best_of(
                    lambda: sample(
                        logits, temperature=temperature, top_k=top_k, top_p=top_p, rng=generator
                    ),
                    repeats,
                )
                book = best_of(
                    lambda: textbook_sample(logits, temperature, top_k, top_p, generator), repeats
                )
                line = f"{name + f', b={batch}, V={vocab}':<44}{ours:9.2f}{book:10.2f}"
                if torch is not None:
                    scores = torch.from_numpy(logits)
                    hf = best_of(lambda: hf_sample(scores, temperature, top_k, top_p), repeats)
                    line += f"{hf:9.2f}{ours / book:11.2f}{ours / hf:7.2f}"
                else:
                    line += f"{'-':>9}{ours / book:11.2f}{'-':>7}"
                print(line, flush=True)


def bench_nll(repeats: int) -> None:
    print()
    print("sequence_nll: time in ms (best of %d), ratio = ours / theirs" % repeats)
    header = f"{'case':<44}{'ours':>9}{'textbook':>10}{'torch CE':>9}{'/textbook':>11}{'/CE':>7}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    batch, t, vocab = 8, 512, 32_000
    logits = rng.standard_normal((batch, t, vocab), dtype=np.float32)
    labels = rng.integers(0, vocab, size=(batch, t))
    ours = best_of(lambda: sequence_nll(logits, labels), repeats)
    book = best_of(lambda: textbook_nll(logits, labels), repeats)
    line = f"{f'float32 ({batch}, {t}, {vocab})':<44}{ours:9.2f}{book:10.2f}"
    if torch is not None:
        flat_logits = torch.from_numpy(logits).reshape(-1, vocab)
        flat_labels = torch.from_numpy(labels).reshape(-1)
        ce = best_of(
            lambda: torch.nn.functional.cross_entropy(flat_logits, flat_labels, reduction="none"),
            repeats,
        )
        line += f"{ce:9.2f}{ours / book:11.2f}{ours / ce:7.2f}"
    else:
        line += f"{'-':>9}{ours / book:11.2f}{'-':>7}"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier numbers)")
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    torch_version = torch.__version__ if torch else "not installed"
    print(f"numpy {np.__version__}, torch {torch_version}, 1 thread")
    print()
    bench_sampling(repeats)
    bench_nll(max(2, repeats // 2))


if __name__ == "__main__":
    main()
