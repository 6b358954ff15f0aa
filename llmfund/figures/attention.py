"""Figures for lesson 01 (attention) and lesson 02 (positions and RoPE)."""

from __future__ import annotations

import numpy as np

from ..attention import attention_weights, softmax
from ..rope import apply_rope
from ._base import figure, new_figure, tr


def _tokens(lang: str) -> list[str]:
    return tr(lang, "我 爱 学 习 大 模 型 啊", "the cat sat on the warm mat .").split()


@figure(
    "attention-heatmap",
    lesson="01-attention",
    alt_zh="两张注意力权重热力图：左图无掩码，每个查询可看到全部 8 个键；右图加因果掩码，右上三角为 0。",
    alt_en="Two attention-weight heatmaps: without a mask every query sees all 8 keys; with the causal mask the upper-right triangle is zero.",
)
def attention_heatmap(lang: str):
    rng = np.random.default_rng(0)
    t, d = 8, 16
    q, k = rng.standard_normal((2, t, d))
    words = _tokens(lang)
    fig, axes = new_figure(1, 2, figsize=(7.6, 3.6))
    titles = (tr(lang, "无掩码", "no mask"), tr(lang, "因果掩码", "causal mask"))
    for ax, causal, title in zip(axes, (False, True), titles):
        w = attention_weights(q, k, is_causal=causal)
        im = ax.imshow(w, cmap="Blues", vmin=0, vmax=1)
        ax.set_title(title)
        ax.set_xticks(range(t), words, rotation=45)
        ax.set_yticks(range(t), words)
        ax.set_xlabel(tr(lang, "键（被看的词）", "key (attended to)"))
        ax.set_ylabel(tr(lang, "查询（正在看的词）", "query (attending)"))
        ax.grid(False)
    fig.colorbar(im, ax=axes, shrink=0.8, label=tr(lang, "注意力权重", "attention weight"))
    return fig


@figure(
    "attention-heads",
    lesson="01-attention",
    alt_zh="四个注意力头的权重图：不同的头关注不同的相对位置，有的看前一个词，有的看附近，有的看开头。",
    alt_en="Weights of four attention heads: each head attends by a different rule, to the previous token, to a local neighbourhood, or to the first token.",
)
def attention_heads(lang: str):
    # Hand-built heads (no training): RoPE-rotated constant q/k make scores depend on the
    # offset only, and a bias on key 0 makes an "attention sink" head.
    t, hd = 12, 16
    pos = np.arange(t)
    ones = np.ones((t, hd))
    heads = []
    for base, scale in ((2.0, 4.0), (40.0, 3.0), (400.0, 1.5)):
        q = apply_rope(ones * scale, pos - 1.0, base=base)  # peaks one step back
        k = apply_rope(ones, pos, base=base)
        heads.append(attention_weights(q, k, is_causal=True))
    sink = np.zeros((t, hd))
    sink[0] = 3.0
    heads.append(attention_weights(np.ones((t, hd)), sink, is_causal=True))
    names = [
        tr(lang, "头 1：前一个词", "head 1: previous token"),
        tr(lang, "头 2：附近的词", "head 2: local"),
        tr(lang, "头 3：较宽的范围", "head 3: broad"),
        tr(lang, "头 4：开头（汇聚点）", "head 4: first token (sink)"),
    ]
    fig, axes = new_figure(1, 4, figsize=(10, 3.0))
    for ax, w, name in zip(axes, heads, names):
        ax.imshow(w, cmap="Purples", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(tr(lang, "键位置", "key position"))
        ax.grid(False)
    axes[0].set_ylabel(tr(lang, "查询位置", "query position"))
    return fig


@figure(
    "softmax-saturation",
    lesson="01-attention",
    alt_zh="不缩放时，最大注意力权重随 d_k 增大趋近 1（softmax 饱和）；除以根号 d_k 后保持平稳。",
    alt_en="Without scaling, the largest attention weight approaches 1 as d_k grows (softmax saturates); dividing by sqrt(d_k) keeps it flat.",
)
def softmax_saturation(lang: str):
    rng = np.random.default_rng(0)
    dims = np.array([4, 16, 64, 256, 1024])
    t = 64
    raw, scaled = [], []
    for d in dims:
        q = rng.standard_normal((256, d))
        k = rng.standard_normal((t, d))
        s = q @ k.T
        raw.append(softmax(s).max(axis=-1).mean())
        scaled.append(softmax(s / np.sqrt(d)).max(axis=-1).mean())
    fig, ax = new_figure()
    ax.plot(dims, raw, "o-", label=tr(lang, r"softmax($qk^\top$)", r"softmax($qk^\top$)"))
    ax.plot(dims, scaled, "s-", label=tr(lang, r"softmax($qk^\top/\sqrt{d_k}$)", r"softmax($qk^\top/\sqrt{d_k}$)"))
    ax.set_xscale("log", base=2)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("$d_k$")
    ax.set_ylabel(tr(lang, f"每行最大权重的平均值（{t} 个键）", f"mean of the row's largest weight ({t} keys)"))
    ax.legend()
    return fig


@figure(
    "rope-rotation",
    lesson="02-rope",
    alt_zh="一对维度在位置 0 到 15 上的旋转：向量长度不变，只有角度随位置均匀增加。",
    alt_en="One pair of dimensions rotated at positions 0 to 15: the length stays the same, only the angle grows evenly with position.",
)
def rope_rotation(lang: str):
    pos = np.arange(16)
    x = np.tile([[1.0, 0.3]], (16, 1))
    r = apply_rope(x, pos, base=10000.0)  # head_dim 2: the single pair turns 1 rad per position
    fig, ax = new_figure(figsize=(4.6, 4.2))
    circle = np.linspace(0, 2 * np.pi, 200)
    radius = np.hypot(1.0, 0.3)
    ax.plot(radius * np.cos(circle), radius * np.sin(circle), color="0.8", lw=1)
    for m in pos:
        ax.annotate("", xy=r[m], xytext=(0, 0), arrowprops=dict(arrowstyle="->", color=(0.1, 0.3 + 0.04 * m, 0.7)))
        ax.text(*(r[m] * 1.12), str(m), ha="center", va="center", fontsize=8)
    ax.set_aspect("equal")
    ax.set_xlim(-1.4, 1.4)
    ax.set_ylim(-1.4, 1.4)
    ax.set_title(tr(lang, "位置 m 处旋转 m·θ（θ = 1 弧度）", "position m rotates by m·θ (θ = 1 rad)"))
    ax.set_xlabel("$x_0$")
    ax.set_ylabel("$x_1$")
    return fig


@figure(
    "rope-score-distance",
    lesson="02-rope",
    alt_zh="q 与 k 都是全 1 向量时，RoPE 后的点积随相对距离增大而振荡衰减，且只取决于距离。",
    alt_en="With q and k both all-ones vectors, the dot product after RoPE oscillates and decays as the relative distance grows, and depends on the distance only.",
)
def rope_score_distance(lang: str):
    hd, n = 128, 512
    pos = np.arange(n)
    ones = np.ones((n, hd))
    k = apply_rope(ones, pos)
    fig, ax = new_figure()
    for start, style in ((0, "-"), (1000, "--")):
        q = apply_rope(np.ones((1, hd)), [start])
        kk = apply_rope(ones, pos + start)
        scores = (q @ kk.T)[0] / hd
        label = tr(lang, f"查询位置 {start}", f"query at position {start}")
        ax.plot(pos, scores, style, lw=1, label=label)
    ax.set_xlabel(tr(lang, "相对距离 n − m", "relative distance n − m"))
    ax.set_ylabel(r"$\langle R_m q, R_n k \rangle / d$")
    ax.legend()
    del k
    return fig
