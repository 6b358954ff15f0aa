"""llmfund: the reference implementations of an open course on LLM fundamentals.

Every public name is re-exported here, so lessons and learners write ``from llmfund import NAME``.
Each one is a small NumPy function (or, where there is state, a small class) whose docstring
states the shapes, the formula, the paper and the reference implementation it matches.
"""

from __future__ import annotations

from .attention import (
    attention_weights,
    causal_mask,
    log_softmax,
    multi_head_attention,
    naive_attention,
    scaled_dot_product_attention,
    softmax,
)
from .flash_attention import flash_attention
from .kv_cache import KVCache, kv_cache_bytes
from .ppl import ppl_from_logits, ppl_from_nll, sequence_nll
from .rope import apply_rope, rope_frequencies, sinusoidal_position_encoding
from .sampling import (
    apply_repetition_penalty,
    apply_temperature,
    min_p_filter,
    sample,
    top_k_filter,
    top_p_filter,
)

__version__ = "0.1.0"

__all__ = [
    "KVCache",
    "apply_repetition_penalty",
    "apply_rope",
    "apply_temperature",
    "attention_weights",
    "causal_mask",
    "flash_attention",
    "kv_cache_bytes",
    "log_softmax",
    "min_p_filter",
    "multi_head_attention",
    "naive_attention",
    "ppl_from_logits",
    "ppl_from_nll",
    "rope_frequencies",
    "sample",
    "scaled_dot_product_attention",
    "sequence_nll",
    "sinusoidal_position_encoding",
    "softmax",
    "top_k_filter",
    "top_p_filter",
]
