"""Attention shapes of real models, for KV-cache arithmetic (``python -m llmfund kv --list``).

Every number is copied from the model's Hugging Face ``config.json`` (the repository named in
``source``): ``num_hidden_layers`` (GPT-2: ``n_layer``), ``num_attention_heads`` (``n_head``),
``num_key_value_heads`` (absent = equal to the heads: MHA), ``max_position_embeddings``
(``n_positions``) and ``sliding_window`` where the model actually uses one. ``head_dim`` is
``hidden_size / num_attention_heads`` (``n_embd / n_head``) for all of these models. Qwen2
and Qwen2.5 configs carry a ``sliding_window`` value but set ``use_sliding_window: false``, so
none is recorded. The Qwen entries are the base models (their Instruct configs say 32768
positions; pass ``--context`` to size for those).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelPreset:
    """One model's attention shape: what its KV cache size depends on."""

    name: str
    source: str  # the Hugging Face repository whose config.json the numbers come from
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    max_context: int  # max_position_embeddings
    window: int | None = None  # sliding_window, if the model uses it

    @property
    def attention(self) -> str:
        """'mha', 'gqa' or 'mqa', from the ratio of query heads to KV heads."""
        if self.kv_heads == self.heads:
            return "mha"
        return "mqa" if self.kv_heads == 1 else "gqa"


# name, source, layers, heads, kv_heads, head_dim (= hidden / heads), max context, window
PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (
        ModelPreset("gpt2", "openai-community/gpt2", 12, 12, 12, 64, 1024),  # n_embd 768
        ModelPreset("gpt2-medium", "openai-community/gpt2-medium", 24, 16, 16, 64, 1024),  # 1024
        ModelPreset("gpt2-large", "openai-community/gpt2-large", 36, 20, 20, 64, 1024),  # 1280
        ModelPreset("gpt2-xl", "openai-community/gpt2-xl", 48, 25, 25, 64, 1024),  # 1600
        ModelPreset("llama-2-7b", "meta-llama/Llama-2-7b-hf", 32, 32, 32, 128, 4096),  # hidden 4096
        ModelPreset("llama-2-13b", "meta-llama/Llama-2-13b-hf", 40, 40, 40, 128, 4096),  # 5120
        ModelPreset("llama-2-70b", "meta-llama/Llama-2-70b-hf", 80, 64, 8, 128, 4096),  # 8192
        ModelPreset("llama-3-8b", "meta-llama/Meta-Llama-3-8B", 32, 32, 8, 128, 8192),  # 4096
        ModelPreset("llama-3-70b", "meta-llama/Meta-Llama-3-70B", 80, 64, 8, 128, 8192),  # 8192
        ModelPreset("llama-3.1-8b", "meta-llama/Llama-3.1-8B", 32, 32, 8, 128, 131072),
        ModelPreset("llama-3.1-70b", "meta-llama/Llama-3.1-70B", 80, 64, 8, 128, 131072),
        ModelPreset("llama-3.1-405b", "meta-llama/Llama-3.1-405B", 126, 128, 8, 128, 131072),  # 16384
        ModelPreset("mistral-7b", "mistralai/Mistral-7B-v0.1", 32, 32, 8, 128, 32768, window=4096),
        ModelPreset("qwen2-7b", "Qwen/Qwen2-7B", 28, 28, 4, 128, 131072),  # hidden 3584
        ModelPreset("qwen2-72b", "Qwen/Qwen2-72B", 80, 64, 8, 128, 131072),  # 8192
        ModelPreset("qwen2.5-7b", "Qwen/Qwen2.5-7B", 28, 28, 4, 128, 131072),  # 3584
        ModelPreset("qwen2.5-72b", "Qwen/Qwen2.5-72B", 80, 64, 8, 128, 131072),  # 8192
    )
}

# Other spellings people type; the canonical name is the key of PRESETS.
ALIASES: dict[str, str] = {
    "gpt2-small": "gpt2",
    "llama2-7b": "llama-2-7b",
    "llama2-13b": "llama-2-13b",
    "llama2-70b": "llama-2-70b",
    "llama3-8b": "llama-3-8b",
    "llama3-70b": "llama-3-70b",
    "mistral-7b-v0.1": "mistral-7b",
}
