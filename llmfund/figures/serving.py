"""Figures for lesson 06 (inference optimisation)."""

from __future__ import annotations

import functools
import tracemalloc

import numpy as np

from ..attention import naive_attention
from ..batching import continuous_batching, make_requests, static_batching
from ..flash_attention import flash_attention
from ..paged_kv_cache import simulate_kv_memory
from ._base import figure, new_figure, tr

MIB = 2**20


def _peak_bytes(fn, *args, **kwargs) -> int:
    """Peak bytes allocated while ``fn`` runs (NumPy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        fn(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@functools.lru_cache(maxsize=1)  # measured once, drawn in both languages
def _attention_peaks() -> tuple[np.ndarray, list[float], list[float]]:
    rng = np.random.default_rng(0)
    ts = np.array([256, 512, 1024, 2048])
    naive, tiled = [], []
    for t in ts:
        q, k, v = rng.standard_normal((3, int(t), 64)).astype(np.float32)
        # Rounded to 0.01 MiB: a few hundred bytes of interpreter bookkeeping vary between runs,
        # and the figure must be byte-for-byte the same on every build.
        naive.append(round(_peak_bytes(naive_attention, q, k, v) / MIB, 2))
        tiled.append(round(_peak_bytes(flash_attention, q, k, v, block_size=128) / MIB, 2))
    return ts, naive, tiled


@figure(
    "tiled-attention-memory",
    lesson="06-inference-optimization",
    alt_zh="峰值内存随序列长度 t 的变化：教科书注意力按 t² 增长，分块注意力几乎按 t 线性增长。",
    alt_en="Peak memory against sequence length t: textbook attention grows as t squared, tiled attention nearly linearly in t.",
)
def tiled_attention_memory(lang: str):
    ts, naive, tiled = _attention_peaks()
    fig, ax = new_figure()
    ax.plot(ts, naive, "o-", label=tr(lang, "教科书写法（完整 t×t 分数矩阵）", "textbook (full t×t score matrix)"))
    ax.plot(ts, tiled, "s-", label=tr(lang, "分块 + 在线 softmax（块大小 128）", "tiled + online softmax (block 128)"))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel(tr(lang, "序列长度 t（d = 64，float32）", "sequence length t (d = 64, float32)"))
    ax.set_ylabel(tr(lang, "峰值内存（MiB，tracemalloc）", "peak memory (MiB, tracemalloc)"))
    ax.legend()
    return fig


@figure(
    "paged-vs-contiguous",
    lesson="06-inference-optimization",
    alt_zh="1000 个长度不一的请求：按最大长度连续预留时只有约四分之一的 KV 显存存放了 token，分页（块大小 16）时接近全部。",
    alt_en="1000 requests of mixed lengths: with contiguous reservation for the maximum length only about a quarter of the KV memory holds tokens; with 16-token pages nearly all of it does.",
)
def paged_vs_contiguous(lang: str):
    req = make_requests(1000, 0)
    report = simulate_kv_memory(req.prompt_len, req.output_len, max_len=2048, block_size=16)
    names = {
        "max": tr(lang, "连续：按最大长度", "contiguous: max length"),
        "pow2": tr(lang, "连续：2 的幂", "contiguous: power of 2"),
        "oracle": tr(lang, "连续：预知最终长度", "contiguous: exact final length"),
        "paged": tr(lang, "分页：块大小 16", "paged: 16-token blocks"),
    }
    used = [100 * report.used[key] for key in names]
    fig, ax = new_figure()
    bars = ax.barh(list(names.values()), used, color=["#bbb", "#999", "#777", "#3f51b5"])
    ax.bar_label(bars, fmt="%.1f%%", padding=3)
    ax.set_xlim(0, 110)
    ax.invert_yaxis()
    ax.set_xlabel(tr(lang, "预留的 KV 显存中真正存放 token 的比例（%）", "reserved KV memory that holds tokens (%)"))
    return fig


@figure(
    "static-vs-continuous",
    lesson="06-inference-optimization",
    alt_zh="同样 300 个请求：连续批处理每步生成的 token 数远多于静态批处理，总用时更短。",
    alt_en="The same 300 requests: continuous batching produces far more tokens per step than static batching and finishes much sooner.",
)
def static_vs_continuous(lang: str):
    req = make_requests(300, 0)
    runs = [
        (tr(lang, "静态批处理", "static batching"), static_batching(req)),
        (tr(lang, "连续批处理", "continuous batching"), continuous_batching(req)),
    ]
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(8.6, 3.4))
    for label, result in runs:
        end = (result.step_start + result.step_time) / 1000.0  # StepCost is in milliseconds
        ax1.plot(end, np.cumsum(result.new_tokens), label=label)
    ax1.set_xlabel(tr(lang, "模型时间（秒，示意成本模型）", "model time (s, illustrative cost model)"))
    ax1.set_ylabel(tr(lang, "累计生成的 token", "tokens generated so far"))
    ax1.legend()
    labels = [label for label, _ in runs]
    tps = [r.tokens_per_step for _, r in runs]
    bars = ax2.bar(labels, tps, color=["#999", "#3f51b5"])
    ax2.bar_label(bars, fmt="%.1f", padding=2)
    ax2.set_ylabel(tr(lang, "平均每步生成的 token", "mean tokens per step"))
    return fig
