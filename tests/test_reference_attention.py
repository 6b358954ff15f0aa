"""llmfund's attention, flash attention and RoPE against PyTorch and Hugging Face transformers.

These run only with the ``reference`` extra installed (``pip install -e ".[reference]"``);
without torch the whole module is reported as skipped, and the Hugging Face tests skip on
their own without transformers.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from llmfund.attention import (
    causal_mask,
    log_softmax,
    multi_head_attention,
    scaled_dot_product_attention,
    softmax,
)
from llmfund.flash_attention import flash_attention
from llmfund.rope import apply_rope, rope_frequencies

if importlib.util.find_spec("torch") is None:
    pytest.skip("torch is not installed (the reference extra)", allow_module_level=True)

pytestmark = pytest.mark.reference

# Imported when the first test here runs, not at collection: the pytest-xdist worker that runs
# none of these tests does not pay for importing torch (about 1.5 s).
torch = F = None


@pytest.fixture(autouse=True, scope="module")
def _import_torch():
    global torch, F
    import torch

    F = torch.nn.functional


@pytest.fixture(scope="module")
def llama():
    """Hugging Face's Llama module (``repeat_kv``, ``apply_rotary_pos_emb``, ``LlamaRotaryEmbedding``)."""
    pytest.importorskip("transformers")
    from transformers.models.llama import modeling_llama

    return modeling_llama


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


# --------------------------------------------------------------------------------------------
# softmax / log_softmax
# --------------------------------------------------------------------------------------------


EXTREME = np.array(
    [
        [1e4, 0.0, -np.inf, -1e4],
        [-1e4, -1e4 + 1.0, -np.inf, -np.inf],
        [-np.inf, -np.inf, 3.0, -np.inf],
        [1e4, 1e4, -1e4, 0.0],
        [0.0, -1000.0, -745.0, -20.0],
    ]
)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_and_log_softmax_match_torch_at_extreme_values(dtype):
    x = EXTREME.astype(dtype)
    for ours, theirs in ((softmax, torch.softmax), (log_softmax, torch.log_softmax)):
        got = ours(x)
        want = theirs(t(x), dim=-1).numpy()
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
        finite = np.isfinite(want)
        assert np.all(np.isfinite(got) == finite)
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-6 if dtype == np.float32 else 1e-13, atol=1e-30)
    # Along another axis too.
    y = rng().standard_normal((4, 5)).astype(dtype) * 30
    np.testing.assert_allclose(softmax(y, axis=0), torch.softmax(t(y), dim=0).numpy(), rtol=1e-5)


def test_all_minus_inf_row_torch_gives_nan_we_refuse():
    row = np.array([[-np.inf, -np.inf]])
    assert np.all(np.isnan(torch.softmax(t(row), dim=-1).numpy()))
    with pytest.raises(ValueError, match="all -inf"):
        softmax(row)


# --------------------------------------------------------------------------------------------
# scaled dot-product attention and the causal mask
# --------------------------------------------------------------------------------------------


def torch_sdpa(q, k, v, **kwargs) -> np.ndarray:
    return F.scaled_dot_product_attention(t(q), t(k), t(v), **kwargs).numpy()


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("t_q, t_k", [(1, 1), (7, 7), (5, 11), (11, 5), (130, 130)])
def test_sdpa_matches_torch_full(t_q, t_k, dtype, tol):
    g = rng(1)
    q = g.standard_normal((2, 3, t_q, 16)).astype(dtype)
    k = g.standard_normal((2, 3, t_k, 16)).astype(dtype)
    v = g.standard_normal((2, 3, t_k, 8)).astype(dtype)
    got = scaled_dot_product_attention(q, k, v)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, torch_sdpa(q, k, v), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("t_", [1, 2, 9, 128, 200])
def test_sdpa_causal_matches_torch_is_causal(t_, dtype, tol):
    g = rng(2)
    q, k, v = g.standard_normal((3, 2, 4, t_, 16)).astype(dtype)
    want = torch_sdpa(q, k, v, is_causal=True)
    np.testing.assert_allclose(scaled_dot_product_attention(q, k, v, is_causal=True), want, rtol=tol, atol=tol)
    np.testing.assert_allclose(
        scaled_dot_product_attention(q, k, v, mask=causal_mask(t_, t_)), want, rtol=tol, atol=tol
    )


@pytest.mark.parametrize("t_", [1, 3, 8, 33])
def test_causal_mask_matches_torch_is_causal(t_):
    # With v = I, attention's output *is* its weight matrix: read torch's mask off it.
    g = rng(3)
    q, k = g.standard_normal((2, t_, 4))
    weights = torch_sdpa(q, k, np.eye(t_), is_causal=True)
    np.testing.assert_array_equal(weights > 0, causal_mask(t_, t_))


@pytest.mark.filterwarnings("ignore:Lower right causal bias will produce NaNs")
@pytest.mark.parametrize("t_q, t_k", [(1, 6), (3, 8), (8, 8), (8, 3)])
def test_causal_mask_matches_torch_causal_lower_right(t_q, t_k):
    # torch's is_causal is top-left aligned when t_q != t_k; its causal_lower_right bias is the
    # bottom-right alignment llmfund uses (the one decoding with a KV cache needs).
    bias = pytest.importorskip("torch.nn.attention.bias")
    g = rng(4)
    q = g.standard_normal((2, t_q, 8))
    k = g.standard_normal((2, t_k, 8))
    v = g.standard_normal((2, t_k, 5))
    lower_right = bias.causal_lower_right(t_q, t_k)
    want = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=lower_right).numpy()
    ours = scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(ours, want, rtol=1e-12, atol=1e-12)
    weights = torch_sdpa(q[0], k[0], np.eye(t_k), attn_mask=lower_right)
    np.testing.assert_array_equal(weights > 0, causal_mask(t_q, t_k))


def test_sdpa_boolean_mask_matches_torch():
    g = rng(5)
    q = g.standard_normal((2, 3, 6, 8))
    k = g.standard_normal((2, 3, 9, 8))
    v = g.standard_normal((2, 3, 9, 4))
    mask = g.random((2, 3, 6, 9)) < 0.5
    mask[..., 0, :] = False  # a row that may attend to nothing: zeros in both (torch >= 2.5)
    mask[..., 1, :] = True
    padding = g.random(9) < 0.7
    padding[0] = True
    for m in (mask, padding, mask[:, :1]):
        np.testing.assert_allclose(
            scaled_dot_product_attention(q, k, v, mask=m),
            torch_sdpa(q, k, v, attn_mask=t(np.atleast_2d(m))),  # torch wants a 2-D mask at least
            rtol=1e-12,
            atol=1e-12,
        )


# --------------------------------------------------------------------------------------------
# flash attention
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [7, 64, 1000])
@pytest.mark.parametrize("causal", [False, True])
def test_flash_matches_torch_sdpa(block, causal):
    g = rng(6)
    q, k, v = g.standard_normal((3, 2, 2, 100, 16))
    want = torch_sdpa(q, k, v, is_causal=causal)
    np.testing.assert_allclose(flash_attention(q, k, v, is_causal=causal, block_size=block), want, rtol=1e-11, atol=1e-12)
    q32, k32, v32 = (a.astype(np.float32) for a in (q, k, v))
    got32 = flash_attention(q32, k32, v32, is_causal=causal, block_size=block)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, torch_sdpa(q32, k32, v32, is_causal=causal), rtol=1e-5, atol=1e-5)


def test_flash_lower_right_matches_torch():
    bias = pytest.importorskip("torch.nn.attention.bias")
    g = rng(7)
    q = g.standard_normal((2, 5, 8))
    k = g.standard_normal((2, 37, 8))
    v = g.standard_normal((2, 37, 8))
    want = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=bias.causal_lower_right(5, 37)).numpy()
    np.testing.assert_allclose(flash_attention(q, k, v, is_causal=True, block_size=8), want, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# multi-head and grouped-query attention
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("batched", [False, True])
def test_mha_matches_torch_multihead_attention(causal, batched):
    torch.manual_seed(0)
    d_model, n_heads, tt = 16, 4, 7
    mha = torch.nn.MultiheadAttention(d_model, n_heads, bias=False, batch_first=True, dtype=torch.float64)
    w_q, w_k, w_v = mha.in_proj_weight.detach().numpy().reshape(3, d_model, d_model)
    w_o = mha.out_proj.weight.detach().numpy()
    x = rng(8).standard_normal((2, tt, d_model))
    xt = t(x)
    # torch's float attn_mask is additive: -inf above the diagonal.
    mask = torch.nn.Transformer.generate_square_subsequent_mask(tt, dtype=torch.float64) if causal else None
    with torch.no_grad():
        want = mha(xt, xt, xt, attn_mask=mask, need_weights=False)[0].numpy()
    # torch computes x @ W^T; the course's row convention is x @ W.
    got = multi_head_attention(x if batched else x[0], w_q.T, w_k.T, w_v.T, w_o.T, n_heads, is_causal=causal)
    np.testing.assert_allclose(got, want if batched else want[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_heads, n_kv_heads", [(4, 4), (4, 2), (6, 2), (4, 1)])
@pytest.mark.parametrize("causal", [False, True])
def test_gqa_matches_hf_repeat_kv_and_torch_sdpa(llama, n_heads, n_kv_heads, causal):
    g = rng(9)
    b, tt, d_model, head_dim = 2, 9, 12, 5  # head_dim != d_model / n_heads on purpose
    x = g.standard_normal((b, tt, d_model))
    w_q = g.standard_normal((d_model, n_heads * head_dim)) / np.sqrt(d_model)
    w_k = g.standard_normal((d_model, n_kv_heads * head_dim)) / np.sqrt(d_model)
    w_v = g.standard_normal((d_model, n_kv_heads * head_dim))
    w_o = g.standard_normal((n_heads * head_dim, d_model))

    # As LlamaAttention.forward: project, view as (b, t, heads, head_dim), transpose to
    # (b, heads, t, head_dim), repeat_kv, sdpa, transpose back, o_proj.
    xt = t(x)

    def split(w, n):
        return (xt @ t(w)).view(b, tt, n, head_dim).transpose(1, 2)

    q, k, v = split(w_q, n_heads), split(w_k, n_kv_heads), split(w_v, n_kv_heads)
    group = n_heads // n_kv_heads
    k, v = llama.repeat_kv(k, group), llama.repeat_kv(v, group)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    want = (y.transpose(1, 2).reshape(b, tt, n_heads * head_dim) @ t(w_o)).numpy()

    got = multi_head_attention(x, w_q, w_k, w_v, w_o, n_heads, n_kv_heads=n_kv_heads, is_causal=causal)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


# --------------------------------------------------------------------------------------------
# RoPE
# --------------------------------------------------------------------------------------------


def hf_rotary(llama, head_dim: int, base: float):
    """LlamaRotaryEmbedding built from a config, across transformers 4.x and 5.x."""
    from transformers import LlamaConfig

    config = LlamaConfig(
        hidden_size=4 * head_dim, num_attention_heads=4, head_dim=head_dim, rope_theta=base
    )
    return llama.LlamaRotaryEmbedding(config)


@pytest.mark.parametrize("head_dim, base", [(8, 10000.0), (64, 10000.0), (128, 500000.0)])
def test_rope_frequencies_match_hf_inv_freq(llama, head_dim, base):
    rotary = hf_rotary(llama, head_dim, base)
    np.testing.assert_allclose(rope_frequencies(head_dim, base), rotary.inv_freq.numpy(), rtol=1e-6)


@pytest.mark.parametrize("head_dim, base", [(8, 10000.0), (64, 10000.0), (128, 500000.0)])
def test_apply_rope_matches_hf_apply_rotary_pos_emb(llama, head_dim, base):
    g = rng(10)
    b, heads, tt = 2, 3, 20
    q = g.standard_normal((b, heads, tt, head_dim)).astype(np.float32)
    k = g.standard_normal((b, heads, tt, head_dim)).astype(np.float32)
    positions = np.arange(100, 100 + tt)

    # float32, with cos/sin exactly as LlamaRotaryEmbedding.forward builds them.
    rotary = hf_rotary(llama, head_dim, base)
    cos, sin = rotary(t(q), torch.from_numpy(positions)[None])
    q_hf, k_hf = llama.apply_rotary_pos_emb(t(q), t(k), cos, sin)
    q_ours, k_ours = apply_rope(q, positions, base=base), apply_rope(k, positions, base=base)
    assert q_ours.dtype == np.float32
    # HF computes the angles in float32 (~1e-5 error at position ~100); llmfund in float64.
    np.testing.assert_allclose(q_ours, q_hf.numpy(), atol=1e-4)
    np.testing.assert_allclose(k_ours, k_hf.numpy(), atol=1e-4)

    # float64, with HF's recipe (cat(freqs, freqs), then cos/sin) computed in float64: tight.
    q64, k64 = q.astype(np.float64), k.astype(np.float64)
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    frac = np.array([0.0, 0.5, 3.25] + list(range(3, tt)), dtype=np.float64)[:tt]  # fractional too
    for pos in (positions.astype(np.float64), frac):
        freqs = torch.from_numpy(pos)[None, :, None] * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        q_hf, k_hf = llama.apply_rotary_pos_emb(t(q64), t(k64), emb.cos(), emb.sin())
        np.testing.assert_allclose(apply_rope(q64, pos, base=base), q_hf.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(apply_rope(k64, pos, base=base), k_hf.numpy(), rtol=1e-12, atol=1e-12)


def meta_apply_rotary_emb(x: torch.Tensor, positions: torch.Tensor, base: float) -> torch.Tensor:
    """Meta's original Llama: pairs (2i, 2i+1) are complex numbers multiplied by e^{i m theta}.

    ``x`` has Meta's layout (bsz, seqlen, n_heads, head_dim); ``precompute_freqs_cis`` and
    ``apply_rotary_emb`` of ``llama/model.py``, in float64.
    """
    head_dim = x.shape[-1]
    freqs = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64)[: head_dim // 2] / head_dim))
    freqs = torch.outer(positions.to(torch.float64), freqs)
    freqs_cis = torch.polar(torch.ones_like(freqs), freqs)  # (seqlen, head_dim/2), complex128
    x_ = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2))
    freqs_cis = freqs_cis.view(1, x_.shape[1], 1, x_.shape[-1])
    return torch.view_as_real(x_ * freqs_cis).flatten(3)


@pytest.mark.parametrize("base", [10000.0, 500000.0])
def test_interleaved_rope_matches_complex_multiplication(base):
    g = rng(11)
    bsz, seqlen, n_heads, head_dim = 2, 17, 3, 32
    x = g.standard_normal((bsz, seqlen, n_heads, head_dim))
    positions = np.arange(40, 40 + seqlen, dtype=np.float64) + 0.5
    want = meta_apply_rotary_emb(t(x), torch.from_numpy(positions), base).numpy()
    # llmfund takes (..., t, head_dim): move the heads before the time axis and back.
    ours = apply_rope(x.transpose(0, 2, 1, 3), positions, base=base, layout="interleaved")
    np.testing.assert_allclose(ours.transpose(0, 2, 1, 3), want, rtol=1e-12, atol=1e-12)
    # The half layout is a different pairing: silently different numbers.
    half = apply_rope(x.transpose(0, 2, 1, 3), positions, base=base, layout="half")
    assert not np.allclose(half.transpose(0, 2, 1, 3), want)
