"""Benchmark llmfund.sample and llmfund.sequence_nll against a textbook NumPy version and PyTorch.

Run: ``python benchmarks/bench_sampling_ppl.py`` (add ``--quick`` for small sizes and fewer
repeats: a smoke test). Prints, from one run, the best-of-N wall time of each version and the
speed-up ``theirs / ours`` (above 1 = llmfund is faster), the same direction as every other
benchmark script. Everything runs on one thread (BLAS, OpenMP, torch), so the ratios compare
algorithms, not core counts. The PyTorch / Hugging Face rows are reported as skipped when torch
and transformers are not installed (``pip install -e .[reference]``).

Compared:
- sampling: ``llmfund.sample`` vs a textbook NumPy sampler (full sort, softmax, cumsum) and vs
  Hugging Face's warpers (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper) + softmax +
  ``torch.multinomial``, on logits shaped like a language model's (a Gaussian bulk plus a few
  likely tokens) and, for top-p alone, also on a flat Gaussian (the worst case for our
  candidate search, whose nucleus holds thousands of tokens);
- NLL: ``llmfund.sequence_nll`` vs a textbook ``log_softmax`` + gather and vs
  ``torch.nn.functional.cross_entropy(reduction="none")``.

Targets (speed-up = theirs / ours): on LM-like logits ``sample`` is no slower than either
baseline (>= 1x), since it restricts the work to a few candidates instead of sorting the
vocabulary; on the flat Gaussian, its worst case, it is at most 2.5x slower (>= 0.4x).
``sequence_nll`` is no slower than the textbook (>= 1x) and at most 2.5x slower than torch's
cross-entropy (>= 0.4x). A full run exits with status 1 if a target is missed.

``run(quick, sections)`` returns the rows (see ``benchlib.py``) for ``benchmarks/report.py``.
"""

from __future__ import annotations

import os

# One thread everywhere, set before NumPy (and its BLAS) or torch is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any, Iterable  # noqa: E402

import numpy as np  # noqa: E402

import benchlib  # noqa: E402
from llmfund.ppl import sequence_nll  # noqa: E402
from llmfund.sampling import sample  # noqa: E402

BENCH = "sampling_ppl"
SECTIONS = ("sampling", "nll")
GROUPS = {
    "sample-textbook": dict(
        en="Sampling (temperature, top-k, top-p) vs a textbook sampler",
        zh="采样（温度、Top-k、Top-p）vs 教科书式采样器",
        baseline_en="textbook NumPy (full sort)", baseline_zh="教科书式 NumPy（全排序）",
    ),
    "sample-hf": dict(
        en="Sampling vs Hugging Face's logits warpers", zh="采样 vs Hugging Face 的 logits 处理器",
        baseline_en="HF warpers + torch.multinomial", baseline_zh="HF warpers + torch.multinomial",
    ),
    "nll-textbook": dict(
        en="Negative log-likelihood vs the textbook log-softmax", zh="负对数似然 vs 教科书式 log-softmax",
        baseline_en="textbook NumPy", baseline_zh="教科书式 NumPy",
    ),
    "nll-torch": dict(
        en="Negative log-likelihood vs PyTorch cross-entropy", zh="负对数似然 vs PyTorch 交叉熵",
        baseline_en="torch cross_entropy", baseline_zh="torch cross_entropy",
    ),
}  # fmt: skip
LM_TARGET, FLAT_TARGET = 1.0, 0.4  # minimum speed-ups of sample(), see the module docstring
NLL_TEXTBOOK_TARGET, NLL_TORCH_TARGET = 1.0, 0.4


def _references(warpers: bool = True) -> tuple[Any, Any]:
    """torch and (if ``warpers``) HF's ``logits_process`` module, or None for what is not installed."""
    torch = benchlib.optional("torch")
    lp = benchlib.optional("transformers.generation.logits_process") if warpers and torch is not None else None
    return torch, lp


def best_of(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls, in seconds (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


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


def hf_sample(torch, lp, scores, temperature, top_k, top_p):
    """Hugging Face's sampling step: the warpers (``lp`` is its logits_process), softmax, multinomial."""
    warpers = [lp.TemperatureLogitsWarper(temperature)]
    if top_k is not None:
        warpers.append(lp.TopKLogitsWarper(top_k))
    if top_p is not None:
        warpers.append(lp.TopPLogitsWarper(top_p))
    for warper in warpers:
        scores = warper(None, scores)
    return torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1)


def textbook_nll(logits, labels):
    """log_softmax over the whole array (a second (b, t, vocab) array), then gather the labels."""
    top = logits.max(axis=-1, keepdims=True)
    log_probs = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def _speedup(theirs: float | None, ours: float) -> str:
    return "-" if theirs is None else f"{theirs / ours:.2f}"


def bench_sampling(rows: list[dict], vocabs, batches, repeats: int, torch: Any, lp: Any) -> None:
    print("sample: time in ms (best of %d), speed-up = theirs / ours (> 1: llmfund is faster)" % repeats)
    header = f"{'case':<44}{'ours':>9}{'textbook':>10}{'HF':>9}{'textbook/':>11}{'HF/':>7}  result"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    settings = [
        ("T=0.8 top_k=50 top_p=0.9", "T=0.8 top_k=50 top_p=0.9", 0.8, 50, 0.9, lm_like_logits),
        ("T=0.8 top_p=0.9", "T=0.8 top_p=0.9", 0.8, None, 0.9, lm_like_logits),
        ("T=0.8 top_p=0.9, flat Gaussian", "T=0.8 top_p=0.9，平坦高斯", 0.8, None, 0.9, None),
    ]
    for vocab in vocabs:
        for batch in batches:
            for name, name_zh, temperature, top_k, top_p, make in settings:
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
                hf = None
                if torch is not None and lp is not None:
                    scores = torch.from_numpy(logits)
                    hf = best_of(lambda: hf_sample(torch, lp, scores, temperature, top_k, top_p), repeats)
                target = FLAT_TARGET if make is None else LM_TARGET
                case, case_zh = f"{name}, b={batch}, V={vocab}", f"{name_zh}，b={batch}，V={vocab}"
                new = [
                    benchlib.row(BENCH, "sample-textbook", case, case_zh=case_zh, unit="s", ours=ours,
                                 reference=book, target=target),
                    benchlib.row(BENCH, "sample-hf", case, case_zh=case_zh, unit="s", ours=ours, reference=hf,
                                 target=target, note="" if hf is not None else "torch/transformers not installed",
                                 note_zh="" if hf is not None else "未安装 torch/transformers"),
                ]  # fmt: skip
                rows += new
                result = "/".join(benchlib.status(r) for r in new)
                print(
                    f"{case:<44}{_ms(ours):>9}{_ms(book):>10}{_ms(hf):>9}{_speedup(book, ours):>11}"
                    f"{_speedup(hf, ours):>7}  {result} (>= {target:g})",
                    flush=True,
                )


def bench_nll(rows: list[dict], shape: tuple[int, int, int], repeats: int, torch: Any) -> None:
    print()
    print("sequence_nll: time in ms (best of %d), speed-up = theirs / ours (> 1: llmfund is faster)" % repeats)
    header = f"{'case':<44}{'ours':>9}{'textbook':>10}{'torch CE':>9}{'textbook/':>11}{'CE/':>7}  result"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    batch, t, vocab = shape
    logits = rng.standard_normal((batch, t, vocab), dtype=np.float32)
    labels = rng.integers(0, vocab, size=(batch, t))
    np.testing.assert_allclose(sequence_nll(logits, labels), textbook_nll(logits, labels), rtol=1e-4, atol=1e-4)
    ours = best_of(lambda: sequence_nll(logits, labels), repeats)
    book = best_of(lambda: textbook_nll(logits, labels), repeats)
    ce = None
    if torch is not None:
        flat_logits = torch.from_numpy(logits).reshape(-1, vocab)
        flat_labels = torch.from_numpy(labels).reshape(-1)
        ce = best_of(
            lambda: torch.nn.functional.cross_entropy(flat_logits, flat_labels, reduction="none"),
            repeats,
        )
    case = f"float32 ({batch}, {t}, {vocab})"
    new = [
        benchlib.row(BENCH, "nll-textbook", case, unit="s", ours=ours, reference=book, target=NLL_TEXTBOOK_TARGET),
        benchlib.row(BENCH, "nll-torch", case, unit="s", ours=ours, reference=ce, target=NLL_TORCH_TARGET,
                     note="" if ce is not None else "torch not installed", note_zh="" if ce is not None else "未安装 torch"),
    ]  # fmt: skip
    rows += new
    result = "/".join(benchlib.status(r) for r in new)
    print(
        f"{case:<44}{_ms(ours):>9}{_ms(book):>10}{_ms(ce):>9}{_speedup(book, ours):>11}{_speedup(ce, ours):>7}"
        f"  {result} (>= {NLL_TEXTBOOK_TARGET:g} / {NLL_TORCH_TARGET:g})",
        flush=True,
    )


def run(quick: bool = False, sections: Iterable[str] | None = None) -> list[dict]:
    """Run the cases (all, or the named ``sections`` of :data:`SECTIONS`); print and return the rows."""
    chosen = benchlib.select(sections, SECTIONS)
    repeats = 3 if quick else 7
    torch, lp = _references(warpers="sampling" in chosen)  # transformers is slow to import
    rows: list[dict] = []
    if "sampling" in chosen:
        if quick:
            bench_sampling(rows, (32_000,), (1, 8), repeats, torch, lp)
        else:
            bench_sampling(rows, (32_000, 128_256), (1, 32), repeats, torch, lp)
    if "nll" in chosen:
        bench_nll(rows, (2, 128, 32_000) if quick else (8, 512, 32_000), max(2, repeats // 2), torch)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repeats (a smoke test)")
    args = parser.parse_args(argv)
    torch, _ = _references(warpers=False)
    torch_version = torch.__version__ if torch else "not installed"
    print(f"numpy {np.__version__}, torch {torch_version}, 1 thread")
    print()
    rows = run(args.quick)
    return benchlib.finish(rows, args.quick)


if __name__ == "__main__":
    sys.exit(main())
