"""What the benchmark scripts share: the row each measurement becomes, and how rows print.

Every script exposes ``run(quick=False, sections=None) -> list[dict]``; each dict is a
:func:`row`, plain JSON (``benchmarks/report.py`` writes them to
``docs/assets/benchmarks/results.json`` and the site renders that file).

**Direction.** ``ratio = reference / ours`` in every script and every unit: above 1 means
llmfund is faster (time), smaller (bytes) or more accurate (relative error). A ``target`` is
a minimum ratio, so ``>= 2`` reads "at least twice as fast" and ``>= 0.4`` "at most 2.5x
slower". A ``limit`` is a maximum for ``ours`` itself, in its unit (a simulation must take at
most 5 s; an error must stay under 2 %).

This module imports nothing heavy: the scripts set the BLAS thread variables before NumPy
loads, and torch / transformers are imported only by the cases that compare with them
(:func:`optional`), so importing a script, or running one small case, stays fast.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

UNITS = ("s", "B", "fraction")  # seconds, bytes, a dimensionless fraction (shown as %)
ROW_KEYS = (
    "bench", "group", "case", "case_zh", "unit", "ours", "reference", "ratio",
    "target", "limit", "passed", "note", "note_zh", "extra",
)  # fmt: skip


def optional(name: str) -> Any | None:
    """Import an optional reference library, or return None if it is not installed.

    torch is told to use one thread, as NumPy's BLAS is (the scripts set the environment
    variables before anything is imported). Tests replace this function to run the cases
    without the references.
    """
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    if name == "torch":
        module.set_num_threads(1)
    return module


def row(
    bench: str,
    group: str,
    case: str,
    *,
    unit: str,
    ours: float | None,
    reference: float | None = None,
    compare: bool = True,
    target: float | None = None,
    limit: float | None = None,
    case_zh: str | None = None,
    note: str = "",
    note_zh: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One measurement as a JSON-ready dict (keys :data:`ROW_KEYS`).

    ``ratio`` is ``reference / ours`` when both are known and ``compare`` is true (set it
    false when ``reference`` is a published number rather than a rival implementation).
    ``passed`` is None when the row has no target and no limit, or when a value it needs is
    missing (the row is skipped, and ``note`` says why); otherwise every condition must hold.
    ``case_zh`` and ``note_zh`` are the Chinese labels of the site's zh page (default: the
    English ones, for labels that are only numbers and symbols).
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
    ours = None if ours is None else float(ours)
    reference = None if reference is None else float(reference)
    ratio = reference / ours if compare and ours is not None and reference is not None and ours > 0 else None
    checks = []
    if target is not None:
        checks.append(None if ratio is None else ratio >= target)
    if limit is not None:
        checks.append(None if ours is None else ours <= limit)
    passed = None if not checks or None in checks else all(checks)
    return {
        "bench": bench,
        "group": group,
        "case": case,
        "case_zh": case if case_zh is None else case_zh,
        "unit": unit,
        "ours": ours,
        "reference": reference,
        "ratio": ratio,
        "target": target,
        "limit": limit,
        "passed": passed,
        "note": note,
        "note_zh": note if note_zh is None else note_zh,
        "extra": extra or {},
    }


def status(r: dict[str, Any]) -> str:
    """PASS / FAIL / SKIP (a target or limit that could not be checked) / '-' (nothing to check)."""
    if r["passed"] is None:
        return "SKIP" if (r["target"] is not None or r["limit"] is not None) else "-"
    return "PASS" if r["passed"] else "FAIL"


def fmt_value(x: float | None, unit: str) -> str:
    """A value in a readable unit, about 3 significant digits (the page does the same)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if unit == "s":
        for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
            if abs(x) >= scale or name == "us":
                return f"{_sig3(x / scale)} {name}"
    if unit == "B":
        for scale, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B")):
            if abs(x) >= scale or name == "B":
                return f"{_sig3(x / scale)} {name}"
    return f"{_sig3(100 * x)} %"


def fmt_target(r: dict[str, Any]) -> str:
    parts = []
    if r["target"] is not None:
        t = r["target"]
        parts.append(f">= {_sig3(t)}x" + (f" (at most {_sig3(1 / t)}x slower)" if t < 1 else ""))
    if r["limit"] is not None:
        parts.append(f"<= {fmt_value(r['limit'], r['unit'])}")
    return "; ".join(parts) or "-"


def _sig3(x: float) -> str:
    """3 significant digits, never in exponent notation, trailing zeros dropped."""
    if x == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(x))))
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{x:.0f}"


def print_rows(rows: list[dict[str, Any]]) -> None:
    """The rows as one aligned table: case, ours, reference, ratio, target, result."""
    headers = ("group", "case", "ours", "reference", "ratio", "target", "result")
    cells = [
        (
            r["group"],
            r["case"],
            fmt_value(r["ours"], r["unit"]),
            fmt_value(r["reference"], r["unit"]),
            "-" if r["ratio"] is None else f"{r['ratio']:.2f}x",
            fmt_target(r),
            status(r) + (f" ({r['note']})" if r["note"] else ""),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()
    print(line)
    print("-" * len(line))
    for c in cells:
        print("  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip())


def finish(rows: list[dict[str, Any]], quick: bool) -> int:
    """Print the PASS/FAIL count; the exit status is 1 if a full-size run missed a target.

    Quick sizes are dominated by fixed overheads, so a quick run only shows that every case
    runs and agrees with its baseline, and always exits 0.
    """
    counts = {s: sum(status(r) == s for r in rows) for s in ("PASS", "FAIL", "SKIP")}
    print(f"\n{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped (of {len(rows)} rows)")
    if quick:
        print("(--quick: the targets are set for the full sizes; a quick run always exits 0)")
        return 0
    return 1 if counts["FAIL"] else 0


def select(sections: Any, known: tuple[str, ...]) -> tuple[str, ...]:
    """The sections to run, in the script's order; all of them when ``sections`` is None."""
    if sections is None:
        return known
    if isinstance(sections, str):
        sections = (sections,)
    unknown = sorted(set(sections) - set(known))
    if unknown:
        raise ValueError(f"sections must be among {known}, got unknown {unknown}")
    return tuple(s for s in known if s in sections)
