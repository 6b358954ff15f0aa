"""Every lesson is downloadable as a notebook from its page, in its language, built from the
same Markdown; each notebook is valid, its code cells are exactly the page's Python blocks
(which Sybil runs one by one, each in a fresh namespace), and they also run in order in one
namespace, as in Jupyter.

That last run is done for the Chinese notebooks only: the English ones hold the same code
(test_site.py's parity test compares every block, comments and strings aside), so running
them too would only run the same statements again."""

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


def _runnable_blocks(lang: str, lesson: str) -> list[str]:
    """The code of the lesson's Python fences that are not marked ``<!-- skip: next ... -->``."""
    text = (DOCS / lang / "lessons" / f"{lesson}.md").read_text(encoding="utf-8")
    marker_ends = [m.end() for m in SKIP_MARKER.finditer(text)]

    def skipped(start: int) -> bool:
        return any(end <= start and not text[end:start].strip() for end in marker_ends)

    return [f.body for f in scan_fences(text) if f.language == "python" and not skipped(f.start)]


@pytest.mark.parametrize("lang,lesson", CASES)
def test_lesson_page_links_its_notebook(site, lang, lesson):
    html = (_page_dir(site, lang, lesson) / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+\.ipynb)" download>', html)
    assert links == [f"{lesson}.ipynb"], links
    assert (_page_dir(site, lang, lesson) / f"{lesson}.ipynb").is_file()


@pytest.mark.parametrize("lang,lesson", CASES)
def test_notebook_is_valid_and_holds_the_pages_code(site, lang, lesson):
    nb = nbformat.read(str(_page_dir(site, lang, lesson) / f"{lesson}.ipynb"), as_version=4)
    nbformat.validate(nb)
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    blocks = _runnable_blocks(lang, lesson)
    assert len(code) == len(blocks)
    # Doctest blocks become plain code (their >>> prompts and outputs dropped); the others are
    # the page's block as it is.
    for i, (source, block) in enumerate(zip(code, blocks)):
        if not block.lstrip().startswith(">>>"):
            assert source.strip() == block.strip(), f"{lang}/{lesson}.ipynb cell {i} is not the page's block"
    assert not any(">>>" in source for source in code)
    prose = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    assert "<!-- figure:" not in prose  # figures are attached images, not directives
    if lang != "zh":
        return  # the same code as the zh notebook, which runs below (see the module docstring)
    assert re.search(r"[\u4e00-\u9fff]", prose)
    namespace: dict = {"__name__": "__main__"}  # one kernel, cells in order, as Jupyter runs them
    for i, source in enumerate(code):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(source, f"{lesson}.ipynb[cell {i}]", "exec"), namespace)
