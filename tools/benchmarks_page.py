"""The tables of the site's benchmarks page, rendered from ``docs/assets/benchmarks/results.json``.

``python benchmarks/report.py`` runs the benchmark scripts and writes that file (with the
machine it ran on); this module only reads it, so building the site never runs a benchmark.
The page ``docs/<lang>/benchmarks.md`` holds the prose and the figures, and the line
``<!-- benchmarks: tables -->`` where :func:`insert_tables` (called by the build hook) puts
the Markdown of :func:`render_benchmarks`: the machine and versions, the command that
reproduces the numbers, and one table per group of rows, in the page's language.

Preview from the repository root: ``python tools/benchmarks_page.py en``.
"""

from __future__ import annotations

import datetime
import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = ROOT / "docs" / "assets" / "benchmarks" / "results.json"
MARKER = "<!-- benchmarks: tables -->"
LANGS = ("zh", "en")
SCHEMA = 1
COMMAND = "python benchmarks/report.py"

TOP_KEYS = ("schema", "command", "quick", "date", "machine", "groups", "rows")
ROW_KEYS = ("bench", "group", "case", "case_zh", "unit", "ours", "reference", "ratio", "target", "limit", "passed", "note")
GROUP_KEYS = ("id", "en", "zh", "baseline_en", "baseline_zh")
UNITS = ("s", "B", "fraction")

# Every label of the page, in both languages.
TEXT = {
    "machine": ("测量环境", "Machine"),
    "item": ("项目", "Item"),
    "value": ("值", "Value"),
    "date": ("测量时间", "Measured"),
    "command": ("命令", "Command"),
    "duration": ("耗时", "Duration"),
    "cpu": ("CPU", "CPU"),
    "cores": ("逻辑核心", "Logical cores"),
    "memory": ("内存", "Memory"),
    "os": ("操作系统", "OS"),
    "load": ("平均负载（1 / 5 / 15 分钟）", "Load average (1 / 5 / 15 min)"),
    "before_after": ("开始前 {}，结束后 {}", "before {}, after {}"),
    "python": ("Python", "Python"),
    "numpy": ("NumPy（BLAS）", "NumPy (BLAS)"),
    "torch": ("PyTorch", "PyTorch"),
    "transformers": ("transformers", "transformers"),
    "threads": ("线程设置", "Threads"),
    "llmfund": ("llmfund", "llmfund"),
    "not_installed": ("未安装", "not installed"),
    "usable": ("{} 个（可用 {} 个）", "{} ({} usable)"),
    "reproduce": ("复现", "Reproduce"),
    "reproduce_text": (
        "在仓库根目录运行下面的命令（约需几分钟；`--quick` 只用小尺寸做冒烟测试）。它会重写 "
        "`docs/assets/benchmarks/` 下的 `results.json` 和图，本页就由它们生成：",
        "From the repository root (it takes a few minutes; `--quick` runs small sizes as a smoke "
        "test). It rewrites `results.json` and the figures in `docs/assets/benchmarks/`, from which "
        "this page is built:",
    ),
    "results": ("结果", "Results"),
    "ratio_text": (
        "每一行都在同一次运行、同一台机器、单线程下比较 llmfund 与基线。倍数 = 基线 / llmfund："
        "大于 1 表示 llmfund 更快（时间）、更省（字节）或更准（误差）。目标是对倍数的下限，"
        "或对 llmfund 数值的上限。",
        "Every row compares llmfund with a baseline in the same run, on the same machine, on one "
        "thread. Ratio = baseline / llmfund: above 1 means llmfund is faster (time), smaller "
        "(bytes) or more accurate (error). A target is a minimum for the ratio, or a maximum for "
        "llmfund's own number.",
    ),
    "summary": ("共 {rows} 行：{passed} 行达标，{failed} 行未达标，{skipped} 行跳过。",
                "{rows} rows: {passed} met their target, {failed} missed it, {skipped} skipped."),
    "quick_warning": (
        '!!! warning "这是 `--quick` 的结果"\n\n'
        "    这些数字来自小尺寸的冒烟测试，固定开销占主导，目标是按完整尺寸设定的，这里不必达到。"
        "发布前请运行完整的 `python benchmarks/report.py`。",
        '!!! warning "These are `--quick` results"\n\n'
        "    They come from a smoke test at small sizes, where fixed overheads dominate; the targets "
        "are set for the full sizes and need not be met here. Publish the numbers of a full "
        "`python benchmarks/report.py`.",
    ),
    "partial_warning": (
        '!!! warning "只运行了部分基准"\n\n    这次运行只包含：{}。',
        '!!! warning "Only part of the benchmarks ran"\n\n    This run covers only: {}.',
    ),
    "case": ("用例", "Case"),
    "ours": ("llmfund", "llmfund"),
    "ratio_s": ("加速比", "Speedup"),
    "ratio_B": ("内存之比", "Smaller by"),
    "ratio_fraction": ("误差之比", "Error ratio"),
    "target": ("目标", "Target"),
    "met": ("达标？", "Met?"),
    "yes": ("是", "yes"),
    "no": ("**否**", "**no**"),
    "skipped": ("跳过", "skipped"),
    "slower": ("（最多慢 {} 倍）", " (at most {}× slower)"),
}


def _t(key: str, lang: str) -> str:
    zh, en = TEXT[key]
    return zh if lang == "zh" else en


# --- loading ---------------------------------------------------------------------------------


def load_results(results_path: str | Path = DEFAULT_RESULTS) -> dict[str, Any]:
    """Read results.json and check the parts the page needs (ValueError says what is wrong)."""
    path = Path(results_path)
    if not path.is_file():
        raise FileNotFoundError(f"results_path={str(path)!r} does not exist: run `{COMMAND}` to create it")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    missing = [k for k in TOP_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    if data["schema"] != SCHEMA:
        raise ValueError(f"{path}: schema={data['schema']!r}, this page renders schema {SCHEMA}")
    group_ids = set()
    for i, g in enumerate(data["groups"]):
        lacking = [k for k in GROUP_KEYS if k not in g]
        if lacking:
            raise ValueError(f"{path}: groups[{i}] lacks {lacking}")
        group_ids.add(g["id"])
    for i, r in enumerate(data["rows"]):
        lacking = [k for k in ROW_KEYS if k not in r]
        if lacking:
            raise ValueError(f"{path}: rows[{i}] lacks {lacking}")
        if r["group"] not in group_ids:
            raise ValueError(f"{path}: rows[{i}] has group={r['group']!r}, which no entry of 'groups' declares")
        if r["unit"] not in UNITS:
            raise ValueError(f"{path}: rows[{i}] has unit={r['unit']!r}; expected one of {UNITS}")
    return data


# --- formatting ------------------------------------------------------------------------------


def _sig3(x: float) -> str:
    """About 3 significant digits, no exponent: 0.0123, 1.23, 12.3, 123, 1234."""
    if x == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(x))))
    text = f"{x:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_value(x: float | None, unit: str) -> str:
    """Seconds in µs / ms / s, bytes in KiB / MiB / GiB (2^10, 2^20, 2^30), fractions in %."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if unit == "s":
        for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
            if abs(x) >= scale or name == "µs":
                return f"{_sig3(x / scale)} {name}"
    if unit == "B":
        for scale, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B")):
            if abs(x) >= scale or name == "B":
                return f"{_sig3(x / scale)} {name}"
    if unit == "fraction":
        return f"{_sig3(100 * x)} %"
    raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")


def format_ratio(x: float | None) -> str:
    """2 decimals below 10 (0.61×, 2.00×), then 3 significant digits (27.0×, 115×)."""
    if x is None:
        return "—"
    return f"{x:.2f}×" if x < 10 else f"{x:.1f}×" if x < 100 else f"{x:.0f}×"


def format_target(r: dict[str, Any], lang: str) -> str:
    parts = []
    if r["target"] is not None:
        text = f"≥ {_sig3(r['target'])}×"
        if r["target"] < 1 and r["unit"] == "s":
            text += _t("slower", lang).format(_sig3(1 / r["target"]))
        parts.append(text)
    if r["limit"] is not None:
        parts.append(f"≤ {format_value(r['limit'], r['unit'])}")
    return ("；" if lang == "zh" else "; ").join(parts) or "—"


def format_met(r: dict[str, Any], lang: str) -> str:
    if r["target"] is None and r["limit"] is None:
        return "—"
    if r["passed"] is None:
        return _t("skipped", lang)
    return _t("yes" if r["passed"] else "no", lang)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[str]], align: list[str]) -> list[str]:
    lines = ["| " + " | ".join(map(_cell, headers)) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    return lines


def _duration(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    if lang == "zh":
        return f"{minutes} 分 {secs} 秒" if minutes else f"{secs} 秒"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _date(iso: str) -> str:
    try:
        when = datetime.datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)
    if when.tzinfo is not None:
        when = when.astimezone(datetime.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _load(load: Any) -> str:
    return "—" if not load else " / ".join(f"{x:.2f}" for x in load)


# --- the page --------------------------------------------------------------------------------


def machine_table(data: dict[str, Any], lang: str) -> list[str]:
    m = data["machine"]
    none = _t("not_installed", lang)
    blas = m.get("blas") or {}
    blas_text = " ".join(str(blas[k]) for k in ("name", "version") if blas.get(k)) or "—"
    cores = m.get("logical_cores")
    if cores is not None and m.get("usable_cores") not in (None, cores):
        cores = _t("usable", lang).format(cores, m["usable_cores"])
    threads = m.get("threads") or {}
    thread_text = ", ".join(f"`{k}={v}`" for k, v in threads.items() if v is not None) or "—"
    load = data.get("load_average") or {}
    llmfund = m.get("llmfund") or "—"
    if m.get("git"):
        llmfund += f" (git `{m['git']}`)"
    items = [
        ("date", _date(data["date"])),
        ("command", f"`{data['command']}`"),
        ("duration", _duration(data.get("duration_s"), lang)),
        ("cpu", m.get("cpu") or "—"),
        ("cores", cores if cores is not None else "—"),
        ("memory", f"{m['memory_gib']} GiB" if m.get("memory_gib") else "—"),
        ("os", m.get("platform") or "—"),
        ("load", _t("before_after", lang).format(_load(load.get("before")), _load(load.get("after")))),
        ("python", m.get("python") or "—"),
        ("numpy", f"{m.get('numpy') or '—'}" + (f"（{blas_text}）" if lang == "zh" else f" ({blas_text})")),
        ("torch", m.get("torch") or none),
        ("transformers", m.get("transformers") or none),
        ("threads", thread_text),
        ("llmfund", llmfund),
    ]
    return _table([_t("item", lang), _t("value", lang)], [[_t(k, lang), v] for k, v in items], ["---", "---"])


def group_table(group: dict[str, Any], rows: list[dict[str, Any]], lang: str) -> list[str]:
    """One group's rows; columns that are empty in every row (no baseline, no target) are left out."""
    zh = lang == "zh"
    units = {r["unit"] for r in rows}
    ratio_header = _t(f"ratio_{rows[0]['unit']}", lang) if len(units) == 1 else _t("ratio_s", lang)
    baseline = group["baseline_zh" if zh else "baseline_en"]
    columns = [
        (_t("case", lang), "---", lambda r: (r["case_zh"] if zh else r["case"])
         + (f"（{r.get('note_zh') or r['note']}）" if zh and r["note"] else f" ({r['note']})" if r["note"] else "")),
        (_t("ours", lang), "--:", lambda r: format_value(r["ours"], r["unit"])),
        (baseline, "--:", lambda r: format_value(r["reference"], r["unit"])),
        (ratio_header, "--:", lambda r: format_ratio(r["ratio"])),
        (_t("target", lang), "---", lambda r: format_target(r, lang)),
        (_t("met", lang), ":-:", lambda r: format_met(r, lang)),
    ]  # fmt: skip
    keep = [
        True,
        True,
        any(r["reference"] is not None for r in rows) or baseline not in ("", "-"),
        any(r["ratio"] is not None for r in rows),
        any(r["target"] is not None or r["limit"] is not None for r in rows),
        any(r["target"] is not None or r["limit"] is not None for r in rows),
    ]
    columns = [c for c, k in zip(columns, keep) if k]
    return _table([c[0] for c in columns], [[c[2](r) for c in columns] for r in rows], [c[1] for c in columns])


def render_benchmarks(lang: str, results_path: str | Path = DEFAULT_RESULTS) -> str:
    """The Markdown of the benchmarks page's generated part, in ``lang`` ("zh" or "en").

    Raises
    ------
    ValueError
        If ``lang`` is not "zh" or "en", or the results file does not have the expected schema.
    FileNotFoundError
        If the results file does not exist (the message gives the command that creates it).
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    data = load_results(results_path)
    out: list[str] = []
    if data["quick"]:
        out += [_t("quick_warning", lang), ""]
    parts = data.get("parts")
    if parts and any(name not in parts for name in ("attention", "sampling_ppl", "serving", "kv_variants", "decode_steps")):
        out += [_t("partial_warning", lang).format(", ".join(f"`{p}`" for p in parts)), ""]
    out += [f"## {_t('machine', lang)}", "", *machine_table(data, lang), ""]
    out += [f"## {_t('reproduce', lang)}", "", _t("reproduce_text", lang), "", "```bash", COMMAND, "```", ""]
    out += [f"## {_t('results', lang)}", "", _t("ratio_text", lang), ""]
    rows = data["rows"]
    counts = dict(
        rows=len(rows),
        passed=sum(r["passed"] is True for r in rows),
        failed=sum(r["passed"] is False for r in rows),
        skipped=sum(r["passed"] is None and (r["target"] is not None or r["limit"] is not None) for r in rows),
    )
    out += [_t("summary", lang).format(**counts), ""]
    for group in data["groups"]:
        members = [r for r in rows if r["group"] == group["id"]]
        if not members:
            continue
        out += [f"### {group['zh' if lang == 'zh' else 'en']}", "", *group_table(group, members, lang), ""]
    return "\n".join(out).rstrip() + "\n"


def insert_tables(markdown: str, lang: str, results_path: str | Path = DEFAULT_RESULTS) -> str:
    """Replace the page's ``<!-- benchmarks: tables -->`` line with :func:`render_benchmarks`."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render_benchmarks(lang, results_path).rstrip("\n"), 1)


if __name__ == "__main__":
    sys.stdout.write(render_benchmarks(sys.argv[1] if len(sys.argv) > 1 else "en", *sys.argv[2:3]))
