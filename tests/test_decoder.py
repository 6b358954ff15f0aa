"""The tiny decoder: the KV cache changes the work, never the result."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from llmfund.decoder import (
    DecoderParams,
    LayerParams,
    decoder_forward,
    generate,
    init_decoder_params,
    new_kv_caches,
)
from llmfund.kv_cache import KVCache, kv_cache_bytes


def _params(n_heads=4, n_kv_heads=None, *, seed=0, **kw):
    kw.setdefault("vocab", 40)
    kw.setdefault("d_model", 32)
    kw.setdefault("n_layers", 2)
    return init_decoder_params(
        kw.pop("vocab"), kw.pop("d_model"), kw.pop("n_layers"), n_heads,
        n_kv_heads=n_kv_heads, rng=np.random.default_rng(seed), **kw,
    )  # fmt: skip


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])  # MHA, GQA, MQA
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cached_logits_equal_uncached_at_every_step(n_kv_heads, dtype):
    p = _params(4, n_kv_heads, dtype=dtype)
    rng = np.random.default_rng(1)
    seq = rng.integers(0, p.vocab, size=20)
    caches = new_kv_caches(p)
    cached = [decoder_forward(p, seq[:6], caches)[-1]]
    for t in range(6, 20):
        cached.append(decoder_forward(p, seq[t : t + 1], caches)[-1])
    uncached = [decoder_forward(p, seq[: t + 1])[-1] for t in range(5, 20)]
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(np.array(cached), np.array(uncached), atol=tol, rtol=tol)
    assert cached[0].dtype == dtype
    assert caches[0].dtype == dtype


def test_prefix_logits_do_not_depend_on_later_tokens():
    p = _params()
    seq = np.arange(12) % p.vocab
    full = decoder_forward(p, seq)
    np.testing.assert_allclose(decoder_forward(p, seq[:7]), full[:7], atol=1e-5)


def test_past_keys_and_values_never_change():
    p = _params(4, 2)
    seq = np.array([5, 1, 30, 7, 7, 2, 11])
    short, long = new_kv_caches(p), new_kv_caches(p)
    decoder_forward(p, seq[:5], short)
    decoder_forward(p, seq, long)
    for a, b in zip(short, long):
        np.testing.assert_allclose(b.k[:, :5], a.k, atol=1e-5)
        np.testing.assert_allclose(b.v[:, :5], a.v, atol=1e-5)


@pytest.mark.parametrize("splits", [(1,), (3,), (4, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9), (2, 9)])
def test_chunked_prefill_equals_one_shot(splits):
    p = _params(4, 2)
    seq = np.random.default_rng(2).integers(0, p.vocab, size=10)
    one = new_kv_caches(p)
    ref = decoder_forward(p, seq, one)
    chunked = new_kv_caches(p)
    bounds = (0, *splits, len(seq))
    parts = [decoder_forward(p, seq[a:b], chunked) for a, b in zip(bounds[:-1], bounds[1:])]
    np.testing.assert_allclose(np.vstack(parts), ref, atol=1e-4)
    for a, b in zip(one, chunked):
        assert len(a) == len(b) == len(seq)
        np.testing.assert_allclose(a.k, b.k, atol=1e-5)
        np.testing.assert_allclose(a.v, b.v, atol=1e-5)


@pytest.mark.parametrize("n_kv_heads", [4, 1])
def test_generate_same_tokens_with_and_without_cache(n_kv_heads):
    p = _params(4, n_kv_heads)
    prompt = np.array([1, 2, 3, 4, 5])
    fast = generate(p, prompt, 15)
    slow = generate(p, prompt, 15, use_cache=False)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast[:5], prompt)
    assert fast.shape == (20,) and fast.dtype == np.int64


def test_generate_sampling_same_tokens_with_same_rng():
    p = _params()
    a = generate(p, [3], 12, temperature=1.0, rng=np.random.default_rng(7))
    b = generate(p, [3], 12, temperature=1.0, rng=np.random.default_rng(7), use_cache=False)
    np.testing.assert_array_equal(a, b)
    assert ((a >= 0) & (a < p.vocab)).all()


def test_generate_batch_rows_match_single_runs():
    p = _params(4, 2)
    prompts = np.array([[1, 2, 3], [9, 8, 7]])
    batch = generate(p, prompts, 6)
    assert batch.shape == (2, 9)
    for row, prompt in zip(batch, prompts):
        np.testing.assert_array_equal(row, generate(p, prompt, 6))


@pytest.mark.parametrize("prompt_len, n_new", [(1, 1), (10, 5), (4, 20)])
def test_cache_length_and_bytes_after_generate(prompt_len, n_new):
    p = _params(4, 2, n_layers=3)
    caches = new_kv_caches(p)
    out = generate(p, np.zeros(prompt_len, dtype=int), n_new, caches=caches)
    assert out.shape == (prompt_len + n_new,)
    # The last generated token is returned but never fed back through the model.
    assert [len(c) for c in caches] == [prompt_len + n_new - 1] * 3
    total = sum(c.nbytes for c in caches)
    assert total == kv_cache_bytes(1, p.n_layers, p.n_kv_heads, prompt_len + n_new - 1, p.head_dim, 4)


def test_mqa_equals_mha_with_replicated_kv_heads():
    mqa = _params(4, 1)
    mha = copy.deepcopy(mqa)
    mha.n_kv_heads = 4
    for layer in mha.layers:
        layer.w_k = np.tile(layer.w_k, (1, 4))
        layer.w_v = np.tile(layer.w_v, (1, 4))
    mha = DecoderParams(**{f: getattr(mha, f) for f in ("tok_emb", "layers", "final_norm", "w_out", "n_heads", "n_kv_heads")})
    np.testing.assert_array_equal(generate(mqa, [1, 2], 10), generate(mha, [1, 2], 10))
    c1, c4 = new_kv_caches(mqa), new_kv_caches(mha)
    generate(mqa, [1, 2], 10, caches=c1)
    generate(mha, [1, 2], 10, caches=c4)
    assert c4[0].nbytes == 4 * c1[0].nbytes


def test_tied_embeddings():
    p = _params(tie_embeddings=True)
    assert p.w_out is None
    logits = decoder_forward(p, [1, 2, 3])
    assert logits.shape == (3, p.vocab) and np.isfinite(logits).all()


def test_init_shapes_and_defaults():
    p = _params(8, 2, d_model=64, n_layers=3, vocab=100, d_ff=96)
    assert (p.vocab, p.d_model, p.n_layers, p.n_heads, p.n_kv_heads, p.head_dim, p.d_ff) == (100, 64, 3, 8, 2, 8, 96)
    assert p.layers[0].w_k.shape == (64, 16)
    assert p.layers[0].w_o.shape == (64, 64)
    assert _params().d_ff == 4 * 32
    a, b = _params(seed=3), _params(seed=3)
    np.testing.assert_array_equal(a.layers[1].w_down, b.layers[1].w_down)


def test_half_precision_weights_are_stored_as_float32():
    p = _params(dtype=np.float16)
    assert p.tok_emb.dtype == np.float32 and p.layers[0].w_q.dtype == np.float32
    assert decoder_forward(p, [1, 2]).dtype == np.float32


@pytest.mark.parametrize(
    "tokens, exc, match",
    [
        ([0, 40], ValueError, "tokens must be < 40"),
        ([-1, 2], ValueError, "tokens must be >= 0"),
        ([0.0, 1.0], TypeError, "tokens must have an integer dtype"),
        ([True, False], TypeError, "tokens must have an integer dtype"),
        (np.zeros((1, 2, 3), dtype=int), ValueError, "tokens must have shape"),
        (np.zeros(0, dtype=int), ValueError, "tokens must have shape"),
        (3, ValueError, "tokens must have shape"),
    ],
)
def test_bad_tokens(tokens, exc, match):
    with pytest.raises(exc, match=match):
        decoder_forward(_params(), tokens)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(n_heads=5), ValueError, "n_heads=5 must divide d_model=32"),
        (dict(n_heads=4, n_kv_heads=3), ValueError, "multiple of n_kv_heads=3"),
        (dict(n_heads=32), ValueError, "must be even"),
        (dict(n_heads=0), ValueError, "n_heads must be >= 1"),
        (dict(n_heads=4.0), TypeError, "n_heads must be an integer"),
        (dict(d_ff=0), ValueError, "d_ff must be >= 1"),
        (dict(rope_base=0.0), ValueError, "rope_base"),
        (dict(norm_eps=-1.0), ValueError, "norm_eps"),
        (dict(dtype=np.int32), TypeError, "dtype must be a floating dtype"),
        (dict(tie_embeddings=1), TypeError, "tie_embeddings"),
    ],
)
def test_bad_init(kwargs, exc, match):
    kwargs = dict(kwargs)
    n_heads = kwargs.pop("n_heads", 4)
    with pytest.raises(exc, match=match):
        init_decoder_params(40, 32, 2, n_heads, rng=np.random.default_rng(0), **kwargs)


def test_init_needs_a_generator():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        init_decoder_params(40, 32, 2, 4, rng=0)


def test_bad_params_shapes():
    p = _params()
    with pytest.raises(ValueError, match=r"layers\[1\]\.w_k must have shape"):
        bad = copy.deepcopy(p.layers)
        bad[1].w_k = bad[1].w_k[:, :8]
        DecoderParams(p.tok_emb, bad, p.final_norm, p.w_out, 4, 4)
    with pytest.raises(ValueError, match="w_out must have shape"):
        DecoderParams(p.tok_emb, p.layers, p.final_norm, p.w_out[:, :5], 4, 4)
    with pytest.raises(TypeError, match="layers must be a non-empty list"):
        DecoderParams(p.tok_emb, [], p.final_norm, p.w_out, 4, 4)
    with pytest.raises(TypeError, match="params must be a DecoderParams"):
        decoder_forward({"tok_emb": p.tok_emb}, [1])


def test_bad_caches_are_rejected_before_anything_is_written():
    p = _params(4, 2)
    with pytest.raises(ValueError, match="one KVCache per layer"):
        decoder_forward(p, [1], new_kv_caches(p)[:1])
    with pytest.raises(TypeError, match="caches must be a list of KVCache"):
        decoder_forward(p, [1], [None, None])
    caches = new_kv_caches(p)
    decoder_forward(p, [1, 2, 3], caches)
    uneven = [caches[0], KVCache()]
    with pytest.raises(ValueError, match="same number of tokens"):
        decoder_forward(p, [4], uneven)
    with pytest.raises(ValueError, match="need"):
        decoder_forward(p, [[4], [5]], caches)  # a batch of 2 against caches of 1 sequence
    other = _params(4, 4)
    with pytest.raises(ValueError, match="need"):
        decoder_forward(other, [4], caches)  # 4 KV heads against caches with 2
    assert [len(c) for c in caches] == [3, 3]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(n_new=0), ValueError, "n_new must be >= 1"),
        (dict(n_new=2.0), TypeError, "n_new must be an integer"),
        (dict(temperature=-1.0), ValueError, "temperature"),
        (dict(temperature=0.5), TypeError, "rng must be a numpy.random.Generator"),
        (dict(use_cache="yes"), TypeError, "use_cache must be a bool"),
        (dict(use_cache=False, caches="new"), ValueError, "use_cache=False"),
        (dict(caches="full"), ValueError, "caches must be empty"),
        (dict(prompt=[99]), ValueError, "prompt must be < 40"),
    ],
)
def test_bad_generate(kwargs, exc, match):
    p = _params()
    kwargs = dict(kwargs)
    if kwargs.get("caches") == "new":
        kwargs["caches"] = new_kv_caches(p)
    elif kwargs.get("caches") == "full":
        kwargs["caches"] = new_kv_caches(p)
        decoder_forward(p, [1], kwargs["caches"])
    prompt = kwargs.pop("prompt", [1, 2])
    n_new = kwargs.pop("n_new", 3)
    with pytest.raises(exc, match=match):
        generate(p, prompt, n_new, **kwargs)


@pytest.mark.reference
def test_matches_hugging_face_llama():
    """Same weights in transformers' LlamaForCausalLM: same logits, same greedy tokens."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
        rope_theta=10000.0, tie_word_embeddings=False, max_position_embeddings=128,
    )  # fmt: skip
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for weight in model.parameters():
            weight.normal_(0.0, 0.3)  # norms too, so their gains are tested
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}

    def layer(i: int) -> LayerParams:
        w = lambda name: sd[f"model.layers.{i}.{name}.weight"]  # noqa: E731
        return LayerParams(
            attn_norm=w("input_layernorm"), w_q=w("self_attn.q_proj").T, w_k=w("self_attn.k_proj").T,
            w_v=w("self_attn.v_proj").T, w_o=w("self_attn.o_proj").T,
            ffn_norm=w("post_attention_layernorm"), w_gate=w("mlp.gate_proj").T,
            w_up=w("mlp.up_proj").T, w_down=w("mlp.down_proj").T,
        )  # fmt: skip

    p = DecoderParams(
        tok_emb=sd["model.embed_tokens.weight"], layers=[layer(0), layer(1)],
        final_norm=sd["model.norm.weight"], w_out=sd["lm_head.weight"].T,
        n_heads=4, n_kv_heads=2, rope_base=10000.0, norm_eps=1e-5,
    )  # fmt: skip
    tokens = np.array([[1, 5, 7, 22, 3, 9, 40, 2]])
    with torch.no_grad():
        ref = model(torch.tensor(tokens)).logits.numpy()
        ref_tokens = model.generate(
            torch.tensor(tokens), max_new_tokens=10, do_sample=False, use_cache=True, pad_token_id=0
        ).numpy()
    np.testing.assert_allclose(decoder_forward(p, tokens), ref, atol=1e-4)
    np.testing.assert_array_equal(generate(p, tokens, 10), ref_tokens)
