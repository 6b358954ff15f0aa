"""The course's figures: drawn from llmfund's code, deterministic, labelled in both languages,
and each placed in its lesson in both languages."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib", reason="the figures need matplotlib (the docs extra)")
from matplotlib import font_manager  # noqa: E402

from llmfund.figures import LANGS, REGISTRY, build_all  # noqa: E402
from llmfund.figures._base import render  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"
NAMES = sorted(REGISTRY)
HAS_CJK_FONT = any("Noto Sans CJK" in f.name for f in font_manager.fontManager.ttflist)


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
def test_figure_is_labelled_in_its_language_and_drawn_the_same_as_the_site(name, site):
    # ``site`` is the strict build, whose hook drew docs/assets/figures/ in another process:
    # drawing again here must give the same bytes (determinism across runs), with every glyph.
    for lang in LANGS:
        with warnings.catch_warnings():
            if HAS_CJK_FONT:
                warnings.simplefilter("error")  # "Glyph ... missing from font" fails here
            fig, svg = render(name, lang)
        built = DOCS / "assets" / "figures" / f"{name}.{lang}.svg"
        assert svg == built.read_bytes(), f"{name} ({lang}) differs from the build's drawing"
        assert b"<svg" in svg and b"<dc:date>" not in svg
        assert fig.axes, name
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            assert ax.get_xlabel() or ax.get_ylabel() or ax.get_title(), f"{name} ({lang}): an unlabelled axis"
            assert ax.has_data() or ax.images, f"{name} ({lang}): an empty axis"
        texts = " ".join(_texts(fig))
        has_cjk = bool(re.search(r"[\u4e00-\u9fff]", texts))
        if lang == "zh":
            assert has_cjk, f"{name}: the Chinese figure has no Chinese label"
        else:
            assert not has_cjk, f"{name}: the English figure has a Chinese label: {texts}"


@pytest.mark.parametrize("name", NAMES)
def test_alt_text_in_both_languages(name):
    alt = REGISTRY[name].alt
    assert re.search(r"[\u4e00-\u9fff]", alt["zh"]) and len(alt["zh"]) > 10
    assert not re.search(r"[\u4e00-\u9fff]", alt["en"]) and len(alt["en"].split()) > 5


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
