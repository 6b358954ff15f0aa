"""Turn a lesson's Markdown into a Jupyter notebook, from the same text the tests run.

Prose becomes Markdown cells and every ```python block (including the folded solutions,
which sit indented inside ``??? success`` admonitions) becomes a code cell, so the notebook
runs exactly the code that Sybil checks. ``output`` fences are dropped (running the cell
produces them), ``>>>`` prompts and their expected output are stripped, a block marked
``<!-- skip: next ... -->`` stays as non-running Markdown, and ``<!-- figure: name -->``
becomes the figure itself, attached to the cell so that the notebook is self-contained.
"""

from __future__ import annotations

import base64
import pathlib
import re
import textwrap
from collections.abc import Callable, Iterator

import nbformat

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_SKIP = re.compile(r"^\s*<!--\s*skip:\s*next\b.*-->\s*$")
_FIGURE = re.compile(r"^(?P<indent>\s*)<!--\s*figure:\s*(?P<name>[\w-]+)\s*-->\s*$")


def _blocks(text: str) -> Iterator[tuple[str, str, str]]:
    """Yield ``("md", text, "")`` and ``("fence", body, info)`` pieces in document order."""
    lines = text.split("\n")
    prose: list[str] = []
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            prose.append(lines[i])
            i += 1
            continue
        indent, fence, info = m.group("indent"), m.group("fence"), m.group("info").strip()
        close = re.compile(rf"^{re.escape(indent)}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        body = textwrap.dedent("\n".join(lines[i + 1 : j]))
        if prose:
            yield "md", "\n".join(prose), ""
            prose = []
        yield "fence", body, info
        i = j + 1
    if prose:
        yield "md", "\n".join(prose), ""


def _strip_prompts(source: str) -> str:
    """Keep the code of a doctest-style block (``>>>``/``...`` lines), drop its expected output."""
    code = [line[4:] if len(line) > 3 else "" for line in source.split("\n") if line.startswith((">>>", "..."))]
    return "\n".join(code)


def lesson_to_notebook(
    text: str,
    lang: str,
    *,
    figure_svg: Callable[[str, str], tuple[str, bytes]] | None = None,
) -> nbformat.NotebookNode:
    """Build the notebook of one lesson.

    ``figure_svg(name, lang)`` returns ``(alt_text, svg_bytes)`` for a figure directive; without
    it, a figure becomes its name in italics.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    skip_next = False
    md: list[str] = []
    attachments: dict = {}

    def flush() -> None:
        nonlocal attachments
        body = "\n".join(md).strip("\n")
        if body.strip():
            cell = nbformat.v4.new_markdown_cell(body)
            if attachments:
                cell["attachments"] = attachments
            nb.cells.append(cell)
        md.clear()
        attachments = {}

    for kind, body, info in _blocks(text):
        language = info.split()[0] if info else ""
        if kind == "md":
            for line in body.split("\n"):
                if _SKIP.match(line):
                    skip_next = True
                    continue
                fig = _FIGURE.match(line)
                if fig:
                    name = fig.group("name")
                    if figure_svg is None:
                        md.append(f"*({name})*")
                    else:
                        alt, svg = figure_svg(name, lang)
                        key = f"{name}.svg"
                        attachments[key] = {"image/svg+xml": base64.b64encode(svg).decode("ascii")}
                        md.append(f"![{alt}](attachment:{key})")
                    continue
                md.append(line)
        elif language == "python" and not skip_next:
            flush()
            source = _strip_prompts(body) if body.lstrip().startswith(">>>") else body
            nb.cells.append(nbformat.v4.new_code_cell(source.strip("\n")))
        elif language == "output":
            continue
        else:
            md.append(f"```{info}\n{body}\n```")
            skip_next = False if language == "python" else skip_next
    flush()
    return nb


def write_notebook(md_path: pathlib.Path, out_path: pathlib.Path, lang: str, **kwargs) -> None:
    nb = lesson_to_notebook(md_path.read_text(encoding="utf-8"), lang, **kwargs)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out_path))
