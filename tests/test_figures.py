"""The course's figures: drawn from llmfund's code, deterministic, labelled in both languages,
and each placed in its lesson in both languages.

The site build draws every figure (tools/site_hooks.py, which also fails the strict build on a
glyph missing from the fonts); here each figure is built without rendering to check its
labels, and one is rendered again to check that another process draws the same bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the figures need matplotlib (the docs extra)")

from llmfund.figures import LANGS, REGISTRY, build_all  # noqa: E402
from llmfund.figures._base import draw, render  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"
NAMES = sorted(REGISTRY)
CJK = re.compile(r"[\u4e00-\u9fff]")


def _texts(fig) -> list[str]:
    out = []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    return [t for t in out if t]


@pytest.mark.parametrize("name", NAMES)
def test_figure_is_labelled_in_its_language(name):
    for lang in LANGS:
        fig = draw(name, lang)
        assert fig.axes, name
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            assert ax.get_xlabel() or ax.get_ylabel() or ax.get_title(), f"{name} ({lang}): an unlabelled axis"
            assert ax.has_data() or ax.images, f"{name} ({lang}): an empty axis"
        texts = " ".join(_texts(fig))
        if lang == "zh":
            assert CJK.search(texts), f"{name}: the Chinese figure has no Chinese label"
        else:
            assert not CJK.search(texts), f"{name}: the English figure has a Chinese label: {texts}"


def test_the_build_drew_every_figure_in_both_languages(site):
    figures = DOCS / "assets" / "figures"
    for name in NAMES:
        for lang in LANGS:
            svg = (figures / f"{name}.{lang}.svg").read_bytes()
            assert b"<svg" in svg and b"<dc:date>" not in svg, f"{name}.{lang}.svg"
    assert (site / "assets" / "figures" / "rope-rotation.zh.svg").is_file()


def test_another_process_draws_the_same_bytes(site):
    # ``site`` is the strict build, whose hook drew docs/assets/figures/ in another process:
    # drawing again here gives the same bytes (no dates, stable ids), so figures change in
    # git-ignored files and in the site only when the code changes.
    for lang in LANGS:
        _, svg = render("attention-heatmap", lang)
        assert svg == (DOCS / "assets" / "figures" / f"attention-heatmap.{lang}.svg").read_bytes(), lang


@pytest.mark.parametrize("name", NAMES)
def test_alt_text_in_both_languages(name):
    alt = REGISTRY[name].alt
    assert CJK.search(alt["zh"]) and len(alt["zh"]) > 10
    assert not CJK.search(alt["en"]) and len(alt["en"].split()) > 5


@pytest.mark.parametrize("name", NAMES)
def test_figure_is_placed_in_its_lesson_in_both_languages(name):
    lesson = REGISTRY[name].lesson
    for lang in LANGS:
        text = (DOCS / lang / "lessons" / f"{lesson}.md").read_text(encoding="utf-8")
        assert f"<!-- figure: {name} -->" in text, f"{name} is not in docs/{lang}/lessons/{lesson}.md"


def test_every_figure_directive_names_a_figure():
    used = set()
    for path in DOCS.rglob("*.md"):
        used |= set(re.findall(r"<!--\s*figure:\s*([\w-]+)\s*-->", path.read_text(encoding="utf-8")))
    assert used <= set(REGISTRY), used - set(REGISTRY)


def test_build_all_writes_only_when_something_changed(tmp_path, monkeypatch):
    import llmfund.figures._base as base

    monkeypatch.setattr(base, "REGISTRY", {"rope-rotation": REGISTRY["rope-rotation"]})
    written = build_all(tmp_path)
    assert sorted(p.name for p in written) == ["rope-rotation.en.svg", "rope-rotation.zh.svg"]
    assert build_all(tmp_path) == []  # same source: nothing drawn, nothing written
    (tmp_path / "rope-rotation.en.svg").unlink()
    assert [p.name for p in build_all(tmp_path)] == ["rope-rotation.en.svg"]  # a missing file is redrawn
    (tmp_path / "rope-rotation.zh.svg").write_bytes(b"stale")
    assert [p.name for p in build_all(tmp_path, force=True)] == ["rope-rotation.zh.svg"]  # only changed bytes


def test_the_build_warns_about_a_glyph_no_font_has(tmp_path, monkeypatch, caplog):
    """The strict build fails on a label the fonts cannot draw (it would show as a box)."""
    import importlib.util
    import logging

    import llmfund.figures._base as base
    from llmfund.figures._base import new_figure

    def boxes(lang):
        fig, ax = new_figure()
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel("\U0001f600")  # an emoji: in neither DejaVu Sans nor Noto Sans CJK
        return fig

    spec = importlib.util.spec_from_file_location("site_hooks_under_test", DOCS.parent / "tools" / "site_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    monkeypatch.setattr(base, "REGISTRY", {"boxes": base.FigureSpec("boxes", "none", {}, boxes)})
    monkeypatch.setattr(hooks, "_has_cjk_font", lambda: True)
    (tmp_path / "assets").mkdir()
    with caplog.at_level(logging.INFO, logger="mkdocs.hooks.llmfund"):
        hooks.on_pre_build({"docs_dir": str(tmp_path)})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("missing glyphs" in w and "128512" in w for w in warnings), caplog.text
