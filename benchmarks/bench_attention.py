"""Benchmark llmfund's attention, flash attention, RoPE and KV cache against their baselines.

Run from the repository root::

    python benchmarks/bench_attention.py            # full sizes (about a minute)
    python benchmarks/bench_attention.py --quick    # small sizes (a few seconds)

Every row compares llmfund with a baseline *in the same run, on the same machine, on one
thread*, and prints the ratio ``reference time / ours`` (higher is better for llmfund; for
memory, ``reference peak / ours``) next to its target:

* attention: the textbook ``softmax(q @ k.T / np.sqrt(d)) @ v`` (target: ours >= 2x faster)
  and ``torch.nn.functional.scaled_dot_product_attention`` (target: ours within 2.5x, i.e.
  ratio >= 0.4);
* flash attention: faster than the textbook at t = 1024, and a peak memory (tracemalloc,
  which sees NumPy's allocations) >= 15x lower at t = 4096;
* RoPE: Hugging Face ``apply_rotary_pos_emb`` with precomputed cos/sin tables (target: no
  slower, ratio >= 1);
* KV cache: decoding 256 tokens with one attention layer, recomputing K and V of the whole
  prefix each step versus ``KVCache.update`` with the new row (target: >= 10x).

Rows whose reference (torch, transformers) is not installed are reported as skipped. A full
run exits with status 1 if a target is missed; ``--quick`` (sizes too small for the targets
to be meaningful) only checks that every case runs and agrees with its baseline.

``run(quick, sections)`` returns the rows (see ``benchlib.py``) for ``benchmarks/report.py``.
"""

from __future__ import annotations

import os

# One thread everywhere, set before NumPy or torch load their BLAS/OpenMP runtimes: the
# comparison is about the algorithms, not about how many cores each library grabs.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from typing import Any, Callable, Iterable  # noqa: E402

import numpy as np  # noqa: E402

import benchlib  # noqa: E402
from llmfund.attention import scaled_dot_product_attention  # noqa: E402
from llmfund.flash_attention import flash_attention  # noqa: E402
from llmfund.kv_cache import KVCache  # noqa: E402
from llmfund.rope import apply_rope  # noqa: E402

BENCH = "attention"
SECTIONS = ("attention", "flash", "rope", "kv_decode")
# The tables of the benchmarks page: title and baseline, in both languages.
GROUPS = {
    "sdpa-textbook": dict(
        en="Scaled dot-product attention vs the textbook formula", zh="缩放点积注意力 vs 教科书公式",
        baseline_en="textbook NumPy", baseline_zh="教科书式 NumPy",
    ),
    "sdpa-torch": dict(
        en="Scaled dot-product attention vs PyTorch", zh="缩放点积注意力 vs PyTorch",
        baseline_en="torch SDPA", baseline_zh="torch SDPA",
    ),
    "flash-time": dict(
        en="Flash attention (block 128): time", zh="Flash attention（块大小 128）：耗时",
        baseline_en="textbook NumPy", baseline_zh="教科书式 NumPy",
    ),
    "flash-memory": dict(
        en="Flash attention (block 128): peak memory", zh="Flash attention（块大小 128）：峰值内存",
        baseline_en="textbook NumPy", baseline_zh="教科书式 NumPy",
    ),
    "rope": dict(
        en="RoPE on q and k vs Hugging Face", zh="对 q、k 施加 RoPE vs Hugging Face",
        baseline_en="HF apply_rotary_pos_emb", baseline_zh="HF apply_rotary_pos_emb",
    ),
    "kv-decode": dict(
        en="KV cache: decoding with one attention layer", zh="KV Cache：单个注意力层的解码",
        baseline_en="recompute the prefix", baseline_zh="每步重算前缀",
    ),
}  # fmt: skip


def _references() -> tuple[Any, Any]:
    """torch and HF's ``apply_rotary_pos_emb``, or None for what is not installed."""
    torch = benchlib.optional("torch")
    llama = benchlib.optional("transformers.models.llama.modeling_llama") if torch is not None else None
    return torch, getattr(llama, "apply_rotary_pos_emb", None)


# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------


def best_time(fn: Callable[[], object], repeat: int, *, warm_up: bool = True) -> float:
    """Best of ``repeat`` runs after one warm-up, in seconds (the least noisy estimate)."""
    if warm_up:
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak memory allocated while ``fn`` runs; NumPy reports its buffers to tracemalloc."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------------------------------------
# Baselines written the way textbooks write them
# ---------------------------------------------------------------------------------------------


def textbook_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def textbook_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal_neg_inf: np.ndarray | None) -> np.ndarray:
    """``softmax(q @ k.T / np.sqrt(d)) @ v``; for causal, plus a precomputed -inf upper triangle."""
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if causal_neg_inf is not None:
        scores = scores + causal_neg_inf
    return textbook_softmax(scores) @ v


def neg_inf_mask(t: int) -> np.ndarray:
    return np.triu(np.full((t, t), -np.inf, dtype=np.float32), k=1)


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------


def bench_attention(rows: list[dict], t: int, d: int, repeat: int, dtypes: dict[str, str], torch: Any) -> None:
    g = np.random.default_rng(0)
    for label, label_zh, shape in (("1 head", "单头", (t, d)), ("b=1, h=8", "b=1, h=8", (1, 8, t, d))):
        q, k, v = (g.standard_normal(shape, dtype=np.float32) for _ in range(3))
        for causal in (False, True):
            mask = neg_inf_mask(t) if causal else None
            kind = "causal" if causal else "full"
            ours_out = scaled_dot_product_attention(q, k, v, is_causal=causal)
            text_out = textbook_attention(q, k, v, mask)
            np.testing.assert_allclose(ours_out, text_out, rtol=1e-3, atol=1e-4)
            dtypes[f"sdpa {kind} ({label})"] = f"ours {ours_out.dtype}, textbook {text_out.dtype}"
            ours = best_time(lambda: scaled_dot_product_attention(q, k, v, is_causal=causal), repeat)
            text = best_time(lambda: textbook_attention(q, k, v, mask), repeat)
            case = f"{kind} fp32, {label}, t={t}, d={d}"
            case_zh = f"{'因果' if causal else '完整'} fp32，{label_zh}，t={t}，d={d}"
            rows.append(
                benchlib.row(BENCH, "sdpa-textbook", case, case_zh=case_zh, unit="s", ours=ours, reference=text, target=2.0)
            )
            if torch is None:
                rows.append(
                    benchlib.row(BENCH, "sdpa-torch", case, case_zh=case_zh, unit="s", ours=ours, target=0.4,
                                 note="torch not installed", note_zh="未安装 torch")
                )  # fmt: skip
                continue
            tq, tk, tv = (torch.from_numpy(a) for a in (q, k, v))
            if tq.ndim == 2:  # torch's sdpa wants a batch dimension
                tq, tk, tv = tq[None], tk[None], tv[None]
            with torch.inference_mode():
                ref_out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
                np.testing.assert_allclose(ours_out, ref_out.numpy().reshape(ours_out.shape), rtol=1e-3, atol=1e-4)
                ref = best_time(
                    lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal), repeat
                )
            rows.append(
                benchlib.row(BENCH, "sdpa-torch", case, case_zh=case_zh, unit="s", ours=ours, reference=ref, target=0.4)
            )


def bench_flash(rows: list[dict], t: int, t_mem: int, d: int, repeat: int, dtypes: dict[str, str]) -> None:
    g = np.random.default_rng(1)
    q, k, v = (g.standard_normal((t, d), dtype=np.float32) for _ in range(3))
    for causal in (False, True):
        kind = "causal" if causal else "full"
        mask = neg_inf_mask(t) if causal else None
        flash_out = flash_attention(q, k, v, is_causal=causal, block_size=128)
        text_out = textbook_attention(q, k, v, mask)
        np.testing.assert_allclose(flash_out, text_out, rtol=1e-3, atol=1e-4)
        dtypes[f"flash {kind}"] = f"ours {flash_out.dtype}, textbook {text_out.dtype}"
        ours = best_time(lambda: flash_attention(q, k, v, is_causal=causal, block_size=128), repeat)
        text = best_time(lambda: textbook_attention(q, k, v, mask), repeat)
        case_zh = f"{'因果' if causal else '完整'} fp32，t={t}，d={d}"
        rows.append(
            benchlib.row(BENCH, "flash-time", f"{kind} fp32, t={t}, d={d}", case_zh=case_zh, unit="s", ours=ours,
                         reference=text, target=1.0)
        )  # fmt: skip

    q, k, v = (g.standard_normal((t_mem, d), dtype=np.float32) for _ in range(3))
    ours_peak = peak_bytes(lambda: flash_attention(q, k, v, block_size=128))
    text_peak = peak_bytes(lambda: textbook_attention(q, k, v, None))
    rows.append(
        benchlib.row(BENCH, "flash-memory", f"full fp32, t={t_mem}, d={d}", case_zh=f"完整 fp32，t={t_mem}，d={d}",
                     unit="B", ours=ours_peak, reference=text_peak, target=15.0)
    )  # fmt: skip


def bench_rope(
    rows: list[dict], shape: tuple[int, int, int, int], repeat: int, torch: Any, apply_rotary_pos_emb: Any
) -> None:
    b, h, t, hd = shape
    g = np.random.default_rng(2)
    q = g.standard_normal(shape, dtype=np.float32)
    k = g.standard_normal(shape, dtype=np.float32)
    positions = np.arange(t)
    case = f"q and k {shape} fp32"
    case_zh = f"q 和 k，{shape}，fp32"
    if torch is None or apply_rotary_pos_emb is None:
        rows.append(
            benchlib.row(BENCH, "rope", case, case_zh=case_zh, unit="s", ours=None, target=1.0,
                         note="torch/transformers not installed", note_zh="未安装 torch/transformers")
        )  # fmt: skip
        return
    # HF's tables, as LlamaRotaryEmbedding.forward builds them once per forward pass (not timed).
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    freqs = torch.arange(t, dtype=torch.float32)[None, :, None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()  # (1, t, hd)
    tq, tk = torch.from_numpy(q), torch.from_numpy(k)

    def ours() -> object:
        return apply_rope(q, positions), apply_rope(k, positions)

    with torch.inference_mode():
        q_hf, _ = apply_rotary_pos_emb(tq, tk, cos, sin)
        q_ours, _ = ours()
        assert q_ours.dtype == np.float32
        np.testing.assert_allclose(q_ours, q_hf.numpy(), atol=2e-3)  # HF's angles are float32
        ref = best_time(lambda: apply_rotary_pos_emb(tq, tk, cos, sin), repeat)
    mine = best_time(ours, repeat)
    rows.append(
        benchlib.row(BENCH, "rope", case, case_zh=case_zh, unit="s", ours=mine, reference=ref, target=1.0,
                     note="ours computes its cos/sin inside",
                     note_zh="llmfund 在函数内部计算 cos/sin")
    )  # fmt: skip


def bench_kv_decode(rows: list[dict], d_model: int, n_heads: int, prompt: int, n_new: int, repeat: int) -> None:
    """One causal self-attention layer (projections + RoPE), decoding ``n_new`` tokens."""
    head_dim = d_model // n_heads
    g = np.random.default_rng(3)
    w_q, w_k, w_v, w_o = (g.standard_normal((d_model, d_model), dtype=np.float32) / np.sqrt(d_model) for _ in range(4))
    # The inputs of every position (teacher-forced: no sampling, so both loops see the same x).
    x_all = g.standard_normal((prompt + n_new, d_model), dtype=np.float32)

    def heads(a: np.ndarray) -> np.ndarray:  # (t, n_heads * head_dim) -> (n_heads, t, head_dim)
        return a.reshape(a.shape[0], n_heads, head_dim).swapaxes(0, 1)

    def merge(y: np.ndarray) -> np.ndarray:  # (n_heads, t, head_dim) -> (t, d_model)
        return y.swapaxes(0, 1).reshape(y.shape[1], d_model)

    def layer(x: np.ndarray, positions: np.ndarray, cache: KVCache | None) -> np.ndarray:
        q = apply_rope(heads(x @ w_q), positions)
        k = apply_rope(heads(x @ w_k), positions)
        v = heads(x @ w_v)
        if cache is not None:
            k, v = cache.update(k, v)
        return merge(scaled_dot_product_attention(q, k, v, is_causal=True)) @ w_o

    def recompute() -> np.ndarray:
        # Without a cache every step runs the layer over the whole prefix again.
        out = []
        for i in range(prompt, prompt + n_new):
            y = layer(x_all[: i + 1], np.arange(i + 1), None)
            out.append(y[-1])
        return np.stack(out)

    def cached() -> np.ndarray:
        cache = KVCache(capacity=prompt + 1)  # let it grow, as a server that does not know n_new
        layer(x_all[:prompt], np.arange(prompt), cache)  # prefill (its output is not needed)
        out = []
        for i in range(prompt, prompt + n_new):
            out.append(layer(x_all[i : i + 1], np.array([i]), cache)[0])
        return np.stack(out)

    # Both loops compute the same outputs; this run is also their warm-up.
    np.testing.assert_allclose(cached(), recompute(), rtol=1e-3, atol=1e-3)
    ours = best_time(cached, repeat, warm_up=False)
    ref = best_time(recompute, repeat, warm_up=False)
    case = f"{n_new} tokens after a {prompt}-token prompt, d_model={d_model}, {n_heads} heads, fp32"
    case_zh = f"{prompt} 个 token 的提示词之后解码 {n_new} 个，d_model={d_model}，{n_heads} 个头，fp32"
    rows.append(
        benchlib.row(BENCH, "kv-decode", case, case_zh=case_zh, unit="s", ours=ours, reference=ref, target=10.0)
    )


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def run(quick: bool = False, sections: Iterable[str] | None = None, repeat: int | None = None) -> list[dict]:
    """Run the cases (all, or the named ``sections`` of :data:`SECTIONS`); print and return the rows."""
    chosen = benchlib.select(sections, SECTIONS)
    repeat = repeat or (3 if quick else 5)
    if quick:
        sizes = dict(t=256, t_mem=1024, rope=(1, 8, 1024, 128), decode=(256, 4, 16, 64))
    else:
        sizes = dict(t=1024, t_mem=4096, rope=(1, 32, 4096, 128), decode=(512, 8, 16, 256))
    torch, apply_rotary_pos_emb = _references() if {"attention", "rope"} & set(chosen) else (None, None)

    rows: list[dict] = []
    dtypes: dict[str, str] = {}
    if "attention" in chosen:
        bench_attention(rows, sizes["t"], 64, repeat, dtypes, torch)
    if "flash" in chosen:
        bench_flash(rows, sizes["t"], sizes["t_mem"], 64, repeat, dtypes)
    if "rope" in chosen:
        bench_rope(rows, sizes["rope"], repeat, torch, apply_rotary_pos_emb)
    if "kv_decode" in chosen:
        d_model, n_heads, prompt, n_new = sizes["decode"]
        bench_kv_decode(rows, d_model, n_heads, prompt, n_new, max(1, repeat // 2))

    print("ratio = reference time / our time (memory: reference peak / our peak); higher is better\n")
    benchlib.print_rows(rows)
    if dtypes:
        print("\nOutput dtypes for float32 inputs:")
        for case, kinds in dtypes.items():
            print(f"  {case}: {kinds}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repeats (a smoke test)")
    parser.add_argument("--repeat", type=int, default=None, help="best of how many runs (default 5, quick 3)")
    args = parser.parse_args(argv)
    torch, apply_rotary_pos_emb = _references()
    repeat = args.repeat or (3 if args.quick else 5)
    print(f"llmfund attention benchmark ({'quick' if args.quick else 'full'} sizes, best of {repeat}, 1 thread)")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"torch {torch.__version__ if torch else 'not installed'}, "
        f"transformers {'available' if apply_rotary_pos_emb else 'not installed'}, "
        f"{platform.machine()} {platform.processor() or ''}".rstrip()
    )
    rows = run(args.quick, repeat=repeat)
    return benchlib.finish(rows, args.quick)


if __name__ == "__main__":
    sys.exit(main())
