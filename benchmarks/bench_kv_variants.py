"""KV-cache variants: rolling (sliding-window) cache memory, int8 quantisation, banded SWA time.

Run: ``python benchmarks/bench_kv_variants.py``. Prints, from one run:

1. memory of a full KV cache vs a rolling cache (window 4096) as the sequence grows, measured
   on one layer with Mistral-7B's KV shape (8 KV heads x 128, fp16) and scaled to its 32 layers;
2. int8 (codes + float32 scales) vs fp16 bytes, and the attention error, on synthetic K/V
   (Gaussian, 4 key channels with standard deviation 10: :func:`llmfund.kv_quant.synthetic_qkv`);
3. per-token vs per-channel key scales as the key outliers grow;
4. banded sliding-window attention vs the same attention through a full (t, t) mask.

Each section ends with its target and PASS/FAIL; the exit status is 1 if any target fails.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from llmfund.attention import scaled_dot_product_attention  # noqa: E402
from llmfund.kv_cache import KVCache, kv_cache_bytes  # noqa: E402
from llmfund.kv_quant import kv_quant_report, synthetic_qkv  # noqa: E402
from llmfund.sliding_window import RollingKVCache, sliding_window_attention, sliding_window_mask  # noqa: E402

RESULTS: list[tuple[str, bool]] = []


def check(name: str, ok: bool) -> None:
    RESULTS.append((name, ok))
    print(f"target: {name}: {'PASS' if ok else 'FAIL'}")


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def memory_full_vs_rolling() -> None:
    print("1. KV cache memory, full vs rolling (window 4096); Mistral-7B shape, fp16")
    window, kv_heads, head_dim, layers = 4096, 8, 128, 32
    checkpoints = [1024, 2048, 4096, 8192, 16384, 32768]
    chunk = 1024
    rng = np.random.default_rng(0)
    block = rng.standard_normal((kv_heads, chunk, head_dim)).astype(np.float16)
    full, rolling = KVCache(), RollingKVCache(window)
    print(f"{'tokens':>8} {'full, 1 layer':>14} {'rolling, 1 layer':>17} {'ratio':>6} {'full, 32 layers':>16} {'rolling, 32 layers':>19}")
    rolling_sizes = []
    for t in range(chunk, checkpoints[-1] + 1, chunk):
        full.update(block, block)
        rolling.update(block, block)
        if t in checkpoints:
            all_full = kv_cache_bytes(1, layers, kv_heads, t, head_dim, 2)
            all_rolling = kv_cache_bytes(1, layers, kv_heads, min(t, window), head_dim, 2)
            assert full.nbytes * layers == all_full and rolling.nbytes * layers == all_rolling
            rolling_sizes.append(rolling.nbytes)
            print(
                f"{t:>8,} {full.nbytes / 2**20:>10.0f} MiB {rolling.nbytes / 2**20:>13.0f} MiB "
                f"{full.nbytes / rolling.nbytes:>6.1f} {all_full / 2**30:>12.2f} GiB {all_rolling / 2**30:>15.2f} GiB"
            )
    check("rolling cache constant once t >= window (8x smaller than full at 32k)",
          len(set(rolling_sizes[2:])) == 1 and full.nbytes == 8 * rolling.nbytes)
    print()


def int8_bytes_and_error() -> None:
    print("2. int8 KV cache vs fp16: bytes (codes + float32 scales) and attention error")
    print("   synthetic: 8 heads x 4096 tokens x head_dim 128, N(0,1), 4 key channels N(0, 10^2)")
    q, k, v = synthetic_qkv(np.random.default_rng(1), t=4096, head_dim=128, n_heads=8)
    print(f"{'keys':>8} {'values':>8} {'fp16 MiB':>9} {'int8+scales MiB':>16} {'vs fp16':>8} {'K rel err':>10} {'V rel err':>10} {'attn rel err':>13}")
    reports = {}
    for key_mode, value_mode in (("token", "token"), ("channel", "token"), ("channel", "channel")):
        r = kv_quant_report(q, k, v, key_mode=key_mode, value_mode=value_mode, is_causal=True)
        reports[key_mode, value_mode] = r
        print(
            f"{key_mode:>8} {value_mode:>8} {r.fp16_bytes / 2**20:>9.2f} {r.total_bytes / 2**20:>16.3f} "
            f"{r.ratio_vs_fp16:>8.4f} {r.k_rel_error:>10.4f} {r.v_rel_error:>10.4f} {r.attention_rel_error:>13.4f}"
        )
    kivi = reports["channel", "token"]
    check("int8 + scales <= 0.52 x fp16 bytes", kivi.ratio_vs_fp16 <= 0.52)
    check("attention error with KIVI's choice (keys per channel, values per token) < 2 %", kivi.attention_rel_error < 0.02)
    print()


def per_token_vs_per_channel() -> None:
    print("3. key scales per token vs per channel as the key outlier channels grow (4 of 128)")
    print(f"{'outlier std':>11} {'K err/token':>12} {'K err/channel':>14} {'attn err/token':>15} {'attn err/channel':>17} {'ratio':>6}")
    wins = []
    for scale in (1.0, 3.0, 10.0, 30.0):
        q, k, v = synthetic_qkv(np.random.default_rng(2), t=2048, head_dim=128, n_heads=4, outlier_scale=scale)
        tok = kv_quant_report(q, k, v, key_mode="token", is_causal=True)
        ch = kv_quant_report(q, k, v, key_mode="channel", is_causal=True)
        ratio = tok.attention_rel_error / ch.attention_rel_error
        wins.append((scale, ratio))
        print(
            f"{scale:>11.0f} {tok.k_rel_error:>12.4f} {ch.k_rel_error:>14.4f} "
            f"{tok.attention_rel_error:>15.4f} {ch.attention_rel_error:>17.4f} {ratio:>6.2f}"
        )
    check("per-channel keys at least 2x more accurate with 10x outliers", dict(wins)[10.0] >= 2)
    print()


def banded_vs_masked() -> None:
    print("4. sliding-window attention, banded blocks vs a full (t, t) mask (4 heads, d 64, float32)")
    rng = np.random.default_rng(3)
    print(f"{'t':>6} {'window':>7} {'masked s':>9} {'banded s':>9} {'speedup':>8}")
    speedups = []
    for t, window in ((2048, 256), (4096, 512)):
        q, k, v = rng.standard_normal((3, 4, t, 64), dtype=np.float32)
        mask = sliding_window_mask(t, t, window)
        ref = scaled_dot_product_attention(q, k, v, mask=mask)
        out = sliding_window_attention(q, k, v, window)
        assert np.allclose(out, ref, rtol=1e-4, atol=1e-5)
        t_masked = best_of(lambda: scaled_dot_product_attention(q, k, v, mask=mask))
        t_banded = best_of(lambda: sliding_window_attention(q, k, v, window))
        speedups.append(t_masked / t_banded)
        print(f"{t:>6,} {window:>7} {t_masked:>9.3f} {t_banded:>9.3f} {t_masked / t_banded:>8.1f}")
    check("banded SWA >= 3x faster than masked at t = 4096, window 512", speedups[-1] >= 3)
    print()


def main() -> int:
    memory_full_vs_rolling()
    int8_bytes_and_error()
    per_token_vs_per_channel()
    banded_vs_masked()
    failed = [name for name, ok in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
