"""KV-cache variants: rolling (sliding-window) cache memory, int8 quantisation, banded SWA time.

Run: ``python benchmarks/bench_kv_variants.py`` (``--quick``: small sizes, a smoke test).
Prints, from one run:

1. memory of a full KV cache vs a rolling cache (window 4096) as the sequence grows, measured
   on one layer with Mistral-7B's KV shape (8 KV heads x 128, fp16) and scaled to its 32 layers;
2. int8 (codes + float32 scales) vs fp16 bytes, and the attention error, on synthetic K/V
   (Gaussian, 4 key channels with standard deviation 10: :func:`llmfund.kv_quant.synthetic_qkv`);
3. per-token vs per-channel key scales as the key outliers grow;
4. banded sliding-window attention vs the same attention through a full (t, t) mask.

Each section ends with its target and PASS/FAIL; the exit status of a full run is 1 if any
target fails. As in every benchmark script, a row's ratio is ``baseline / llmfund's variant``
(full / rolling bytes, fp16 / int8 bytes, per-token / per-channel error, masked / banded
time): above 1 means the variant the lesson teaches wins.

``run(quick, sections)`` returns the rows (see ``benchlib.py``) for ``benchmarks/report.py``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterable  # noqa: E402

import numpy as np  # noqa: E402

import benchlib  # noqa: E402
from llmfund.attention import scaled_dot_product_attention  # noqa: E402
from llmfund.kv_cache import KVCache, kv_cache_bytes  # noqa: E402
from llmfund.kv_quant import kv_quant_report, synthetic_qkv  # noqa: E402
from llmfund.sliding_window import RollingKVCache, sliding_window_attention, sliding_window_mask  # noqa: E402

BENCH = "kv_variants"
SECTIONS = ("rolling", "int8", "key_scales", "banded")
GROUPS = {
    "rolling-memory": dict(
        en="Rolling KV cache (window 4096) vs a full one: memory of one layer, Mistral-7B shape, fp16",
        zh="滚动 KV Cache（窗口 4096）vs 完整缓存：单层内存，Mistral-7B 的形状，fp16",
        baseline_en="full KVCache", baseline_zh="完整 KVCache",
    ),
    "int8-bytes": dict(
        en="int8 KV cache (codes + float32 scales) vs fp16: bytes, 8 heads, head_dim 128",
        zh="int8 KV Cache（编码 + float32 缩放因子）vs fp16：字节数，8 个头，head_dim 128",
        baseline_en="fp16", baseline_zh="fp16",
    ),
    "int8-error": dict(
        en="int8 KV cache: relative error of the attention output",
        zh="int8 KV Cache：注意力输出的相对误差",
        baseline_en="-", baseline_zh="-",
    ),
    "key-scales": dict(
        en="Keys quantised per channel vs per token, as 4 outlier channels grow: attention error",
        zh="键按通道 vs 按 token 量化，4 个离群通道逐渐增大：注意力误差",
        baseline_en="per-token key scales", baseline_zh="按 token 的键缩放因子",
    ),
    "swa": dict(
        en="Sliding-window attention: banded blocks vs a full (t, t) mask (4 heads, d 64, float32)",
        zh="滑动窗口注意力：带状分块 vs 完整 (t, t) 掩码（4 个头，d 64，float32）",
        baseline_en="full mask", baseline_zh="完整掩码",
    ),
}  # fmt: skip
INT8_MAX_FRACTION = 0.52  # int8 + scales at most 0.52 x the fp16 bytes: ratio fp16 / int8 >= 1 / 0.52


def check(rows: list[dict], name: str) -> None:
    """Print the section's verdict: every row of it that has a target passes."""
    ok = all(r["passed"] is not False for r in rows)
    print(f"target: {name}: {'PASS' if ok else 'FAIL'}")


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def memory_full_vs_rolling(rows: list[dict], quick: bool) -> None:
    window, kv_heads, head_dim, layers = 4096, 8, 128, 32
    checkpoints = [1024, 2048, 4096, 8192, 16384, 32768]
    chunk = 1024
    if quick:
        checkpoints = checkpoints[:4]
    print(f"1. KV cache memory, full vs rolling (window {window}); Mistral-7B shape, fp16")
    rng = np.random.default_rng(0)
    block = rng.standard_normal((kv_heads, chunk, head_dim)).astype(np.float16)
    full, rolling = KVCache(), RollingKVCache(window)
    print(f"{'tokens':>8} {'full, 1 layer':>14} {'rolling, 1 layer':>17} {'ratio':>6} {'full, 32 layers':>16} {'rolling, 32 layers':>19}")
    new = []
    for t in range(chunk, checkpoints[-1] + 1, chunk):
        full.update(block, block)
        rolling.update(block, block)
        if t in checkpoints:
            all_full = kv_cache_bytes(1, layers, kv_heads, t, head_dim, 2)
            all_rolling = kv_cache_bytes(1, layers, kv_heads, min(t, window), head_dim, 2)
            assert full.nbytes * layers == all_full and rolling.nbytes * layers == all_rolling
            # The rolling cache never holds more than the window: full / rolling = t / min(t, window).
            new.append(
                benchlib.row(BENCH, "rolling-memory", f"{t:,} tokens", case_zh=f"{t:,} 个 token", unit="B",
                             ours=rolling.nbytes, reference=full.nbytes, target=t / min(t, window),
                             extra={"full_32_layers": all_full, "rolling_32_layers": all_rolling})
            )  # fmt: skip
            print(
                f"{t:>8,} {full.nbytes / 2**20:>10.0f} MiB {rolling.nbytes / 2**20:>13.0f} MiB "
                f"{full.nbytes / rolling.nbytes:>6.1f} {all_full / 2**30:>12.2f} GiB {all_rolling / 2**30:>15.2f} GiB"
            )
    rows += new
    check(new, f"rolling cache constant once t >= window ({checkpoints[-1] // window}x smaller than full "
               f"at {checkpoints[-1]:,})")
    print()


def int8_bytes_and_error(rows: list[dict], quick: bool) -> None:
    t = 512 if quick else 4096
    print("2. int8 KV cache vs fp16: bytes (codes + float32 scales) and attention error")
    print(f"   synthetic: 8 heads x {t} tokens x head_dim 128, N(0,1), 4 key channels N(0, 10^2)")
    q, k, v = synthetic_qkv(np.random.default_rng(1), t=t, head_dim=128, n_heads=8)
    print(f"{'keys':>8} {'values':>8} {'fp16 MiB':>9} {'int8+scales MiB':>16} {'vs fp16':>8} {'K rel err':>10} {'V rel err':>10} {'attn rel err':>13}")
    for key_mode, value_mode in (("token", "token"), ("channel", "token"), ("channel", "channel")):
        r = kv_quant_report(q, k, v, key_mode=key_mode, value_mode=value_mode, is_causal=True)
        kivi = (key_mode, value_mode) == ("channel", "token")  # KIVI's choice carries the targets
        case = f"t={t}, keys per {key_mode}, values per {value_mode}" + (" (KIVI)" if kivi else "")
        case_zh = f"t={t}，键按{_MODE_ZH[key_mode]}，值按{_MODE_ZH[value_mode]}" + ("（KIVI）" if kivi else "")
        rows.append(
            benchlib.row(BENCH, "int8-bytes", case, case_zh=case_zh, unit="B", ours=r.total_bytes,
                         reference=r.fp16_bytes, target=1 / INT8_MAX_FRACTION if kivi else None)
        )  # fmt: skip
        rows.append(
            benchlib.row(BENCH, "int8-error", case, case_zh=case_zh, unit="fraction", ours=r.attention_rel_error,
                         limit=0.02 if kivi else None,
                         extra={"k_rel_error": r.k_rel_error, "v_rel_error": r.v_rel_error})
        )  # fmt: skip
        print(
            f"{key_mode:>8} {value_mode:>8} {r.fp16_bytes / 2**20:>9.2f} {r.total_bytes / 2**20:>16.3f} "
            f"{r.ratio_vs_fp16:>8.4f} {r.k_rel_error:>10.4f} {r.v_rel_error:>10.4f} {r.attention_rel_error:>13.4f}"
        )
    check([r for r in rows if r["group"] == "int8-bytes"], f"int8 + scales <= {INT8_MAX_FRACTION} x fp16 bytes")
    check([r for r in rows if r["group"] == "int8-error"],
          "attention error with KIVI's choice (keys per channel, values per token) <= 2 %")
    print()


_MODE_ZH = {"token": " token", "channel": "通道"}


def per_token_vs_per_channel(rows: list[dict], quick: bool) -> None:
    print("3. key scales per token vs per channel as the key outlier channels grow (4 of 128)")
    print(f"{'outlier std':>11} {'K err/token':>12} {'K err/channel':>14} {'attn err/token':>15} {'attn err/channel':>17} {'ratio':>6}")
    new = []
    t = 256 if quick else 2048
    for scale in (1.0, 3.0, 10.0, 30.0):
        q, k, v = synthetic_qkv(np.random.default_rng(2), t=t, head_dim=128, n_heads=4, outlier_scale=scale)
        tok = kv_quant_report(q, k, v, key_mode="token", is_causal=True)
        ch = kv_quant_report(q, k, v, key_mode="channel", is_causal=True)
        ratio = tok.attention_rel_error / ch.attention_rel_error
        new.append(
            benchlib.row(BENCH, "key-scales", f"t={t}, outlier std {scale:g}",
                         case_zh=f"t={t}，离群通道标准差 {scale:g}",
                         unit="fraction", ours=ch.attention_rel_error, reference=tok.attention_rel_error,
                         target=2.0 if scale == 10 else None,
                         extra={"k_rel_error_token": tok.k_rel_error, "k_rel_error_channel": ch.k_rel_error})
        )  # fmt: skip
        print(
            f"{scale:>11.0f} {tok.k_rel_error:>12.4f} {ch.k_rel_error:>14.4f} "
            f"{tok.attention_rel_error:>15.4f} {ch.attention_rel_error:>17.4f} {ratio:>6.2f}"
        )
    rows += new
    check(new, "per-channel keys at least 2x more accurate with 10x outliers")
    print()


def banded_vs_masked(rows: list[dict], quick: bool) -> None:
    print("4. sliding-window attention, banded blocks vs a full (t, t) mask (4 heads, d 64, float32)")
    rng = np.random.default_rng(3)
    print(f"{'t':>6} {'window':>7} {'masked s':>9} {'banded s':>9} {'speedup':>8}")
    new = []
    sizes = ((256, 32), (512, 64)) if quick else ((2048, 256), (4096, 512))
    for t, window in sizes:
        q, k, v = rng.standard_normal((3, 4, t, 64), dtype=np.float32)
        mask = sliding_window_mask(t, t, window)
        ref = scaled_dot_product_attention(q, k, v, mask=mask)
        out = sliding_window_attention(q, k, v, window)
        assert np.allclose(out, ref, rtol=1e-4, atol=1e-5)
        t_masked = best_of(lambda: scaled_dot_product_attention(q, k, v, mask=mask))
        t_banded = best_of(lambda: sliding_window_attention(q, k, v, window))
        new.append(
            benchlib.row(BENCH, "swa", f"t={t:,}, window {window}", case_zh=f"t={t:,}，窗口 {window}", unit="s",
                         ours=t_banded, reference=t_masked, target=3.0 if (t, window) == sizes[-1] else None)
        )  # fmt: skip
        print(f"{t:>6,} {window:>7} {t_masked:>9.3f} {t_banded:>9.3f} {t_masked / t_banded:>8.1f}")
    rows += new
    check(new, f"banded SWA >= 3x faster than masked at t = {sizes[-1][0]:,}, window {sizes[-1][1]}")
    print()


def run(quick: bool = False, sections: Iterable[str] | None = None) -> list[dict]:
    """Run the cases (all, or the named ``sections`` of :data:`SECTIONS`); print and return the rows."""
    chosen = benchlib.select(sections, SECTIONS)
    rows: list[dict] = []
    for name, bench in zip(SECTIONS, (memory_full_vs_rolling, int8_bytes_and_error, per_token_vs_per_channel,
                                      banded_vs_masked)):  # fmt: skip
        if name in chosen:
            bench(rows, quick)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    args = parser.parse_args(argv)
    return benchlib.finish(run(args.quick), args.quick)


if __name__ == "__main__":
    sys.exit(main())
