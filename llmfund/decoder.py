r"""A tiny decoder-only Transformer, with and without a KV cache.

The smallest model that shows why a KV cache works: token embeddings, then a stack of
pre-norm blocks, each computing ``x = x + attention(rms_norm(x))`` (causal multi-head or
grouped-query attention, RoPE on q and k) and ``x = x + ffn(rms_norm(x))`` (SwiGLU:
``(silu(x W_gate) * (x W_up)) W_down``), then a final RMSNorm and the unembedding to logits
over the vocabulary. It is the Llama architecture (Touvron et al., 2023) at toy size, with
random weights: it produces no language, but every number it computes is the number a real
model of that shape computes, so it can be checked against Hugging Face's
``LlamaForCausalLM`` and used to measure what a cache saves.

One function runs it both ways. :func:`decoder_forward` without ``caches`` recomputes
everything from the token ids; with ``caches`` (one :class:`~llmfund.kv_cache.KVCache` per
layer) it computes only the new tokens, appends their keys and values, and attends over
everything cached. :func:`generate` is the decoding loop on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import _checks
from .attention import scaled_dot_product_attention
from .sampling import sample
from .kv_cache import KVCache
from .rope import apply_rope


@dataclass
class LayerParams:
    """Weights of one decoder block (row convention: ``y = x @ w``).

    Attributes
    ----------
    attn_norm : ndarray, shape (d_model,)
        RMSNorm gain before attention.
    w_q : ndarray, shape (d_model, n_heads * head_dim)
    w_k, w_v : ndarray, shape (d_model, n_kv_heads * head_dim)
    w_o : ndarray, shape (n_heads * head_dim, d_model)
    ffn_norm : ndarray, shape (d_model,)
        RMSNorm gain before the feed-forward network.
    w_gate, w_up : ndarray, shape (d_model, d_ff)
    w_down : ndarray, shape (d_ff, d_model)

    Examples
    --------
    One block of a GQA decoder (4 query heads, 2 KV heads, head_dim 8): keys and values are
    projected to half the width of the queries.

    >>> import numpy as np
    >>> from llmfund.decoder import init_decoder_params
    >>> p = init_decoder_params(50, 32, 2, 4, n_kv_heads=2, d_ff=64, rng=np.random.default_rng(0))
    >>> layer = p.layers[0]
    >>> print(layer.w_q.shape, layer.w_k.shape, layer.w_v.shape, layer.w_o.shape)
    (32, 32) (32, 16) (32, 16) (32, 32)
    >>> print(layer.w_gate.shape, layer.w_up.shape, layer.w_down.shape)
    (32, 64) (32, 64) (64, 32)
    >>> print(sum(w.size for w in vars(layer).values()))   # parameters in the block
    9280
    """

    attn_norm: np.ndarray
    w_q: np.ndarray
    w_k: np.ndarray
    w_v: np.ndarray
    w_o: np.ndarray
    ffn_norm: np.ndarray
    w_gate: np.ndarray
    w_up: np.ndarray
    w_down: np.ndarray


@dataclass
class DecoderParams:
    r"""All weights of a decoder and the few numbers that are not weight shapes.

    Sizes (``vocab``, ``d_model``, ``n_layers``, ``head_dim``, ``d_ff``) are read off the
    arrays, so they cannot disagree with them. The shapes are checked when the object is
    built, which is what makes loading someone else's weights (e.g. a Hugging Face Llama)
    fail loudly rather than silently.

    Attributes
    ----------
    tok_emb : ndarray, shape (vocab, d_model)
        Token embeddings.
    layers : list of LayerParams
        One entry per block (at least one).
    final_norm : ndarray, shape (d_model,)
        RMSNorm gain after the last block.
    w_out : ndarray, shape (d_model, vocab), or None
        Unembedding. ``None`` ties it to the embeddings: ``logits = h @ tok_emb.T``.
    n_heads : int
        Query heads per layer; ``head_dim = w_q.shape[1] // n_heads`` must be even (RoPE).
    n_kv_heads : int
        Key/value heads per layer (divides ``n_heads``): ``n_heads`` is MHA, fewer is GQA,
        1 is MQA. It sets the size of the KV cache.
    rope_base : float, default 10000.0
        RoPE frequency base (Llama-2: 10000; Llama-3: 500000).
    norm_eps : float, default 1e-5
        The epsilon inside every RMSNorm.

    Raises
    ------
    ValueError
        If an array has the wrong number of dimensions or a shape that does not fit the
        others, ``n_heads`` does not divide ``w_q.shape[1]``, ``n_kv_heads`` does not divide
        ``n_heads``, ``head_dim`` is odd, ``rope_base <= 0`` or ``norm_eps < 0``.
    TypeError
        If a weight is not numeric, a head count is not an integer or ``layers`` is not a
        list of :class:`LayerParams`.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.decoder import DecoderParams, init_decoder_params
    >>> p = init_decoder_params(50, 32, 2, 4, n_kv_heads=1, tie_embeddings=True, rng=np.random.default_rng(0))
    >>> print(p.vocab, p.d_model, p.n_layers, p.n_heads, p.n_kv_heads, p.head_dim, p.w_out is None)
    50 32 2 4 1 8 True
    >>> try:                                      # head counts that do not fit the weights
    ...     DecoderParams(tok_emb=p.tok_emb, layers=p.layers, final_norm=p.final_norm,
    ...                   w_out=None, n_heads=3, n_kv_heads=1)
    ... except ValueError as err:
    ...     print(err)
    n_heads=3 does not divide w_q.shape[1]=32
    """

    tok_emb: np.ndarray
    layers: list[LayerParams]
    final_norm: np.ndarray
    w_out: np.ndarray | None
    n_heads: int
    n_kv_heads: int
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def vocab(self) -> int:
        return self.tok_emb.shape[0]

    @property
    def d_model(self) -> int:
        return self.tok_emb.shape[1]

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def head_dim(self) -> int:
        return self.layers[0].w_q.shape[1] // self.n_heads

    @property
    def d_ff(self) -> int:
        return self.layers[0].w_gate.shape[1]

    def __post_init__(self) -> None:
        self.n_heads = _checks.integer(self.n_heads, "n_heads", minimum=1)
        self.n_kv_heads = _checks.integer(self.n_kv_heads, "n_kv_heads", minimum=1)
        self.rope_base = _checks.real(self.rope_base, "rope_base")
        self.norm_eps = _checks.real(self.norm_eps, "norm_eps")
        if not self.rope_base > 0:
            raise ValueError(f"rope_base must be > 0, got {self.rope_base}")
        if not self.norm_eps >= 0:
            raise ValueError(f"norm_eps must be >= 0, got {self.norm_eps}")
        self.tok_emb = _weight(self.tok_emb, "tok_emb", 2)
        self.final_norm = _weight(self.final_norm, "final_norm", 1)
        if self.w_out is not None:
            self.w_out = _weight(self.w_out, "w_out", 2)
        if not isinstance(self.layers, (list, tuple)) or not self.layers:
            raise TypeError(f"layers must be a non-empty list of LayerParams, got {self.layers!r}")
        self.layers = list(self.layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, LayerParams):
                raise TypeError(f"layers[{i}] must be a LayerParams, got {type(layer).__name__}")
        d, vocab = self.d_model, self.vocab
        q_width = _weight(self.layers[0].w_q, "layers[0].w_q", 2).shape[1]
        if q_width % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} does not divide w_q.shape[1]={q_width}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads}")
        hd = q_width // self.n_heads
        if hd % 2:
            raise ValueError(f"head_dim = w_q.shape[1] // n_heads = {hd} must be even for RoPE")
        d_ff = _weight(self.layers[0].w_gate, "layers[0].w_gate", 2).shape[1]
        kv_width = self.n_kv_heads * hd
        expected = {
            "attn_norm": (d,), "w_q": (d, q_width), "w_k": (d, kv_width), "w_v": (d, kv_width),
            "w_o": (q_width, d), "ffn_norm": (d,), "w_gate": (d, d_ff), "w_up": (d, d_ff),
            "w_down": (d_ff, d),
        }  # fmt: skip
        for i, layer in enumerate(self.layers):
            for name, shape in expected.items():
                arr = _weight(getattr(layer, name), f"layers[{i}].{name}", len(shape))
                if arr.shape != shape:
                    raise ValueError(f"layers[{i}].{name} must have shape {shape}, got {arr.shape}")
                setattr(layer, name, arr)
        if self.final_norm.shape != (d,):
            raise ValueError(f"final_norm must have shape ({d},), got {self.final_norm.shape}")
        if self.w_out is not None and self.w_out.shape != (d, vocab):
            raise ValueError(f"w_out must have shape ({d}, {vocab}) or be None (tied), got {self.w_out.shape}")


def _weight(x: Any, name: str, ndim: int) -> np.ndarray:
    arr = _checks.float_array(x, name, allow_inf=False)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    return arr


def init_decoder_params(
    vocab: int,
    d_model: int,
    n_layers: int,
    n_heads: int,
    *,
    n_kv_heads: int | None = None,
    d_ff: int | None = None,
    tie_embeddings: bool = False,
    rope_base: float = 10000.0,
    norm_eps: float = 1e-5,
    rng: np.random.Generator,
    dtype: Any = np.float32,
) -> DecoderParams:
    r"""Random weights for a decoder of the given shape.

    Parameters
    ----------
    vocab : int
        Vocabulary size (>= 1).
    d_model : int
        Width of the residual stream (>= 1).
    n_layers : int
        Number of blocks (>= 1).
    n_heads : int
        Query heads (>= 1); must divide ``d_model``, and ``head_dim = d_model // n_heads``
        must be even (RoPE rotates pairs).
    n_kv_heads : int, optional
        Key/value heads; default ``n_heads`` (MHA). Must divide ``n_heads``.
    d_ff : int, optional
        Hidden width of the SwiGLU FFN; default ``4 * d_model``.
    tie_embeddings : bool, default False
        Use ``tok_emb.T`` as the unembedding (``w_out = None``), as GPT-2 does.
    rope_base : float, default 10000.0
        RoPE frequency base.
    norm_eps : float, default 1e-5
        RMSNorm epsilon.
    rng : numpy.random.Generator
        The only source of randomness (keyword-only, required).
    dtype : float dtype, default numpy.float32
        Dtype of every weight, hence of the activations and of the KV cache: float32 or
        float64. Half precision is stored as float32, as everywhere in llmfund (NumPy has no
        fast float16 matmul, nor one that accumulates in float32); to study a half-precision
        cache, cast the cached keys and values.

    Returns
    -------
    DecoderParams

    Raises
    ------
    TypeError
        If a size is not an integer, ``rng`` is not a ``numpy.random.Generator`` or
        ``dtype`` is not a floating dtype.
    ValueError
        If a size is < 1, ``n_heads`` does not divide ``d_model``, ``n_kv_heads`` does not
        divide ``n_heads``, ``head_dim`` is odd, or ``rope_base``/``norm_eps`` is out of range.

    Notes
    -----
    Embeddings are standard normal (the residual stream starts at unit scale); every matrix
    is $\mathcal N(0, 1/\text{fan\_in})$, which keeps activations near unit scale through the
    products (LeCun initialisation); norm gains are 1. With untied weights the logits are
    then roughly standard normal, so greedy decoding is not decided by rounding noise.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.decoder import init_decoder_params
    >>> p = init_decoder_params(50, 32, 2, 4, n_kv_heads=2, rng=np.random.default_rng(0))
    >>> print(p.vocab, p.d_model, p.n_layers, p.n_heads, p.n_kv_heads, p.head_dim, p.d_ff)
    50 32 2 4 2 8 128
    >>> print(p.layers[0].w_k.shape, p.tok_emb.dtype)
    (32, 16) float32
    """
    vocab = _checks.integer(vocab, "vocab", minimum=1)
    d_model = _checks.integer(d_model, "d_model", minimum=1)
    n_layers = _checks.integer(n_layers, "n_layers", minimum=1)
    n_heads = _checks.integer(n_heads, "n_heads", minimum=1)
    n_kv_heads = n_heads if n_kv_heads is None else _checks.integer(n_kv_heads, "n_kv_heads", minimum=1)
    d_ff = 4 * d_model if d_ff is None else _checks.integer(d_ff, "d_ff", minimum=1)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not isinstance(tie_embeddings, (bool, np.bool_)):
        raise TypeError(f"tie_embeddings must be a bool, got {tie_embeddings!r}")
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a floating dtype, got {dtype!r}") from exc
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    if d_model % n_heads:
        raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
    hd = d_model // n_heads

    def mat(fan_in: int, fan_out: int) -> np.ndarray:
        return (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(dtype)

    ones = np.ones(d_model, dtype=dtype)
    layers = [
        LayerParams(
            attn_norm=ones.copy(),
            w_q=mat(d_model, n_heads * hd),
            w_k=mat(d_model, n_kv_heads * hd),
            w_v=mat(d_model, n_kv_heads * hd),
            w_o=mat(n_heads * hd, d_model),
            ffn_norm=ones.copy(),
            w_gate=mat(d_model, d_ff),
            w_up=mat(d_model, d_ff),
            w_down=mat(d_ff, d_model),
        )
        for _ in range(n_layers)
    ]
    return DecoderParams(
        tok_emb=rng.standard_normal((vocab, d_model)).astype(dtype),
        layers=layers,
        final_norm=ones.copy(),
        w_out=None if tie_embeddings else mat(d_model, vocab),
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        rope_base=rope_base,
        norm_eps=norm_eps,
    )


def new_kv_caches(params: DecoderParams, capacity: int = 16) -> list[KVCache]:
    """One empty :class:`~llmfund.kv_cache.KVCache` per layer of ``params``.

    Parameters
    ----------
    params : DecoderParams
    capacity : int, default 16
        Initial room of each cache, in tokens (they grow by doubling).

    Returns
    -------
    list of KVCache, length ``params.n_layers``

    Raises
    ------
    TypeError
        If ``params`` is not a :class:`DecoderParams` or ``capacity`` not an integer.
    ValueError
        If ``capacity < 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.decoder import init_decoder_params, new_kv_caches
    >>> p = init_decoder_params(50, 32, 3, 4, rng=np.random.default_rng(0))
    >>> caches = new_kv_caches(p)
    >>> print(len(caches), [len(c) for c in caches])
    3 [0, 0, 0]
    """
    _check_params(params)
    return [KVCache(capacity) for _ in range(params.n_layers)]


def _check_params(params: Any) -> DecoderParams:
    if not isinstance(params, DecoderParams):
        raise TypeError(f"params must be a DecoderParams (see init_decoder_params), got {type(params).__name__}")
    return params


def _check_tokens(tokens: Any, params: DecoderParams, name: str = "tokens") -> np.ndarray:
    tokens = _checks.index_array(tokens, name, upper=params.vocab)
    if tokens.ndim not in (1, 2) or tokens.shape[-1] == 0:
        raise ValueError(f"{name} must have shape (t,) or (b, t) with t >= 1, got shape {tokens.shape}")
    return tokens


def _check_caches(caches: Any, params: DecoderParams, batch: tuple[int, ...]) -> list[KVCache]:
    """The caches of every layer, all holding the same tokens in the shape this model writes."""
    if not isinstance(caches, (list, tuple)) or not all(isinstance(c, KVCache) for c in caches):
        raise TypeError(f"caches must be a list of KVCache (one per layer), got {caches!r}")
    if len(caches) != params.n_layers:
        raise ValueError(f"caches must hold one KVCache per layer ({params.n_layers}), got {len(caches)}")
    lengths = [len(c) for c in caches]
    if len(set(lengths)) != 1:
        raise ValueError(f"caches must all hold the same number of tokens, got lengths {lengths}")
    if lengths[0]:
        want = batch + (params.n_kv_heads, lengths[0], params.head_dim)
        for i, c in enumerate(caches):
            if c.k.shape != want or c.v.shape != want:
                raise ValueError(
                    f"caches[{i}] holds keys of shape {c.k.shape}, but this model and these tokens "
                    f"need (batch..., n_kv_heads, t, head_dim) = {want}"
                )
    return list(caches)


def _rms_norm(x: np.ndarray, gain: np.ndarray, eps: float) -> np.ndarray:
    # x / sqrt(mean(x²) + eps) * gain (Zhang & Sennrich, 2019), in x's dtype.
    ms = np.mean(np.square(x), axis=-1, keepdims=True)
    return x / np.sqrt(ms + x.dtype.type(eps)) * gain


def _silu(x: np.ndarray) -> np.ndarray:
    # silu(x) = x·sigmoid(x); written with exp(-|x|) so it never overflows.
    e = np.exp(-np.abs(x))
    return x * np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _attention(
    h: np.ndarray, layer: LayerParams, p: DecoderParams, positions: np.ndarray, cache: KVCache | None
) -> np.ndarray:
    """Causal GQA self-attention of the new tokens ``h`` (..., t, d_model) over the cache."""
    lead, t, hd = h.shape[:-2], h.shape[-2], p.head_dim
    n_kv, group = p.n_kv_heads, p.n_heads // p.n_kv_heads

    def heads(a: np.ndarray, n: int) -> np.ndarray:
        # (..., t, n * hd) -> (..., n, t, hd): head i owns columns i*hd .. (i+1)*hd - 1.
        return np.swapaxes(a.reshape(lead + (t, n, hd)), -2, -3)

    # RoPE rotates q and k by their *absolute* positions; v is not rotated.
    q = apply_rope(heads(h @ layer.w_q, p.n_heads), positions, base=p.rope_base)
    k = apply_rope(heads(h @ layer.w_k, n_kv), positions, base=p.rope_base)
    v = heads(h @ layer.w_v, n_kv)
    if cache is not None:
        k, v = cache.update(k, v)  # (..., n_kv, t_past + t, hd): the past never changes
    # Query head g*group + j uses KV head g (as Llama's repeat_kv), here by broadcasting.
    q = q.reshape(lead + (n_kv, group, t, hd))
    # Bottom-right causal mask: the t queries are the *last* t positions of the t_k keys.
    y = scaled_dot_product_attention(q, k[..., None, :, :], v[..., None, :, :], is_causal=True)
    y = np.swapaxes(y.reshape(lead + (p.n_heads, t, hd)), -2, -3).reshape(lead + (t, p.n_heads * hd))
    return y @ layer.w_o


def decoder_forward(
    params: DecoderParams, tokens: ArrayLike, caches: Sequence[KVCache] | None = None
) -> np.ndarray:
    r"""Logits of every given token, recomputed from scratch or continued from KV caches.

    Parameters
    ----------
    params : DecoderParams
        The model.
    tokens : array_like of int, shape (t,) or (b, t)
        Token ids in ``[0, vocab)``. Without ``caches`` these are the whole sequence(s);
        with ``caches`` they are the *new* tokens, which follow the cached ones.
    caches : list of KVCache, optional
        One per layer, all holding the same number ``t_past`` of tokens (0 for a prefill),
        as made by :func:`new_kv_caches`. The new tokens get positions
        ``t_past .. t_past + t - 1`` and their keys and values are appended: the caches are
        updated in place. A batch of ``b`` sequences needs caches filled with ``b`` too.

    Returns
    -------
    ndarray, shape (t, vocab) or (b, t, vocab)
        Logits; row ``i`` predicts the token after token ``i``. Same dtype as the weights.

    Raises
    ------
    TypeError
        If ``params`` is not a :class:`DecoderParams`, ``tokens`` is not an integer array,
        or ``caches`` is not a list of ``KVCache``.
    ValueError
        If a token is outside ``[0, vocab)``, ``tokens`` is not 1-D or 2-D or is empty, or the
        caches do not fit (wrong count, different lengths, another batch size or head shape).
        The caches are checked before anything is written.

    Notes
    -----
    Per layer: ``x = x + attention(rms_norm(x))``, ``x = x + ffn(rms_norm(x))``, with RoPE
    (``layout="half"``) on q and k and SwiGLU FFN ``(silu(h W_gate) * (h W_up)) W_down`` —
    the computation of Hugging Face's ``LlamaForCausalLM``. Causal attention is what makes
    the cache exact: the keys and values of token $j$ in every layer depend only on tokens
    $\le j$, so they are the same whether computed in one pass or piece by piece (chunked
    prefill), and the logits agree up to float rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.decoder import init_decoder_params, decoder_forward, new_kv_caches
    >>> p = init_decoder_params(50, 32, 2, 4, rng=np.random.default_rng(0))
    >>> tokens = np.array([3, 14, 15, 9, 2])
    >>> full = decoder_forward(p, tokens)          # no cache: all 5 positions at once
    >>> full.shape
    (5, 50)
    >>> caches = new_kv_caches(p)
    >>> a = decoder_forward(p, tokens[:3], caches)  # prefill 3 tokens
    >>> b = decoder_forward(p, tokens[3:4], caches) # decode: one token at position 3
    >>> c = decoder_forward(p, tokens[4:], caches)  # and one at position 4
    >>> print(len(caches[0]), np.allclose(np.vstack([a, b, c]), full, atol=1e-4))
    5 True
    """
    p = _check_params(params)
    tokens = _check_tokens(tokens, p)
    t = tokens.shape[-1]
    if caches is not None:
        caches = _check_caches(caches, p, tokens.shape[:-1])
        t_past = len(caches[0])
    else:
        t_past = 0
    positions = np.arange(t_past, t_past + t)  # absolute positions of the new tokens
    x = p.tok_emb[tokens]  # (..., t, d_model)
    for i, layer in enumerate(p.layers):
        cache = None if caches is None else caches[i]
        x = x + _attention(_rms_norm(x, layer.attn_norm, p.norm_eps), layer, p, positions, cache)
        h = _rms_norm(x, layer.ffn_norm, p.norm_eps)
        x = x + (_silu(h @ layer.w_gate) * (h @ layer.w_up)) @ layer.w_down
    h = _rms_norm(x, p.final_norm, p.norm_eps)
    return h @ (p.tok_emb.T if p.w_out is None else p.w_out)


def generate(
    params: DecoderParams,
    prompt: ArrayLike,
    n_new: int,
    *,
    use_cache: bool = True,
    temperature: float = 0.0,
    rng: np.random.Generator | None = None,
    caches: list[KVCache] | None = None,
) -> np.ndarray:
    r"""Autoregressive decoding: the prompt followed by ``n_new`` generated tokens.

    Parameters
    ----------
    params : DecoderParams
        The model.
    prompt : array_like of int, shape (t,) or (b, t)
        Token ids of the prompt(s), ``t >= 1`` (a batch must have equal lengths: no padding).
    n_new : int
        Tokens to generate (>= 1).
    use_cache : bool, default True
        With the cache: one prefill pass over the prompt, then one pass per new token over
        that token only. Without: every step recomputes the whole sequence.
    temperature : float, default 0.0
        0 is greedy decoding (argmax); > 0 samples from ``softmax(logits / temperature)``.
    rng : numpy.random.Generator, optional
        Required when ``temperature > 0``.
    caches : list of KVCache, optional
        Empty caches (:func:`new_kv_caches`) to fill, to inspect them afterwards; only with
        ``use_cache=True``. By default fresh ones are made and dropped.

    Returns
    -------
    ndarray of int64, shape (t + n_new,) or (b, t + n_new)
        The prompt followed by the new tokens (as Hugging Face's ``generate`` returns for a
        decoder-only model).

    Raises
    ------
    TypeError
        If ``n_new`` is not an integer, ``use_cache`` not a bool, ``temperature`` not a
        number, ``rng`` missing or not a Generator when sampling, or ``params``, ``prompt``,
        ``caches`` of the wrong type.
    ValueError
        If ``n_new < 1``, ``temperature < 0``, a token is out of range, ``caches`` are given
        with ``use_cache=False`` or are not empty.

    Notes
    -----
    The last generated token is returned but never fed back, so after ``generate`` the
    caches hold ``t + n_new - 1`` tokens: the prompt and every generated token but the
    last. The work differs (see lesson 03), the tokens do not: with and without the cache
    the same logits come out up to float rounding, so greedy decoding returns the same ids
    (unless two logits tie within rounding), and so does sampling from equal ``rng`` states.
    Hugging Face: ``model.generate(input_ids, do_sample=False, use_cache=True)`` with a
    ``DynamicCache``.

    Examples
    --------
    >>> import numpy as np
    >>> from llmfund.decoder import init_decoder_params, generate, new_kv_caches
    >>> p = init_decoder_params(50, 32, 2, 4, rng=np.random.default_rng(0))
    >>> caches = new_kv_caches(p)
    >>> fast = generate(p, [3, 14, 15], 6, caches=caches)
    >>> slow = generate(p, [3, 14, 15], 6, use_cache=False)
    >>> print(fast, np.array_equal(fast, slow), len(caches[0]))
    [ 3 14 15  8  9  9 10 16 19] True 8
    """
    p = _check_params(params)
    prompt = _check_tokens(prompt, p, "prompt").astype(np.int64)
    n_new = _checks.integer(n_new, "n_new", minimum=1)
    if not isinstance(use_cache, (bool, np.bool_)):
        raise TypeError(f"use_cache must be a bool, got {use_cache!r}")
    temperature = _checks.real(temperature, "temperature")
    if temperature < 0 or not np.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    if temperature > 0 and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator when temperature > 0, got {rng!r}")
    if caches is not None:
        if not use_cache:
            raise ValueError("caches were given but use_cache=False")
        caches = _check_caches(caches, p, prompt.shape[:-1])
        if len(caches[0]):
            raise ValueError(f"caches must be empty, they hold {len(caches[0])} tokens")
    elif use_cache:
        caches = new_kv_caches(p)

    tokens = [prompt]
    if use_cache:
        logits = decoder_forward(p, prompt, caches)  # prefill: the whole prompt in one pass
    else:
        logits = decoder_forward(p, prompt)
    for step in range(n_new):
        nxt = np.asarray(sample(logits[..., -1, :], temperature=temperature, rng=rng))[..., None]  # (..., 1)
        tokens.append(nxt)
        if step == n_new - 1:
            break  # the last token is returned, never fed back
        if use_cache:
            logits = decoder_forward(p, nxt, caches)  # decode: one new token
        else:
            logits = decoder_forward(p, np.concatenate(tokens, axis=-1))  # recompute all
    return np.concatenate(tokens, axis=-1)
