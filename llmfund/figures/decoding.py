"""Figures for lesson 03 (KV cache), lesson 04 (sampling) and lesson 05 (perplexity)."""

from __future__ import annotations

import functools

import numpy as np

from ..attention import softmax
from ..kv_cache import kv_cache_bytes
from ..ppl import ppl_from_logits
from ..sampling import sample, top_p_filter
from ._base import figure, new_figure, tr

GIB = 2**30


@figure(
    "kv-memory-context",
    lesson="03-kv-cache",
    alt_zh="KV Cache 显存随上下文长度线性增长：MHA 最多，GQA 为其四分之一，int8 再减半，滑动窗口在 4096 个 token 后不再增长。",
    alt_en="KV-cache memory grows linearly with context: MHA needs the most, GQA a quarter of it, int8 half again, and a sliding window stops growing at 4096 tokens.",
)
def kv_memory_context(lang: str):
    ctx = np.array([1, 2, 4, 8, 16, 32, 64, 128]) * 1024
    layers, head_dim = 32, 128
    curves = [
        (tr(lang, "MHA，32 个 KV 头，fp16（Llama-2-7B）", "MHA, 32 KV heads, fp16 (Llama-2-7B)"), 32, 2, None),
        (tr(lang, "GQA，8 个 KV 头，fp16（Llama-3-8B）", "GQA, 8 KV heads, fp16 (Llama-3-8B)"), 8, 2, None),
        (tr(lang, "GQA + 滑动窗口 4096（Mistral-7B）", "GQA + 4096 window (Mistral-7B)"), 8, 2, 4096),
        (tr(lang, "GQA，int8", "GQA, int8"), 8, 1, None),
    ]
    fig, ax = new_figure()
    for label, kv_heads, nbytes, window in curves:
        held = ctx if window is None else np.minimum(ctx, window)
        gib = [kv_cache_bytes(1, layers, kv_heads, int(s), head_dim, nbytes) / GIB for s in held]
        ax.plot(ctx / 1024, gib, "o-", ms=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel(tr(lang, "上下文长度（千 token）", "context length (thousand tokens)"))
    ax.set_ylabel(tr(lang, "每条序列的 KV Cache（GiB）", "KV cache per sequence (GiB)"))
    ax.legend(fontsize=8)
    return fig


def decode_step_flops(t: int, d_model: int, n_layers: int, *, cached: bool) -> int:
    """Multiply-adds of one decode step at length ``t`` (projections + attention, no FFN).

    Without a cache the step recomputes Q, K, V, O projections for all ``t`` tokens
    (4·t·d²) and the full causal score and weighted-sum matrices (≈ 2·t²·d / 2·2); with a
    cache it projects one token (4·d²) and attends from one query to ``t`` keys (2·t·d).
    """
    if cached:
        return n_layers * (4 * d_model**2 + 2 * t * d_model)
    return n_layers * (4 * t * d_model**2 + t * (t + 1) * d_model)


@figure(
    "kv-work-per-step",
    lesson="03-kv-cache",
    alt_zh="每个解码步的乘加次数：不用缓存时随长度快速增长，使用 KV Cache 后几乎不变。",
    alt_en="Multiply-adds per decode step: without a cache they grow quickly with length, with the KV cache they stay nearly flat.",
)
def kv_work_per_step(lang: str):
    t = np.arange(1, 4097, 64)
    d, layers = 4096, 32
    fig, ax = new_figure()
    ax.plot(t, [decode_step_flops(int(x), d, layers, cached=False) for x in t], label=tr(lang, "无缓存（重算前缀）", "no cache (recompute prefix)"))
    ax.plot(t, [decode_step_flops(int(x), d, layers, cached=True) for x in t], label=tr(lang, "KV Cache", "KV cache"))
    ax.set_yscale("log")
    ax.set_xlabel(tr(lang, "当前序列长度 t", "current length t"))
    ax.set_ylabel(tr(lang, "每步乘加次数（d=4096，32 层）", "multiply-adds per step (d=4096, 32 layers)"))
    ax.legend()
    return fig


def _zipf_logits(vocab: int = 1000, s: float = 1.1) -> np.ndarray:
    # A long-tailed next-token distribution, like a language model's.
    return -s * np.log(np.arange(1, vocab + 1, dtype=np.float64))


@figure(
    "temperature-softmax",
    lesson="04-sampling",
    alt_zh="同一组 logits 在温度 0.5、1、2 下的概率分布：温度越低越尖锐，越高越平坦。",
    alt_en="The same logits under temperature 0.5, 1 and 2: lower temperature sharpens the distribution, higher flattens it.",
)
def temperature_softmax(lang: str):
    logits = np.array([3.0, 2.2, 1.5, 1.0, 0.6, 0.3, 0.0, -0.4])
    fig, ax = new_figure()
    width = 0.27
    for i, tau in enumerate((0.5, 1.0, 2.0)):
        ax.bar(np.arange(len(logits)) + (i - 1) * width, softmax(logits / tau), width, label=f"τ = {tau}")
    ax.set_xlabel(tr(lang, "词表中的 token（按 logit 排序）", "token (sorted by logit)"))
    ax.set_ylabel(tr(lang, "概率", "probability"))
    ax.legend()
    return fig


@figure(
    "top-p-kept",
    lesson="04-sampling",
    alt_zh="Top-p 保留的 token 数随 p 变化：尖锐分布只需少数几个 token，平坦分布需要成百上千个。",
    alt_en="Tokens kept by top-p as p varies: a peaked distribution needs only a handful, a flat one hundreds.",
)
def top_p_kept(lang: str):
    ps = np.linspace(0.05, 1.0, 20)
    peaked = _zipf_logits(1000, 2.0)
    flat = _zipf_logits(1000, 0.3)
    fig, ax = new_figure()
    for logits, label in ((peaked, tr(lang, "尖锐分布", "peaked")), (flat, tr(lang, "平坦分布", "flat"))):
        kept = [int(np.isfinite(top_p_filter(logits, p)).sum()) for p in ps]
        ax.plot(ps, kept, "o-", ms=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("p")
    ax.set_ylabel(tr(lang, "保留的 token 数（词表 1000）", "tokens kept (vocabulary 1000)"))
    ax.legend()
    return fig


@functools.lru_cache(maxsize=1)  # sampled once, drawn in both languages
def _diversity_table() -> tuple[np.ndarray, dict[float, tuple[list[int], list[float]]]]:
    """Distinct tokens and empirical entropy of 2000 samples, for each (p, tau)."""
    logits = _zipf_logits(1000, 1.1)
    taus = np.array([0.3, 0.5, 0.7, 0.9, 1.1, 1.3, 1.5])
    n = 2000
    table = {}
    for p in (0.8, 0.95, 1.0):
        distinct, entropy = [], []
        for tau in taus:
            tokens = sample(np.broadcast_to(logits, (n, logits.size)), temperature=float(tau), top_p=p, rng=0)
            counts = np.bincount(tokens, minlength=logits.size)
            freq = counts[counts > 0] / n
            distinct.append(int((counts > 0).sum()))
            entropy.append(float(-(freq * np.log2(freq)).sum()))
        table[p] = (distinct, entropy)
    return taus, table


@figure(
    "diversity-vs-temperature",
    lesson="04-sampling",
    alt_zh="固定 logits，采样 2000 次：不同 token 数和经验熵都随温度 τ 与 p 增大而增加。",
    alt_en="Fixed logits, 2000 samples: the number of distinct tokens and the empirical entropy both rise with temperature τ and with p.",
)
def diversity_vs_temperature(lang: str):
    taus, table = _diversity_table()
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(8.4, 3.4))
    for p, (distinct, entropy) in table.items():
        ax1.plot(taus, distinct, "o-", ms=3, label=f"p = {p}")
        ax2.plot(taus, entropy, "o-", ms=3, label=f"p = {p}")
    ax1.set_xlabel(tr(lang, "温度 τ", "temperature τ"))
    ax1.set_ylabel(tr(lang, "不同 token 数", "distinct tokens"))
    ax2.set_xlabel(tr(lang, "温度 τ", "temperature τ"))
    ax2.set_ylabel(tr(lang, "经验熵（比特）", "empirical entropy (bits)"))
    ax1.legend()
    return fig


@figure(
    "ppl-good-bad",
    lesson="05-ppl",
    alt_zh="模型对正确 token 越有把握，困惑度越低：从均匀分布的 V 降到接近 1；把握放在错误 token 上时困惑度高于 V。",
    alt_en="The more confident the model is in the right token, the lower the perplexity: from V for the uniform model down towards 1; confidence in wrong tokens pushes it above V.",
)
def ppl_good_bad(lang: str):
    rng = np.random.default_rng(0)
    vocab, t = 50, 200
    labels = rng.integers(0, vocab, t)
    wrong = (labels + 1 + rng.integers(0, vocab - 1, t)) % vocab
    strengths = np.linspace(0, 6, 13)
    onehot = np.eye(vocab)
    good = [ppl_from_logits(s * onehot[labels], labels) for s in strengths]
    bad = [ppl_from_logits(s * onehot[wrong], labels) for s in strengths]
    fig, ax = new_figure()
    ax.plot(strengths, good, "o-", ms=3, label=tr(lang, "把握放在正确 token 上", "confident in the right token"))
    ax.plot(strengths, bad, "s-", ms=3, label=tr(lang, "把握放在错误 token 上", "confident in a wrong token"))
    ax.axhline(vocab, color="0.5", ls="--", lw=1, label=tr(lang, f"均匀分布：PPL = V = {vocab}", f"uniform: PPL = V = {vocab}"))
    ax.set_yscale("log")
    ax.set_xlabel(tr(lang, "正确（或错误）token 的 logit 比其他高出多少", "logit margin of the right (or wrong) token"))
    ax.set_ylabel(tr(lang, "困惑度 PPL", "perplexity (PPL)"))
    ax.legend(fontsize=8)
    return fig
