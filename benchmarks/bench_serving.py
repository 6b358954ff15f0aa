"""Serving benchmark: paged vs contiguous attention, KV memory waste, static vs continuous batching.

Run: ``python benchmarks/bench_serving.py``. One run prints every table; the targets are

* paged attention (gather through the block table, then the same kernel) within 2x of
  attention over a contiguous :class:`llmfund.KVCache` holding the same tokens;
* the scheduler simulation of 1 000 requests in under 5 s (static and continuous each).

The waste fractions and the static/continuous numbers are simulation outputs (deterministic
given the seeds), printed for the lesson; their only "target" is the shape of the vLLM result.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy is imported: single-threaded, comparable timings

import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from llmfund.attention import scaled_dot_product_attention  # noqa: E402
from llmfund.batching import Requests, continuous_batching, make_requests, static_batching  # noqa: E402
from llmfund.kv_cache import KVCache  # noqa: E402
from llmfund.paged_kv_cache import PagedKVCache, paged_attention, simulate_kv_memory  # noqa: E402

ATTENTION_TARGET = 2.0  # paged / contiguous time
SIM_TARGET_S = 5.0  # seconds for 1 000 requests
REPEATS = 25


def best_of(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    return best_of_pair(fn, None, repeats)[0]


def best_of_pair(
    fa: Callable[[], object], fb: Callable[[], object] | None, repeats: int = REPEATS
) -> tuple[float, float]:
    """Best-of-N times of ``fa`` and ``fb``, alternated so both see the same machine load."""
    fa()  # warm-up
    if fb is not None:
        fb()
    ta, tb = [], []
    for _ in range(repeats):
        for fn, times in ((fa, ta), (fb, tb)):
            if fn is None:
                continue
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return min(ta), (min(tb) if tb else float("nan"))


def bench_attention() -> bool:
    # Llama-2-7B-like layer with GQA: 32 query heads, 8 KV heads, head_dim 128, float32.
    n_kv, group, head_dim = 8, 4, 128
    rng = np.random.default_rng(0)
    print("Paged vs contiguous attention (one layer, 32 query heads / 8 KV heads, head_dim 128, float32)")
    print(f"{'tokens':>7} {'t_q':>4} {'block':>6} {'contiguous ms':>14} {'paged ms':>9} {'ratio':>6}  target <= {ATTENTION_TARGET}")
    ok = True
    for length, t_q, block_size in ((512, 1, 16), (2048, 1, 16), (4096, 1, 16), (2048, 128, 16), (2048, 1, 1), (2048, 1, 128)):
        k = rng.standard_normal((n_kv, length, head_dim)).astype(np.float32)
        v = rng.standard_normal((n_kv, length, head_dim)).astype(np.float32)
        q = rng.standard_normal((n_kv * group, t_q, head_dim)).astype(np.float32)
        contiguous = KVCache()
        contiguous.update(k, v)
        # Scatter the sequence over the pool: another sequence's blocks interleave with it.
        n_blocks = 2 * -(-length // block_size) + 2
        paged = PagedKVCache(n_blocks, block_size, n_kv, head_dim)
        paged.add_sequence("other")
        paged.add_sequence("seq")
        for start in range(0, length, block_size):
            stop = min(start + block_size, length)
            paged.append("seq", k[:, start:stop], v[:, start:stop])
            paged.append("other", k[:, :block_size], v[:, :block_size])

        def run_contiguous() -> np.ndarray:
            out = scaled_dot_product_attention(
                q.reshape(n_kv, group, t_q, head_dim), contiguous.k[:, None], contiguous.v[:, None], is_causal=True
            )
            return out.reshape(n_kv * group, t_q, head_dim)

        def run_paged() -> np.ndarray:
            return paged_attention(q, paged, "seq")

        assert np.allclose(run_paged(), run_contiguous(), atol=1e-5)
        t_c, t_p = best_of_pair(run_contiguous, run_paged)
        ratio = t_p / t_c
        ok &= ratio <= ATTENTION_TARGET
        verdict = "PASS" if ratio <= ATTENTION_TARGET else "FAIL"
        print(f"{length:>7} {t_q:>4} {block_size:>6} {t_c * 1e3:>14.3f} {t_p * 1e3:>9.3f} {ratio:>6.2f}  {verdict}")
    return ok


def bench_memory() -> None:
    reqs = make_requests(1000, np.random.default_rng(0))
    report = simulate_kv_memory(reqs.prompt_len, reqs.output_len, max_len=2048, block_size=16)
    print()
    print("KV memory holding tokens, time-averaged over decoding (1 000 requests, lognormal lengths,")
    print(f"mean prompt {reqs.prompt_len.mean():.0f}, mean output {reqs.output_len.mean():.0f} tokens, "
          "max_len 2048, block_size 16)")
    print(f"{'policy':>8} {'used':>7} {'wasted':>7}")
    for name in report.reserved:
        print(f"{name:>8} {report.used[name]:>7.1%} {report.waste[name]:>7.1%}")
    print("vLLM paper (Fig. 2): 20.4 % / 26.8 % / 38.2 % used for Orca Max / Pow2 / Oracle, 96.3 % for vLLM")


def bench_batching() -> bool:
    ok = True
    print()
    print("Static vs continuous batching, 1 000 requests, max_batch 64, KV budget 65 536 tokens,")
    print("default StepCost (illustrative ms); static reserves prompt + max_output (= 2048 - prompt),")
    print("static-oracle reserves prompt + the true output length; continuous uses 16-token blocks")
    header = (f"{'workload':>16} {'policy':>14} {'sim s':>6} {'tok/s':>7} {'mean lat s':>10} {'p90 lat s':>9} "
              f"{'TTFT s':>7} {'steps':>6} {'tok/step':>8} {'KV used':>7} {'preempt':>7}")
    print(header)
    for label, rate in (("offline (t = 0)", None), ("4 req/s Poisson", 0.004)):
        reqs = make_requests(1000, np.random.default_rng(0), rate=rate)
        oracle = Requests(reqs.arrival, reqs.prompt_len, reqs.output_len)
        for name, policy, workload in (
            ("static", static_batching, reqs),
            ("static-oracle", static_batching, oracle),
            ("continuous", continuous_batching, reqs),
        ):
            res = policy(workload)
            seconds = best_of(lambda: policy(workload), repeats=3)
            ok &= seconds < SIM_TARGET_S
            s = res.summary()
            print(
                f"{label:>16} {name:>14} {seconds:>6.2f} {s['throughput'] * 1e3:>7.0f} "
                f"{s['mean_latency'] / 1e3:>10.1f} {s['p90_latency'] / 1e3:>9.1f} {s['mean_ttft'] / 1e3:>7.2f} "
                f"{res.n_steps:>6} {s['tokens_per_step']:>8.1f} {s['mean_kv_utilisation']:>7.1%} {s['preemptions']:>7.0f}"
            )
    print(f"simulation target: < {SIM_TARGET_S} s per run of 1 000 requests: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> None:
    attention_ok = bench_attention()
    bench_memory()
    batching_ok = bench_batching()
    print()
    print(f"paged attention within {ATTENTION_TARGET}x: {'PASS' if attention_ok else 'FAIL'}; "
          f"simulation < {SIM_TARGET_S} s: {'PASS' if batching_ok else 'FAIL'}")


if __name__ == "__main__":
    main()
