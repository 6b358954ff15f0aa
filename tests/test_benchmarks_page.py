"""The benchmarks page: results.json (written by benchmarks/report.py) and its rendering.

The committed results must have the schema the page renders and agree with the scripts that
produce them; ``render_benchmarks`` must show every row, in both languages, with the machine
it was measured on; and each script's ``run`` must work (one small section each, without the
optional torch / transformers references, so this file stays fast).
"""

from __future__ import annotations

import datetime
import importlib
import importlib.util
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
RESULTS = ROOT / "docs" / "assets" / "benchmarks" / "results.json"
SCRIPTS = ("attention", "sampling_ppl", "serving", "kv_variants")
# For each script, a section that runs in a fraction of a second at --quick sizes.
SMALL_SECTION = {"attention": "kv_decode", "sampling_ppl": "nll", "serving": "memory", "kv_variants": "banded"}


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


page = _load(ROOT / "tools" / "benchmarks_page.py", "benchmarks_page")


@pytest.fixture(scope="module")
def bench():
    """benchlib and the four scripts, imported without leaving their thread settings behind."""
    saved = dict(os.environ)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        lib = importlib.import_module("benchlib")
        scripts = {name: importlib.import_module(f"bench_{name}") for name in SCRIPTS}
    finally:
        sys.path.remove(str(BENCHMARKS))
        os.environ.clear()
        os.environ.update(saved)
    return lib, scripts


@pytest.fixture(scope="module")
def results():
    return json.loads(RESULTS.read_text(encoding="utf-8"))


# --- the committed results -------------------------------------------------------------------


def test_results_schema(results):
    assert results["schema"] == page.SCHEMA
    assert results["quick"] is False, "commit the results of a full run, not --quick"
    assert results["command"].startswith("python benchmarks/report.py")
    when = datetime.datetime.fromisoformat(results["date"])
    assert when.utcoffset() == datetime.timedelta(0), "the date is in UTC"
    assert results["duration_s"] > 0
    for moment in ("before", "after"):
        load = results["load_average"][moment]
        assert load is None or (len(load) == 3 and all(x >= 0 for x in load))
    m = results["machine"]
    for key in ("platform", "cpu", "logical_cores", "python", "numpy", "blas", "torch", "transformers", "threads"):
        assert key in m, key
    assert m["logical_cores"] >= 1 and m["blas"].get("name")
    assert m["threads"]["OPENBLAS_NUM_THREADS"] == m["threads"]["OMP_NUM_THREADS"] == "1"

    page.load_results(RESULTS)  # the page's own checks
    ids = [g["id"] for g in results["groups"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {r["group"] for r in results["rows"]}, "every group has rows, every row a group"
    for r in results["rows"]:
        assert set(r) >= set(page.ROW_KEYS), r
        if r["ratio"] is not None:  # the one direction of every script: reference / ours
            assert math.isclose(r["ratio"], r["reference"] / r["ours"], rel_tol=2e-3), r
        checks = []
        if r["target"] is not None and r["ratio"] is not None:
            checks.append(r["ratio"] >= r["target"] * (1 - 1e-3))
        if r["limit"] is not None and r["ours"] is not None:
            checks.append(r["ours"] <= r["limit"])
        if checks and r["passed"] is not None:
            assert r["passed"] == all(checks), r


def test_results_match_the_scripts(results, bench):
    """Every script ran in the committed run, with the tables it declares today."""
    _, scripts = bench
    declared = [gid for name in SCRIPTS for gid in scripts[name].GROUPS]
    assert [g["id"] for g in results["groups"]] == declared, "re-run python benchmarks/report.py"
    for g in results["groups"]:
        module = next(s for s in scripts.values() if g["id"] in s.GROUPS)
        assert g["bench"] == module.BENCH
        assert {k: g[k] for k in page.GROUP_KEYS if k != "id"} == module.GROUPS[g["id"]]


def test_decode_step_figure_data_and_files(results):
    data = results["figures"]["decode_steps"]
    n = len(data["context"])
    assert n >= 4 and len(data["recompute_s"]) == len(data["cached_s"]) == n
    assert data["context"] == sorted(data["context"])
    assert all(x > 0 for x in data["recompute_s"] + data["cached_s"])
    # What the figure is for: at the longest context the cache wins clearly.
    assert data["recompute_s"][-1] > 5 * data["cached_s"][-1]
    for lang in page.LANGS:
        svg = RESULTS.parent / f"decode-step-time.{lang}.svg"
        text = svg.read_text(encoding="utf-8")
        assert text.lstrip().startswith("<?xml") and "<svg" in text
        assert "<dc:date>" not in text, "no date in the SVG: re-runs differ only by the numbers"
        assert svg.stat().st_size < 150_000, "keep committed figures small"
    assert RESULTS.stat().st_size < 100_000


# --- rendering -------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", page.LANGS)
def test_render_shows_every_row_and_the_machine(results, lang):
    md = page.render_benchmarks(lang, RESULTS)
    zh = lang == "zh"
    for r in results["rows"]:
        assert (r["case_zh"] if zh else r["case"]) in md, r["case"]
        assert page.format_value(r["ours"], r["unit"]) in md
        if r["ratio"] is not None:
            assert page.format_ratio(r["ratio"]) in md
    for g in results["groups"]:
        assert f"### {g[lang]}" in md
    m = results["machine"]
    for fact in (m["cpu"], m["numpy"], m["python"], m["blas"]["name"], m["platform"], results["command"]):
        assert str(fact) in md, fact
    assert "```bash\npython benchmarks/report.py\n```" in md
    assert "None" not in md and "nan" not in md.lower()
    assert ("达标？" if zh else "Met?") in md
    if zh:  # the labels are in the page's language
        assert "测量环境" in md and "Machine" not in md
    else:
        assert "Machine" in md and not re.search(r"[\u4e00-\u9fff]", md)
    _assert_tables_well_formed(md)


def _assert_tables_well_formed(md: str) -> None:
    cells = lambda line: len(re.split(r"(?<!\\)\|", line)) - 2  # noqa: E731
    tables = re.findall(r"(?:^\|.*\|\n)+", md, flags=re.MULTILINE)
    assert tables
    for table in tables:
        lines = table.strip("\n").split("\n")
        assert re.fullmatch(r"\|(:?-+:?\|)+", lines[1]), lines[1]
        assert len({cells(line) for line in lines}) == 1, table


def test_formats():
    assert page.format_value(1.5e-4, "s") == "150 µs"
    assert page.format_value(0.01234, "s") == "12.3 ms"
    assert page.format_value(2.5, "s") == "2.5 s"
    assert page.format_value(3 * 2**20, "B") == "3 MiB"
    assert page.format_value(806 * 2**10, "B") == "806 KiB"
    assert page.format_value(0.204, "fraction") == "20.4 %"
    assert page.format_value(None, "s") == "—"
    assert [page.format_ratio(x) for x in (0.612, 2.0, 27.04, 115.4)] == ["0.61×", "2.00×", "27.0×", "115×"]
    r = dict(target=0.4, limit=None, unit="s")
    assert page.format_target(r, "en") == "≥ 0.4× (at most 2.5× slower)"
    assert page.format_target(r, "zh") == "≥ 0.4×（最多慢 2.5 倍）"
    assert page.format_target(dict(target=None, limit=5.0, unit="s"), "en") == "≤ 5 s"
    assert page.format_target(dict(target=None, limit=0.02, unit="fraction"), "en") == "≤ 2 %"
    with pytest.raises(ValueError, match="unit"):
        page.format_value(1.0, "parsecs")


@given(st.floats(1e-7, 1e4), st.sampled_from(["s", "B", "fraction"]))
def test_formatted_values_read_back_within_half_a_percent(x, unit):
    """About 3 significant digits in a unit that keeps the number readable, never an exponent."""
    if unit == "B":
        x = float(round(x * 2**20)) or 1.0
    if unit == "fraction":
        x = x / 1e4  # a share or a relative error, at most 1
    number, name = page.format_value(x, unit).split(" ")
    integer_digits = len(number.split(".")[0].lstrip("0"))
    assert "e" not in number and len(number.replace(".", "").lstrip("0")) <= max(3, integer_digits)
    scale = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "%": 0.01}[name]
    assert math.isclose(float(number) * scale, x, rel_tol=5e-3)
    assert float(number) >= 1 or name in ("µs", "B", "%")  # the largest unit that keeps it >= 1


def _synthetic(bench, tmp_path, *, quick=False, rows=None):
    """A small results.json built with the scripts' own row() (skips, limits, a failure)."""
    lib, _ = bench
    row = lib.row
    if rows is None:
        rows = [
            row("t", "g1", "fast | case", unit="s", ours=1e-3, reference=3e-3, target=2.0),
            row("t", "g1", "slow case", case_zh="慢用例", unit="s", ours=1e-3, reference=1e-3, target=2.0),
            row("t", "g1", "no torch", unit="s", ours=1e-3, target=0.4, note="torch not installed", note_zh="未安装 torch"),
            row("t", "g2", "simulation", unit="s", ours=0.5, limit=5.0),
            row("t", "g2", "error", unit="fraction", ours=0.01),
        ]  # fmt: skip
    data = {
        "schema": page.SCHEMA, "command": "python benchmarks/report.py", "quick": quick,
        "date": "2026-01-02T03:04:05+00:00", "duration_s": 61.0, "load_average": {"before": [1, 2, 3], "after": None},
        "machine": {"cpu": "Test CPU", "numpy": "9.9", "blas": {"name": "blas", "version": "1"}, "threads": {"X": "1"}},
        "groups": [
            {"id": "g1", "bench": "t", "en": "Group one", "zh": "第一组", "baseline_en": "base", "baseline_zh": "基线"},
            {"id": "g2", "bench": "t", "en": "Group two", "zh": "第二组", "baseline_en": "-", "baseline_zh": "-"},
        ],
        "rows": rows,
    }  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_render_synthetic_results(bench, tmp_path):
    path = _synthetic(bench, tmp_path)
    en, zh = page.render_benchmarks("en", path), page.render_benchmarks("zh", path)
    assert "fast \\| case" in en  # a pipe in a label does not break the table
    assert "| slow case | 1 ms | 1 ms | 1.00× | ≥ 2× | **no** |" in en
    assert "| 慢用例 | 1 ms | 1 ms | 1.00× | ≥ 2× | **否** |" in zh
    assert "no torch (torch not installed)" in en and "skipped" in en
    assert "未安装 torch" in zh and "跳过" in zh
    assert "1 min 1 s" in en and "1 分 1 秒" in zh
    # Group two has no baseline and no ratio: those columns are left out.
    assert "| Case | llmfund | Target | Met? |" in en
    assert "| simulation | 500 ms | ≤ 5 s | yes |" in en
    assert "| error | 1 % | — | — |" in en
    assert "5 rows: 2 met their target, 1 missed it, 1 skipped." in en
    assert "--quick" not in en.split("## Machine")[0]
    quick = page.render_benchmarks("en", _synthetic(bench, tmp_path, quick=True))
    assert quick.startswith('!!! warning "These are `--quick` results"')


def test_load_results_errors(bench, tmp_path):
    with pytest.raises(FileNotFoundError, match="python benchmarks/report.py"):
        page.load_results(tmp_path / "missing.json")
    path = _synthetic(bench, tmp_path)
    with pytest.raises(ValueError, match="lang"):
        page.render_benchmarks("fr", path)
    data = json.loads(path.read_text(encoding="utf-8"))
    for change, message in (
        (lambda d: d.update(schema=2), "schema"),
        (lambda d: d.pop("machine"), "missing keys"),
        (lambda d: d["rows"][0].update(group="nope"), "group='nope'"),
        (lambda d: d["rows"][0].pop("ratio"), "lacks"),
        (lambda d: d["rows"][0].update(unit="h"), "unit='h'"),
    ):
        broken = json.loads(json.dumps(data))
        change(broken)
        path.write_text(json.dumps(broken), encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            page.load_results(path)


@pytest.mark.parametrize("lang", page.LANGS)
def test_pages_have_the_marker_and_the_figure(lang):
    source = (ROOT / "docs" / lang / "benchmarks.md").read_text(encoding="utf-8")
    assert source.count(page.MARKER) == 1
    images = re.findall(r"!\[([^\]]+)\]\(([^)]+)\)", source)
    assert [target for _, target in images] == [f"../assets/benchmarks/decode-step-time.{lang}.svg"]
    assert (ROOT / "docs" / lang / images[0][1]).resolve().is_file()
    alt = images[0][0]
    assert bool(re.search(r"[\u4e00-\u9fff]", alt)) == (lang == "zh"), "alt text in the page's language"
    filled = page.insert_tables(source, lang, RESULTS)
    assert page.MARKER not in filled and "| " in filled
    assert page.insert_tables("no marker here", lang, RESULTS) == "no marker here"


# --- the scripts -----------------------------------------------------------------------------


def test_row_direction_and_status(bench):
    lib, _ = bench
    r = lib.row("b", "g", "c", unit="s", ours=1.0, reference=4.0, target=2.0)
    assert r["ratio"] == 4.0 and r["passed"] is True and lib.status(r) == "PASS"
    r = lib.row("b", "g", "c", unit="B", ours=4.0, reference=1.0, target=1.0)
    assert r["ratio"] == 0.25 and r["passed"] is False and lib.status(r) == "FAIL"
    r = lib.row("b", "g", "c", unit="s", ours=1.0, target=1.0, note="torch not installed")
    assert r["ratio"] is None and r["passed"] is None and lib.status(r) == "SKIP"
    r = lib.row("b", "g", "c", unit="fraction", ours=0.3, reference=0.2, compare=False)
    assert r["ratio"] is None and r["passed"] is None and lib.status(r) == "-"
    r = lib.row("b", "g", "c", unit="s", ours=6.0, limit=5.0)
    assert r["passed"] is False
    assert tuple(r) == lib.ROW_KEYS
    with pytest.raises(ValueError, match="unit"):
        lib.row("b", "g", "c", unit="ms", ours=1.0)
    failed = [lib.row("b", "g", "c", unit="s", ours=1.0, reference=1.0, target=2.0)]
    assert lib.finish(failed, quick=False) == 1 and lib.finish(failed, quick=True) == 0
    with pytest.raises(ValueError, match="sections"):
        lib.select(["nope"], ("a", "b"))
    assert lib.select(["b", "a"], ("a", "b")) == ("a", "b")


def test_each_script_runs_a_small_section(bench, monkeypatch):
    lib, scripts = bench
    monkeypatch.setattr(lib, "optional", lambda name: None)  # no torch / transformers import
    started = time.perf_counter()
    for name in SCRIPTS:
        module = scripts[name]
        assert SMALL_SECTION[name] in module.SECTIONS
        rows = module.run(quick=True, sections=[SMALL_SECTION[name]])
        assert rows, name
        for r in rows:
            assert tuple(r) == lib.ROW_KEYS
            assert r["bench"] == module.BENCH and r["group"] in module.GROUPS
            assert r["ours"] is not None and r["ours"] > 0
            json.dumps(r)  # plain JSON
    # Without torch, the rows that need it are reported as skipped, not dropped.
    skipped = scripts["attention"].run(quick=True, sections=["rope"])
    assert [lib.status(r) for r in skipped] == ["SKIP"] and "not installed" in skipped[0]["note"]
    assert time.perf_counter() - started < 10  # about 1 s on a laptop; generous for loaded CI
