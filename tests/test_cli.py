"""The ``llmfund`` command line: ``python -m llmfund kv ...``."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from llmfund.cli import find_preset, kv_report, main, parse_tokens
from llmfund.kv_cache import kv_cache_bytes
from llmfund.presets import ALIASES, PRESETS


def run_json(capsys, *argv: str) -> dict:
    assert main(["kv", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def run_error(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


# --- the numbers ------------------------------------------------------------------------

def test_llama_2_7b_at_2048_tokens_is_one_gib(capsys):
    assert main(["kv", "--model", "llama-2-7b", "--context", "2048"]) == 0
    out = capsys.readouterr().out
    assert "Total: 1,073,741,824 bytes = 1.000 GiB = 1.074 GB" in out
    assert "GiB = 2^30 bytes, GB = 10^9 bytes." in out
    assert "524,288" in out  # per token
    r = run_json(capsys, "--model", "llama-2-7b", "--context", "2048")
    assert r["total_bytes"] == 2**30 and r["total_gib"] == 1.0 and r["bytes_per_token"] == 524_288


@pytest.mark.parametrize(
    "model, context, expected",
    [
        ("llama-3-8b", "8k", 2**30),  # GQA 8 KV heads: 128 KiB per token
        ("llama-2-70b", "4k", 1.25 * 2**30),  # 80 layers x 8 KV heads
        ("gpt2", "1024", 12 * 2 * 12 * 64 * 2 * 1024),
        ("llama-3.1-405b", "128k", 126 * 2 * 8 * 128 * 2 * 131072),
    ],
)
def test_known_totals(capsys, model, context, expected):
    assert run_json(capsys, "--model", model, "--context", context)["total_bytes"] == expected


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_uses_kv_cache_bytes_and_defaults_to_its_max_context(capsys, name):
    p = PRESETS[name]
    assert p.heads % p.kv_heads == 0 and p.layers >= 1 and p.head_dim in (64, 128)
    r = run_json(capsys, "--model", name)
    cached = p.max_context if p.window is None else min(p.max_context, p.window)
    assert r["context"] == p.max_context and r["cached_tokens"] == cached
    assert r["total_bytes"] == kv_cache_bytes(1, p.layers, p.kv_heads, cached, p.head_dim, 2)
    assert r["attention"] == p.attention and r["source"] == p.source


def test_dtype_batch_and_explicit_sizes(capsys):
    base = ["--layers", "32", "--heads", "32", "--kv-heads", "8", "--head-dim", "128", "--context", "4k"]
    fp16 = run_json(capsys, *base)["total_bytes"]
    assert fp16 == 2 * 32 * 8 * 4096 * 128 * 2
    sizes = {d: run_json(capsys, *base, "--dtype", d)["total_bytes"] for d in ("fp32", "bf16", "int8", "fp8", "int4")}
    assert sizes == {"fp32": 2 * fp16, "bf16": fp16, "int8": fp16 // 2, "fp8": fp16 // 2, "int4": fp16 // 4}
    assert run_json(capsys, *base, "--batch", "3")["total_bytes"] == 3 * fp16
    out = run_json(capsys, "--layers", "2", "--heads", "4", "--head-dim", "8", "--context", "10")
    assert out["kv_heads"] == 4 and out["attention"] == "mha" and out["model"] is None


def test_attention_overrides(capsys):
    assert run_json(capsys, "--model", "llama-2-7b", "--context", "1k", "--attention", "mqa")["kv_heads"] == 1
    mha = run_json(capsys, "--model", "llama-3-8b", "--context", "1k", "--attention", "mha")
    assert mha["kv_heads"] == 32 and mha["attention"] == "mha"
    gqa = run_json(capsys, "--model", "llama-2-7b", "--context", "1k", "--attention", "gqa", "--kv-heads", "8")
    assert gqa["kv_heads"] == 8 and gqa["total_bytes"] == 2**30 // 8
    # a preset with one size overridden keeps the others
    assert run_json(capsys, "--model", "llama-3-8b", "--context", "1k", "--layers", "2")["kv_heads"] == 8


def test_sliding_window_bounds_the_cache(capsys):
    r = run_json(capsys, "--model", "mistral-7b", "--context", "32k")
    assert r["window"] == 4096 and r["cached_tokens"] == 4096
    assert r["total_bytes"] == 2**29 and r["total_bytes_without_window"] == 4 * 2**30
    short = run_json(capsys, "--model", "mistral-7b", "--context", "1000")
    assert short["cached_tokens"] == 1000 and "total_bytes_without_window" not in short
    off = run_json(capsys, "--model", "mistral-7b", "--context", "32k", "--window", "none")
    assert off["window"] is None and off["total_bytes"] == 4 * 2**30
    own = run_json(capsys, "--model", "llama-2-7b", "--context", "4k", "--window", "1k")
    assert own["cached_tokens"] == 1024 and own["total_bytes"] == 2**29
    assert main(["kv", "--model", "mistral-7b", "--context", "32k"]) == 0
    out = capsys.readouterr().out
    assert "sliding window 4,096: bounds the cache" in out and "total without the window" in out


def test_context_beyond_the_model_is_computed_with_a_note(capsys):
    assert main(["kv", "--model", "llama-2-7b", "--context", "8k"]) == 0
    assert "exceeds the model's max_position_embeddings (4,096)" in capsys.readouterr().out
    assert run_json(capsys, "--model", "llama-2-7b", "--context", "8k")["exceeds_max_context"] is True


# --- parsing --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, tokens",
    [("4096", 4096), ("4k", 4096), ("32K", 32768), ("128k", 131072), ("1M", 2**20), ("4_096", 4096), ("4,096", 4096), ("1.5k", 1536), (" 2048 ", 2048)],
)
def test_parse_tokens(text, tokens):
    assert parse_tokens(text) == tokens


@pytest.mark.parametrize("text", ["", "k", "4kb", "-1", "0", "0k", "1.3k", "4 k b", "1e3", "4__096"])
def test_parse_tokens_rejects(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_tokens(text)


def test_find_preset_spellings():
    assert find_preset("LLAMA-2-7B").name == "llama-2-7b"
    assert find_preset("llama_3_8b").name == "llama-3-8b"
    assert find_preset("Qwen/Qwen2.5-72B").name == "qwen2.5-72b"
    assert find_preset("gpt2-small").name == "gpt2"
    assert all(find_preset(alias).name == target for alias, target in ALIASES.items())
    assert find_preset("llama-4") is None


# --- errors, help, list ------------------------------------------------------------------

@pytest.mark.parametrize(
    "argv, words",
    [
        ([], "the following arguments are required: COMMAND"),
        (["kv"], "argument --layers: required without --model"),
        (["kv", "--layers", "2", "--heads", "2", "--head-dim", "8"], "argument --context: required without --model"),
        (["kv", "--model", "llama-2-7b", "--context", "4kb"], "argument -c/--context: expected a token count"),
        (["kv", "--model", "llama-2-7b", "--context", "0"], "argument -c/--context: expected at least 1 token"),
        (["kv", "--model", "llama-2-7b", "--batch", "0"], "argument -b/--batch: expected an integer >= 1, got '0'"),
        (["kv", "--model", "llama-2-7b", "--layers", "x"], "argument --layers: expected an integer >= 1, got 'x'"),
        (["kv", "--model", "llama-2-7b", "--dtype", "fp64"], "argument --dtype: invalid choice: 'fp64'"),
        (["kv", "--model", "llama-2-7b", "--kv-heads", "5"], "argument --kv-heads: must divide the number of heads (32), got 5"),
        (["kv", "--model", "llama-2-7b", "--kv-heads", "64"], "argument --kv-heads: must divide"),
        (["kv", "--model", "llama-2-7b", "--attention", "gqa"], "argument --attention: gqa needs 1 < KV heads < heads (32)"),
        (["kv", "--model", "llama-3-8b", "--attention", "mha", "--kv-heads", "8"], "argument --attention: mha means"),
        (["kv", "--model", "llama-3-8b", "--attention", "mqa", "--kv-heads", "8"], "argument --attention: mqa means 1 KV head"),
        (["kv", "--model", "gpt2", "--window", "x"], "argument --window: expected a token count"),
        (["kv", "--model", "gpt2", "--attention", "moe"], "argument --attention: invalid choice"),
        (["kv", "--model", "llama-4-8b"], "argument --model: unknown preset 'llama-4-8b'"),
        (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_exit_2_naming_the_option(capsys, argv, words):
    err = run_error(capsys, *argv)
    assert words in err and "usage: llmfund" in err


def test_unknown_preset_suggests_close_matches(capsys):
    err = run_error(capsys, "kv", "--model", "lama-2-7b")
    assert "did you mean llama-2-7b" in err and "--list" in err
    err = run_error(capsys, "kv", "--model", "qwen7b")
    assert "did you mean qwen2-7b" in err


def test_help_has_usage_description_and_examples(capsys):
    for argv in (["--help"], ["kv", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: llmfund [-h] COMMAND" in out and "usage: llmfund kv" in out
    assert "examples:" in out and "llmfund kv --model llama-2-7b --context 2048" in out
    assert "GiB = 2^30 bytes, GB = 10^9 bytes" in out


def test_list_text_and_json(capsys):
    assert main(["kv", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in PRESETS) and "Mistral-7B-v0.1" in out
    listed = run_json(capsys, "--list")
    assert [p["name"] for p in listed] == list(PRESETS)
    assert listed[0]["layers"] == 12 and {p["attention"] for p in listed} == {"mha", "gqa"}


def test_kv_report_refuses_bad_values():
    with pytest.raises(ValueError, match="dtype must be one of"):
        kv_report(layers=1, heads=1, kv_heads=1, head_dim=1, context=1, dtype="fp64")
    with pytest.raises(ValueError, match="kv_heads must divide heads=4, got 3"):
        kv_report(layers=1, heads=4, kv_heads=3, head_dim=1, context=1)
    with pytest.raises(ValueError, match="seq_len must be >= 1"):
        kv_report(layers=1, heads=1, kv_heads=1, head_dim=1, context=0)


def test_python_dash_m_llmfund():
    done = subprocess.run(
        [sys.executable, "-m", "llmfund", "kv", "--model", "llama-2-7b", "--context", "2048"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "= 1.000 GiB" in done.stdout and "1,073,741,824" in done.stdout
