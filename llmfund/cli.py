r"""The ``llmfund`` command line (``python -m llmfund``): course calculators for the terminal.

Subcommands
-----------
``kv``
    KV-cache memory of a model: ``2 · batch · layers · kv_heads · tokens · head_dim · bytes``
    (:func:`~llmfund.kv_cache.kv_cache_bytes`), for a preset of a real model or explicit
    sizes, with GQA/MQA, a sliding window and the cache dtype as options.

Each subcommand is a pair of functions: ``_add_NAME(subparsers)`` declares its options and
sets ``handler`` (and ``parser``, its own parser), and the handler ``(args, parser) -> int`` runs it. Adding a subcommand is
adding one such pair and one line in :func:`build_parser`. Bad arguments go through
``parser.error``: a message naming the option, the usage line, exit status 2 (argparse's
``SystemExit``, as ``pip`` or ``git`` do).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from .kv_cache import kv_cache_bytes
from .presets import ALIASES, PRESETS, ModelPreset

PROG = "llmfund"

# Bytes per stored number. fp8 is E4M3/E5M2 (vLLM's kv_cache_dtype="fp8"); int4 packs two
# numbers per byte.
DTYPE_BYTES: dict[str, float] = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1, "fp8": 1, "int4": 0.5}

_FROM_PRESET = object()  # --window not given: use the preset's sliding window, if any
_TOKENS = re.compile(r"(\d+(?:\.\d+)?)([km]?)")
_SUFFIX = {"": 1, "k": 1024, "m": 1024**2}


def parse_tokens(text: str) -> int:
    """A token count as people write it: ``4096``, ``4k``, ``32K``, ``128k``, ``1M``, ``4_096``.

    Parameters
    ----------
    text : str
        Digits with an optional suffix ``k`` (x 1024) or ``m`` (x 1024²), any case;
        ``_`` and ``,`` between digits are ignored. ``1.5k`` is allowed when the result is a
        whole number.

    Returns
    -------
    int
        The count (>= 1).

    Raises
    ------
    ValueError
        If ``text`` is not of that form, is not a whole number of tokens, or is 0.

    Notes
    -----
    ``k`` means 1024 because that is how context lengths are named: a "4k" model has 4096
    positions, "128k" is 131072 (Llama 3.1's ``max_position_embeddings``).

    Examples
    --------
    >>> from llmfund.cli import parse_tokens
    >>> print(parse_tokens("4096"), parse_tokens("4k"), parse_tokens("32K"), parse_tokens("128k"))
    4096 4096 32768 131072
    >>> parse_tokens("4kb")
    Traceback (most recent call last):
    ...
    ValueError: expected a token count such as 4096, 4k, 32K or 128k, got '4kb'
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    cleaned = text.strip().lower()
    cleaned = re.sub(r"(?<=\d)[_,](?=\d)", "", cleaned)
    match = _TOKENS.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"expected a token count such as 4096, 4k, 32K or 128k, got {text!r}")
    number, suffix = match.groups()
    scaled = float(number) * _SUFFIX[suffix] if "." in number else int(number) * _SUFFIX[suffix]
    if scaled != int(scaled):
        raise ValueError(f"expected a whole number of tokens, got {text!r} = {scaled}")
    if int(scaled) < 1:
        raise ValueError(f"expected at least 1 token, got {text!r}")
    return int(scaled)


def _tokens_arg(text: str) -> int:
    try:
        return parse_tokens(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _window_arg(text: str) -> int | None:
    if text.strip().lower() in ("none", "off", "0"):
        return None
    try:
        return parse_tokens(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a token count (e.g. 4096 or 4k) or 'none', got {text!r}") from None


def find_preset(name: str) -> ModelPreset | None:
    """The preset called ``name`` (any case, ``_`` for ``-``, an alias or its HF repository), or None.

    Examples
    --------
    >>> from llmfund.cli import find_preset
    >>> print(find_preset("Llama_2_7B").name, find_preset("mistralai/Mistral-7B-v0.1").name)
    llama-2-7b mistral-7b
    >>> print(find_preset("llama-9"))
    None
    """
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    key = ALIASES.get(key, key)
    if key in PRESETS:
        return PRESETS[key]
    for preset in PRESETS.values():
        if preset.source.lower() == key or preset.source.lower().split("/")[-1] == key:
            return preset
    return None


def kv_report(
    *,
    layers: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    context: int,
    batch: int = 1,
    dtype: str = "fp16",
    window: int | None = None,
    model: str | None = None,
    source: str | None = None,
    max_context: int | None = None,
) -> dict[str, Any]:
    """Every number the ``kv`` subcommand prints, as a dict (also its ``--json`` output).

    Parameters
    ----------
    layers, heads, kv_heads, head_dim : int
        The model's attention shape (>= 1; ``kv_heads`` divides ``heads``).
    context : int
        Tokens per sequence (>= 1).
    batch : int, default 1
        Sequences (>= 1).
    dtype : str, default 'fp16'
        A key of ``DTYPE_BYTES``.
    window : int, optional
        Sliding window: the cache holds ``min(context, window)`` tokens per sequence.
    model, source, max_context : optional
        Labels for the output, and the model's ``max_position_embeddings`` (a context
        beyond it sets ``exceeds_max_context``).

    Returns
    -------
    dict
        Sizes, ``cached_tokens``, ``bytes_per_element``, ``bytes_per_token`` (one sequence,
        all layers, K and V), ``bytes_per_sequence``, ``total_bytes`` and the same total in
        GiB (2**30 bytes) and GB (10**9 bytes); ``total_bytes_without_window`` when a window
        bounds the cache.

    Raises
    ------
    ValueError
        On a size < 1, ``kv_heads`` not dividing ``heads``, or an unknown ``dtype``.

    Examples
    --------
    >>> from llmfund.cli import kv_report
    >>> r = kv_report(layers=32, heads=32, kv_heads=8, head_dim=128, context=32768, window=4096)
    >>> print(r["cached_tokens"], r["total_bytes"], r["total_gib"], r["total_bytes_without_window"] // 2**30)
    4096 536870912 0.5 4
    """
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    if kv_heads > heads or heads % kv_heads:
        raise ValueError(f"kv_heads must divide heads={heads}, got {kv_heads}")
    bpe = DTYPE_BYTES[dtype]
    cached = context if window is None else min(context, window)
    per_token = kv_cache_bytes(1, layers, kv_heads, 1, head_dim, bpe)
    per_sequence = kv_cache_bytes(1, layers, kv_heads, cached, head_dim, bpe)
    total = kv_cache_bytes(batch, layers, kv_heads, cached, head_dim, bpe)
    attention = "mha" if kv_heads == heads else ("mqa" if kv_heads == 1 else "gqa")
    report: dict[str, Any] = {
        "model": model,
        "source": source,
        "layers": layers,
        "heads": heads,
        "kv_heads": kv_heads,
        "attention": attention,
        "head_dim": head_dim,
        "batch": batch,
        "context": context,
        "window": window,
        "cached_tokens": cached,
        "dtype": dtype,
        "bytes_per_element": bpe,
        "bytes_per_token": per_token,
        "bytes_per_sequence": per_sequence,
        "total_bytes": total,
        "total_gib": total / 2**30,
        "total_gb": total / 10**9,
        "max_context": max_context,
        "exceeds_max_context": max_context is not None and context > max_context,
    }
    if cached < context:
        report["total_bytes_without_window"] = kv_cache_bytes(batch, layers, kv_heads, context, head_dim, bpe)
    return report


def _num(x: float) -> str:
    """3 decimals from 0.01 up, 3 significant digits below (per-token sizes are tiny in GiB)."""
    return f"{x:,.3f}" if x >= 0.01 or x == 0 else f"{x:.3g}"


def format_kv_report(r: dict[str, Any]) -> str:
    """The human-readable table of a :func:`kv_report`."""
    lines = []
    name = r["model"] or "custom model"
    lines.append(f"KV cache of {name}" + (f" ({r['source']} config.json)" if r["source"] else ""))
    lines.append(
        f"  {r['layers']} layers, {r['heads']} query heads, {r['kv_heads']} KV heads "
        f"({r['attention'].upper()}), head_dim {r['head_dim']}"
    )
    bpe = r["bytes_per_element"]
    bpe_text = f"{bpe:g} byte" + ("" if bpe == 1 else "s")
    lines.append(f"  batch {r['batch']}, context {r['context']:,} tokens, {r['dtype']} ({bpe_text} per number)")
    if r["window"] is not None:
        bound = "bounds" if r["cached_tokens"] < r["context"] else "does not bound"
        lines.append(
            f"  sliding window {r['window']:,}: {bound} the cache, "
            f"min(context, window) = {r['cached_tokens']:,} tokens kept per sequence"
        )
    lines.append("")
    rows = [
        ("per token", r["bytes_per_token"]),
        (f"per sequence ({r['cached_tokens']:,} tokens)", r["bytes_per_sequence"]),
        (f"total (batch {r['batch']})", r["total_bytes"]),
    ]
    if "total_bytes_without_window" in r:
        rows.append(("total without the window", r["total_bytes_without_window"]))
    label_w = max(len(label) for label, _ in rows)
    cells = [(label, f"{n:,}", _num(n / 2**30), _num(n / 10**9)) for label, n in rows]
    w = [max(len(c[i]) for c in cells + [("", "bytes", "GiB", "GB")]) for i in range(1, 4)]
    lines.append(f"  {'':<{label_w}}  {'bytes':>{w[0]}}  {'GiB':>{w[1]}}  {'GB':>{w[2]}}")
    for label, b, gib, gb in cells:
        lines.append(f"  {label:<{label_w}}  {b:>{w[0]}}  {gib:>{w[1]}}  {gb:>{w[2]}}")
    lines.append("")
    lines.append(
        f"Total: {r['total_bytes']:,} bytes = {_num(r['total_gib'])} GiB = {_num(r['total_gb'])} GB"
    )
    lines.append(
        f"Per token: 2 (K and V) x {r['layers']} layers x {r['kv_heads']} KV heads x "
        f"{r['head_dim']} x {bpe_text} = {r['bytes_per_token']:,} bytes."
    )
    lines.append("GiB = 2^30 bytes, GB = 10^9 bytes." + (
        " Scales of a quantised cache are not counted." if r["dtype"] in ("int8", "fp8", "int4") else ""
    ))
    if r["exceeds_max_context"]:
        lines.append(
            f"note: context {r['context']:,} exceeds the model's max_position_embeddings "
            f"({r['max_context']:,})"
        )
    return "\n".join(lines)


def format_presets() -> str:
    """The ``--list`` table."""
    header = ("preset", "layers", "heads", "kv_heads", "head_dim", "attn", "max_ctx", "window", "config.json of")
    rows = [header] + [
        (
            p.name, str(p.layers), str(p.heads), str(p.kv_heads), str(p.head_dim), p.attention.upper(),
            f"{p.max_context:,}", "-" if p.window is None else f"{p.window:,}", p.source,
        )
        for p in PRESETS.values()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    out = []
    for row in rows:
        cells = [c.ljust(w) if i in (0, 5, 8) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


_KV_DESCRIPTION = """\
KV-cache memory of a transformer: K and V, for every layer, KV head and cached token,

    bytes = 2 x batch x layers x kv_heads x tokens x head_dim x bytes_per_number

for a preset of a real model (--model, see --list) or explicit sizes, with grouped-query
(GQA) or multi-query (MQA) attention, a sliding window and the cache dtype as options.
GiB = 2^30 bytes, GB = 10^9 bytes."""

_KV_EPILOG = """\
examples:
  llmfund kv --model llama-2-7b --context 2048          # 1 GiB: the fp16 cache of one sequence
  llmfund kv --model llama-3-8b --context 128k --batch 8
  llmfund kv --model mistral-7b --context 32k            # bounded by its 4096-token window
  llmfund kv --model llama-2-7b --attention mqa          # what MQA would save
  llmfund kv --layers 32 --heads 32 --kv-heads 8 --head-dim 128 --context 4k --dtype int8
  llmfund kv --list
  llmfund kv --model qwen2.5-7b --context 32k --json"""


def _add_kv(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "kv",
        help="KV-cache memory of a model (presets or explicit sizes)",
        description=_KV_DESCRIPTION,
        epilog=_KV_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model = p.add_argument_group("model (a preset, explicit sizes, or a preset with some sizes overridden)")
    model.add_argument("-m", "--model", metavar="PRESET", help="a preset name or its Hugging Face repository (see --list)")
    model.add_argument("--layers", type=_positive_int, metavar="N", help="transformer layers (num_hidden_layers)")
    model.add_argument("--heads", type=_positive_int, metavar="N", help="query heads (num_attention_heads)")
    model.add_argument("--kv-heads", type=_positive_int, metavar="N", help="key/value heads (num_key_value_heads; default: --heads)")
    model.add_argument("--head-dim", type=_positive_int, metavar="N", help="dimension of one head (hidden_size / num_attention_heads)")
    model.add_argument(
        "--attention", choices=("mha", "gqa", "mqa"),
        help="override: mha = as many KV heads as heads, mqa = 1 KV head, gqa = --kv-heads (1 < kv < heads)",
    )
    run = p.add_argument_group("workload")
    run.add_argument(
        "-c", "--context", type=_tokens_arg, metavar="TOKENS",
        help="tokens per sequence: 4096, 4k, 32K, 128k (k = 1024); default: the preset's max_position_embeddings",
    )
    run.add_argument("-b", "--batch", type=_positive_int, default=1, metavar="N", help="sequences cached at once (default: 1)")
    run.add_argument("--dtype", choices=tuple(DTYPE_BYTES), default="fp16", help="cache dtype (default: fp16)")
    run.add_argument(
        "--window", type=_window_arg, default=_FROM_PRESET, metavar="TOKENS",
        help="sliding window: cache min(context, window) tokens ('none' turns off a preset's window)",
    )
    out = p.add_argument_group("output")
    out.add_argument("--list", action="store_true", help="list the presets and exit")
    out.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_run_kv, parser=p)


def _run_kv(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.list:
        if args.json:
            print(json.dumps([{**vars(p), "attention": p.attention} for p in PRESETS.values()], indent=2))
        else:
            print(format_presets())
        return 0

    preset = None
    if args.model is not None:
        preset = find_preset(args.model)
        if preset is None:
            names = list(PRESETS) + list(ALIASES)
            typed = re.sub(r"[\s_]+", "-", args.model.strip().lower())
            matches = difflib.get_close_matches(typed, names, n=6, cutoff=0.5)
            close = list(dict.fromkeys(ALIASES.get(m, m) for m in matches))[:3]  # canonical names, once
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            parser.error(f"argument --model: unknown preset {args.model!r}{hint} (see '{PROG} kv --list')")
    else:
        for option, value in (("--layers", args.layers), ("--heads", args.heads), ("--head-dim", args.head_dim)):
            if value is None:
                parser.error(f"argument {option}: required without --model (or give --model PRESET)")
        if args.context is None:
            parser.error("argument --context: required without --model")

    layers = args.layers or preset.layers  # type: ignore[union-attr]
    heads = args.heads or preset.heads  # type: ignore[union-attr]
    head_dim = args.head_dim or preset.head_dim  # type: ignore[union-attr]
    # A size not given comes from the preset; explicit sizes without --kv-heads are plain MHA.
    kv_heads = args.kv_heads or (preset.kv_heads if preset is not None else heads)

    if args.attention == "mha":
        if args.kv_heads is not None and args.kv_heads != heads:
            parser.error(f"argument --attention: mha means --kv-heads = --heads ({heads}), got --kv-heads {args.kv_heads}")
        kv_heads = heads
    elif args.attention == "mqa":
        if args.kv_heads is not None and args.kv_heads != 1:
            parser.error(f"argument --attention: mqa means 1 KV head, got --kv-heads {args.kv_heads}")
        kv_heads = 1
    elif args.attention == "gqa" and not 1 < kv_heads < heads:
        parser.error(
            f"argument --attention: gqa needs 1 < KV heads < heads ({heads}), have {kv_heads}; "
            "give --kv-heads"
        )
    if kv_heads > heads or heads % kv_heads:
        parser.error(f"argument --kv-heads: must divide the number of heads ({heads}), got {kv_heads}")

    window = args.window
    if window is _FROM_PRESET:
        window = preset.window if preset else None
    context = args.context if args.context is not None else preset.max_context  # type: ignore[union-attr]
    report = kv_report(
        layers=layers, heads=heads, kv_heads=kv_heads, head_dim=head_dim, context=context,
        batch=args.batch, dtype=args.dtype, window=window,
        model=preset.name if preset else None, source=preset.source if preset else None,
        max_context=preset.max_context if preset else None,
    )
    print(json.dumps(report, indent=2) if args.json else format_kv_report(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``llmfund`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Calculators from the llmfund course on LLM fundamentals and inference optimisation.",
        epilog=f"Run '{PROG} COMMAND --help' for a command's options and examples.",
    )
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True)
    _add_kv(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success. Bad arguments raise ``SystemExit(2)`` after printing the usage and a
        message naming the option (argparse's ``parser.error``); ``--help`` raises
        ``SystemExit(0)``.

    Examples
    --------
    >>> from llmfund.cli import main
    >>> status = main(["kv", "--model", "llama-2-7b", "--context", "2048"])
    KV cache of llama-2-7b (meta-llama/Llama-2-7b-hf config.json)
      32 layers, 32 query heads, 32 KV heads (MHA), head_dim 128
      batch 1, context 2,048 tokens, fp16 (2 bytes per number)
    <BLANKLINE>
                                           bytes       GiB        GB
      per token                          524,288  0.000488  0.000524
      per sequence (2,048 tokens)  1,073,741,824     1.000     1.074
      total (batch 1)              1,073,741,824     1.000     1.074
    <BLANKLINE>
    Total: 1,073,741,824 bytes = 1.000 GiB = 1.074 GB
    Per token: 2 (K and V) x 32 layers x 32 KV heads x 128 x 2 bytes = 524,288 bytes.
    GiB = 2^30 bytes, GB = 10^9 bytes.
    >>> status
    0
    """
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    # The handler gets its subcommand's parser, so its errors show that usage line.
    return int(args.handler(args, args.parser))
