"""Every lesson is downloadable as a notebook from its page, in its language, built from the
same Markdown; each notebook is valid and its code cells run, in order, in one namespace."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from site_helpers import DOCS, LANGUAGES, SKIP_MARKER, scan_fences

nbformat = pytest.importorskip("nbformat", reason="nbformat comes with the docs extra")

LESSONS = sorted(p.stem for p in (DOCS / "zh" / "lessons").glob("*.md"))
CASES = [(lang, lesson) for lang in LANGUAGES for lesson in LESSONS]


def _page_dir(site: Path, lang: str, lesson: str) -> Path:
    return site / ("" if lang == "zh" else "en") / "lessons" / lesson


def _runnable_fences(lang: str, lesson: str) -> int:
    """Python fences of the lesson that are not marked ``<!-- skip: next ... -->``."""
    text = (DOCS / lang / "lessons" / f"{lesson}.md").read_text(encoding="utf-8")
    marker_ends = [m.end() for m in SKIP_MARKER.finditer(text)]

    def skipped(start: int) -> bool:
        return any(end <= start and not text[end:start].strip() for end in marker_ends)

    return sum(f.language == "python" and not skipped(f.start) for f in scan_fences(text))


@pytest.mark.parametrize("lang,lesson", CASES)
def test_lesson_page_links_its_notebook(site, lang, lesson):
    html = (_page_dir(site, lang, lesson) / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+\.ipynb)" download>', html)
    assert links == [f"{lesson}.ipynb"], links
    assert (_page_dir(site, lang, lesson) / f"{lesson}.ipynb").is_file()


@pytest.mark.parametrize("lang,lesson", CASES)
def test_notebook_is_valid_and_its_code_runs(site, lang, lesson):
    nb = nbformat.read(str(_page_dir(site, lang, lesson) / f"{lesson}.ipynb"), as_version=4)
    nbformat.validate(nb)
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    assert len(code) == _runnable_fences(lang, lesson)
    assert not any(">>>" in source for source in code)
    prose = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    assert "<!-- figure:" not in prose  # figures are attached images, not directives
    if lang == "zh":
        assert re.search(r"[\u4e00-\u9fff]", prose)
    namespace: dict = {"__name__": "__main__"}  # one kernel, cells in order, as Jupyter runs them
    for i, source in enumerate(code):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(source, f"{lesson}.ipynb[cell {i}]", "exec"), namespace)
