"""llmfund: the reference implementations of an open course on LLM fundamentals.

Every public name is re-exported here, so lessons and learners write ``from llmfund import NAME``.
Each one is a small NumPy function (or, where there is state, a small class) whose docstring
states the shapes, the formula, the paper and the reference implementation it matches.

Modules, in the order the course teaches them: ``attention``, ``rope``, ``kv_cache``,
``decoder``, ``sampling``, ``ppl``, then the inference optimisations ``flash_attention``,
``paged_kv_cache``, ``batching``, ``sliding_window``, ``kv_quant``. ``figures`` (needs
matplotlib) draws the course's figures; ``python -m llmfund kv`` is the KV-memory calculator.
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
from .batching import (
    BatchingResult,
    Requests,
    StepCost,
    continuous_batching,
    make_requests,
    static_batching,
)
from .decoder import (
    DecoderParams,
    LayerParams,
    decoder_forward,
    generate,
    init_decoder_params,
    new_kv_caches,
)
from .flash_attention import flash_attention
from .kv_cache import KVCache, kv_cache_bytes
from .kv_quant import (
    KVQuantReport,
    QuantizedKVCache,
    dequantize_int8,
    kv_quant_report,
    quantize_int8,
    synthetic_qkv,
)
from .paged_kv_cache import (
    KVMemoryReport,
    OutOfBlocksError,
    PagedCacheStats,
    PagedKVCache,
    paged_attention,
    simulate_kv_memory,
)
from .ppl import (
    bits_per_byte,
    causal_lm_nll,
    ppl_from_logits,
    ppl_from_nll,
    sequence_nll,
    strided_nll,
    strided_ppl,
    strided_windows,
)
from .rope import apply_rope, rope_frequencies, sinusoidal_position_encoding
from .sampling import (
    apply_repetition_penalty,
    apply_temperature,
    min_p_filter,
    sample,
    top_k_filter,
    top_p_filter,
)
from .sliding_window import RollingKVCache, sliding_window_attention, sliding_window_mask

__version__ = "0.1.0"

__all__ = [
    # attention
    "attention_weights",
    "causal_mask",
    "log_softmax",
    "multi_head_attention",
    "naive_attention",
    "scaled_dot_product_attention",
    "softmax",
    # rope
    "apply_rope",
    "rope_frequencies",
    "sinusoidal_position_encoding",
    # kv_cache
    "KVCache",
    "kv_cache_bytes",
    # decoder
    "DecoderParams",
    "LayerParams",
    "decoder_forward",
    "generate",
    "init_decoder_params",
    "new_kv_caches",
    # sampling
    "apply_repetition_penalty",
    "apply_temperature",
    "min_p_filter",
    "sample",
    "top_k_filter",
    "top_p_filter",
    # ppl
    "bits_per_byte",
    "causal_lm_nll",
    "ppl_from_logits",
    "ppl_from_nll",
    "sequence_nll",
    "strided_nll",
    "strided_ppl",
    "strided_windows",
    # flash_attention
    "flash_attention",
    # paged_kv_cache
    "KVMemoryReport",
    "OutOfBlocksError",
    "PagedCacheStats",
    "PagedKVCache",
    "paged_attention",
    "simulate_kv_memory",
    # batching
    "BatchingResult",
    "Requests",
    "StepCost",
    "continuous_batching",
    "make_requests",
    "static_batching",
    # sliding_window
    "RollingKVCache",
    "sliding_window_attention",
    "sliding_window_mask",
    # kv_quant
    "KVQuantReport",
    "QuantizedKVCache",
    "dequantize_int8",
    "kv_quant_report",
    "quantize_int8",
    "synthetic_qkv",
]
