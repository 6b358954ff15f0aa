"""Run every benchmark script once and write the data of the site's benchmarks page.

Run from the repository root::

    python benchmarks/report.py                   # everything, full sizes (several minutes)
    python benchmarks/report.py --quick           # small sizes: a smoke test, not numbers to publish
    python benchmarks/report.py --only serving    # one script (repeatable); the file then holds only it
    python benchmarks/report.py --redraw          # redraw the figures from results.json, measure nothing

It writes, into ``docs/assets/benchmarks/`` (``--output``):

``results.json``
    The rows of ``bench_attention``, ``bench_sampling_ppl``, ``bench_serving`` and
    ``bench_kv_variants`` (each script's ``run``; schema in ``benchlib.py``), the titles of
    their tables in both languages, the command, the date (UTC), how long it took, and the
    machine: OS, CPU, cores, load average before and after, Python, NumPy and its BLAS, torch
    and transformers, the thread settings.
``decode-step-time.zh.svg``, ``decode-step-time.en.svg``
    Measured time of one decode step of a small decoder (:mod:`llmfund.decoder`) against the
    context length, recomputing the prefix versus using a KV cache.

The site build only reads these files (``tools/benchmarks_page.py`` renders the tables); it
never runs a benchmark. Like the scripts, this sets every BLAS/OpenMP pool to one thread
before NumPy loads, and exits with status 1 if a full run misses a target (after writing).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy (or torch) loads its thread pools

import argparse  # noqa: E402
import copy  # noqa: E402
import datetime  # noqa: E402
import importlib  # noqa: E402
import importlib.metadata  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:  # the scripts import benchlib as a sibling module
    sys.path.insert(0, str(HERE))

import benchlib  # noqa: E402

SCRIPTS = ("attention", "sampling_ppl", "serving", "kv_variants")  # benchmarks/bench_<name>.py
DECODE = "decode_steps"  # the measurement behind the figure
DEFAULT_OUTPUT = ROOT / "docs" / "assets" / "benchmarks"
SCHEMA = 1
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
RATIO = "reference / ours: above 1 means llmfund is faster (time), smaller (bytes) or more accurate (error)"


# --- the machine -----------------------------------------------------------------------------


def _cpuinfo(key: str) -> str | None:
    """The first ``key : value`` of /proc/cpuinfo (Linux), or None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() == key and value.strip():
                    return value.strip()
    except OSError:
        pass
    return None


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) * 1024 / 2**30, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _blas() -> dict[str, Any]:
    """NumPy's BLAS: from its build config (NumPy >= 1.25), else threadpoolctl if installed."""
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return {k: blas.get(k) for k in ("name", "version", "openblas configuration") if blas.get(k)}
    except Exception:  # older NumPy: no mode="dicts"; layouts differ between versions
        pass
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        return {"name": "unknown"}
    for pool in threadpoolctl.threadpool_info():
        if pool.get("user_api") == "blas":
            return {"name": pool.get("internal_api"), "version": pool.get("version"), "threads": pool.get("num_threads")}
    return {"name": "unknown"}


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: hardware, software versions, thread settings."""
    threads: dict[str, Any] = {var: os.environ.get(var) for var in THREAD_VARS}
    if "torch" in sys.modules:  # only when a comparison imported it
        threads["torch.get_num_threads()"] = sys.modules["torch"].get_num_threads()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpuinfo("model name") or platform.processor() or None,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": _blas(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "matplotlib": _version("matplotlib"),
        "llmfund": _version("llmfund"),
        "git": _git_revision(),
        "threads": threads,
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # not on Windows
        return None


# --- the decode-step measurement behind the figure -------------------------------------------

# A toy Llama-style decoder: big enough that a step costs more than Python's overheads.
DECODER = dict(vocab=1000, d_model=128, n_layers=2, n_heads=4)


def measure_decode_steps(quick: bool = False) -> dict[str, Any]:
    """Time one decode step at each context length, without and with a KV cache.

    Without a cache a step is ``decoder_forward`` over the whole sequence (the prefix is
    recomputed); with one it is ``decoder_forward`` of the one new token over caches that
    already hold ``t`` tokens. Each timed cached step starts from a copy of the same prefilled
    caches, so every repetition sees exactly ``t`` cached tokens. Best of N, like the scripts.
    """
    from llmfund.decoder import decoder_forward, init_decoder_params, new_kv_caches

    lengths = [16, 32, 64, 128, 256] if quick else [16, 32, 64, 128, 256, 512, 1024, 2048]
    repeat = 3 if quick else 5
    params = init_decoder_params(**DECODER, rng=np.random.default_rng(0))
    tokens = np.random.default_rng(1).integers(0, DECODER["vocab"], size=lengths[-1] + 1)
    recompute, cached = [], []
    for t in lengths:
        caches = new_kv_caches(params, capacity=t + 1)  # room for the step: no growth inside the timing
        decoder_forward(params, tokens[:t], caches)  # prefill (not timed)
        full = decoder_forward(params, tokens[: t + 1])
        step = decoder_forward(params, tokens[t : t + 1], copy.deepcopy(caches))
        np.testing.assert_allclose(step[-1], full[-1], rtol=1e-3, atol=1e-3)  # same answer both ways

        best_full = best_step = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            decoder_forward(params, tokens[: t + 1])
            best_full = min(best_full, time.perf_counter() - start)
            fresh = copy.deepcopy(caches)
            start = time.perf_counter()
            decoder_forward(params, tokens[t : t + 1], fresh)
            best_step = min(best_step, time.perf_counter() - start)
        recompute.append(best_full)
        cached.append(best_step)
        print(f"decode step at t={t:>5}: recompute {best_full * 1e3:9.3f} ms, KV cache {best_step * 1e3:7.3f} ms, "
              f"{best_full / best_step:6.1f}x", flush=True)
    return {
        "model": dict(DECODER, d_ff=params.d_ff, dtype="float32"),
        "repeat": repeat,
        "context": lengths,
        "recompute_s": recompute,
        "cached_s": cached,
    }


# --- figures ---------------------------------------------------------------------------------


def decode_step_figure(data: dict[str, Any], lang: str):
    """Time per decode step against context length, log-log, labels in ``lang``."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    from llmfund.figures._base import new_figure, tr

    m = data["model"]
    t = np.asarray(data["context"])
    recompute_ms, cached_ms = np.asarray(data["recompute_s"]) * 1e3, np.asarray(data["cached_s"]) * 1e3
    fig, ax = new_figure()
    ax.plot(t, recompute_ms, "o-", ms=4, label=tr(lang, "不用缓存（每步重算前缀）", "no cache (recompute the prefix)"))
    ax.plot(t, cached_ms, "s-", ms=4, label=tr(lang, "KV Cache", "KV cache"))
    ax.set_xscale("log", base=2)
    ax.set_xticks(t, [str(x) for x in t])
    ax.set_yscale("log")
    # Plain numbers at 1, 2, 5 x 10^k ms rather than 10^k exponents: read at a glance.
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())  # no unlabelled ticks: fewer SVG elements
    ax.set_xlabel(tr(lang, "上下文长度 t（token）", "context length t (tokens)"))
    ax.set_ylabel(tr(lang, "每步耗时（ms）", "time per decode step (ms)"))
    ax.set_title(
        tr(lang, f"实测：{m['n_layers']} 层玩具解码器，d_model={m['d_model']}，{m['n_heads']} 头，float32，单线程",
           f"measured: {m['n_layers']}-layer toy decoder, d_model={m['d_model']}, {m['n_heads']} heads, float32, 1 thread"),
        fontsize=9,
    )  # fmt: skip
    # The gap at the longest context, as a bracket between the two curves.
    ax.vlines(t[-1], cached_ms[-1], recompute_ms[-1], colors="0.5", linestyles="dotted")
    ratio = recompute_ms[-1] / cached_ms[-1]
    ax.annotate(
        tr(lang, f"快 {ratio:.0f} 倍", f"{ratio:.0f}× faster"),
        xy=(t[-1], float(np.sqrt(recompute_ms[-1] * cached_ms[-1]))), xytext=(-6, 0), textcoords="offset points",
        ha="right", va="center", fontsize=9,
    )  # fmt: skip
    ax.legend(fontsize=9, loc="upper left")
    return fig


def decode_step_svg(data: dict[str, Any], lang: str) -> bytes:
    """The figure as deterministic SVG, as ``llmfund.figures.render_svg`` makes the course's:
    drawn and saved under the course style, with a fixed hash salt and no date or creator."""
    import matplotlib

    from llmfund.figures._base import _RC

    with matplotlib.rc_context(_RC):
        fig = decode_step_figure(data, lang)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()


def write_figures(data: dict[str, Any], out: Path) -> list[Path]:
    from llmfund.figures._base import LANGS

    written = []
    for lang in LANGS:
        path = out / f"decode-step-time.{lang}.svg"
        path.write_bytes(decode_step_svg(data, lang))
        written.append(path)
    return written


# --- results.json ----------------------------------------------------------------------------


def _round(x: Any) -> Any:
    """4 significant digits for measured floats, recursively: the file stays small and diffable."""
    if isinstance(x, float):
        return x if not math.isfinite(x) or x == 0 else float(f"{x:.4g}")
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_round(v) for v in x]
    return x


def _round_row(r: dict[str, Any]) -> dict[str, Any]:
    # Targets and limits are exact thresholds, not measurements: keep them as written.
    return {k: (v if k in ("target", "limit") else _round(v)) for k, v in r.items()}


def _dumps(results: dict[str, Any]) -> str:
    """JSON with one row (or group) per line: small, and a re-run diffs row by row."""
    lines = []
    for key, value in results.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            text = "[\n" + ",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in value) + "\n ]"
        elif isinstance(value, dict):
            text = json.dumps(value, ensure_ascii=False, indent=1).replace("\n", "\n ")
        else:
            text = json.dumps(value, ensure_ascii=False)
        lines.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def load_script(name: str):
    """Import ``benchmarks/bench_<name>.py`` as a module."""
    if name not in SCRIPTS:
        raise ValueError(f"name must be one of {SCRIPTS}, got {name!r}")
    return importlib.import_module(f"bench_{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test, not numbers to publish)")
    parser.add_argument("--only", action="append", choices=SCRIPTS + (DECODE,), metavar="NAME",
                        help=f"run only this part (repeatable): {', '.join(SCRIPTS + (DECODE,))}")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="directory to write (default: %(default)s)")
    parser.add_argument("--redraw", action="store_true", help="redraw the figures from results.json; measure nothing")
    args = parser.parse_args(argv)
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"

    if args.redraw:
        data = json.loads(results_path.read_text(encoding="utf-8"))
        if "decode_steps" not in data.get("figures", {}):
            parser.error(f"{results_path} holds no decode-step measurement to draw")
        for path in write_figures(data["figures"]["decode_steps"], out):
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({path.stat().st_size:,} B)")
        return 0

    parts = args.only or list(SCRIPTS + (DECODE,))
    command = "python benchmarks/report.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    load_before = _loadavg()
    started = time.perf_counter()
    date = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()

    rows: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    figures: dict[str, Any] = {}
    for name in SCRIPTS:
        if name not in parts:
            continue
        module = load_script(name)
        print(f"\n=== bench_{name}.py {'--quick' if args.quick else ''}".rstrip() + " ===\n", flush=True)
        rows += module.run(args.quick)
        groups += [dict(id=gid, bench=module.BENCH, **titles) for gid, titles in module.GROUPS.items()]
    if DECODE in parts:
        print("\n=== decode step time, with and without a KV cache ===\n", flush=True)
        figures["decode_steps"] = _round(measure_decode_steps(args.quick))

    ids = [g["id"] for g in groups]
    assert len(ids) == len(set(ids)), f"group ids must be unique across scripts: {ids}"
    unknown = {r["group"] for r in rows} - set(ids)
    assert not unknown, f"rows name groups no script declares: {unknown}"

    results = {
        "schema": SCHEMA,
        "command": command,
        "quick": args.quick,
        "parts": parts,
        "date": date,
        "duration_s": round(time.perf_counter() - started, 1),
        "load_average": {"before": load_before, "after": _loadavg()},
        "ratio": RATIO,
        "machine": machine_info(),
        "groups": groups,
        "rows": [_round_row(r) for r in rows],
        "figures": figures,
    }
    results_path.write_text(_dumps(results), encoding="utf-8")
    written = [results_path]
    if "decode_steps" in figures:
        written += write_figures(figures["decode_steps"], out)

    print("\n=== all rows ===\n")
    if rows:
        benchlib.print_rows(rows)
    status = benchlib.finish(rows, args.quick)
    print(f"load average (1, 5, 15 min): before {load_before}, after {results['load_average']['after']}; "
          f"took {results['duration_s']:.0f} s")
    for path in written:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({path.stat().st_size:,} B)")
    return status


if __name__ == "__main__":
    sys.exit(main())
