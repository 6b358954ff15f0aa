"""Sybil: run every docstring example in ``llmfund/`` and every Python block in ``docs/``.

Lessons (``docs/**/*.md``)
    Every ```` ```python ```` block is run **in a fresh namespace**, because learners copy a
    single block into a fresh Python: a block that silently depends on the one above it is a
    bug this catches. Whatever the block prints must equal the ```` ```output ```` block that
    follows it (a block that prints with no output block after it fails too, so the page
    always shows what the code prints). Output comparison uses doctest's rules with
    ELLIPSIS, NORMALIZE_WHITESPACE and Sybil's NUMBER. A block whose body starts with ``>>>``
    runs as a doctest. ``<!-- skip: next "reason" -->`` skips the next block.

Docstrings (``llmfund/*.py``)
    The numpydoc ``Examples`` sections are doctests.

The flags live here rather than inline (an inline ``# doctest:`` comment would show in the
rendered pages).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Iterable
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

from sybil import Document, Example, Region, Sybil
from sybil.evaluators.doctest import NUMBER, OutputChecker
from sybil.parsers.abstract.doctest import DocTestStringParser
from sybil.evaluators.doctest import DocTestEvaluator
from sybil.parsers.markdown import ClearNamespaceParser, SkipParser
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer
from sybil.parsers.rest import DocTestParser

# One BLAS / OpenMP thread per process, set before NumPy or torch is imported: the tests' arrays
# are small, and the run already keeps every core busy (pytest-xdist workers, the site build,
# Chromium). Multi-threaded BLAS in each worker only made the threads spin against each other:
# it cost a fifth of the run's CPU time. (The benchmarks set their own thread counts.)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

FLAGS = ELLIPSIS | NORMALIZE_WHITESPACE | NUMBER

# Any fenced block, with its whole info string (``python``, ``output``, ``text title="x"``).
_FENCES = RawFencedCodeBlockLexer(
    info_pattern=re.compile(r"(?P<info>[^\n]*)$\n", re.MULTILINE),
    mapping={"info": "info", "source": "source"},
)


def _language(region: Region) -> str:
    info = region.lexemes["info"].strip()
    return info.split()[0].lstrip("{.").rstrip("}") if info else ""


class LessonBlockParser:
    """``python`` fences run standalone; a following ``output`` fence is their expected stdout."""

    def __init__(self, optionflags: int = FLAGS) -> None:
        self.optionflags = optionflags
        self.doctest = DocTestStringParser(DocTestEvaluator(optionflags))

    def __call__(self, document: Document) -> Iterable[Region]:
        fences = sorted(_FENCES(document), key=lambda r: r.start)
        for i, region in enumerate(fences):
            if _language(region) != "python":
                continue
            source = region.lexemes["source"]
            if source.lstrip().startswith(">>>"):
                for doctest_region in self.doctest(source, document.path):
                    doctest_region.adjust(region, source)
                    yield doctest_region
                continue
            expected = None
            if i + 1 < len(fences) and _language(fences[i + 1]) == "output":
                between = document.text[region.end : fences[i + 1].start]
                if not between.strip():
                    expected = str(fences[i + 1].lexemes["source"])
            region.parsed = source
            region.evaluator = _StandaloneBlock(expected, self.optionflags)
            yield region


class _StandaloneBlock:
    def __init__(self, expected: str | None, optionflags: int) -> None:
        self.expected = expected
        self.optionflags = optionflags

    def __call__(self, example: Example) -> str | None:
        __tracebackhide__ = True
        source = "\n" * (example.line + example.parsed.line_offset) + str(example.parsed)
        code = compile(source, example.path, "exec", dont_inherit=True)
        buffer = io.StringIO()
        namespace: dict = {"__name__": "__lesson__"}  # fresh: as a learner's new Python
        with contextlib.redirect_stdout(buffer):
            exec(code, namespace)
        got = buffer.getvalue()
        if self.expected is None:
            if got.strip():
                return (
                    "this block prints output but no ```output block follows it on the page:\n"
                    + got
                )
            return None
        checker = OutputChecker()
        if not checker.check_output(self.expected, got, self.optionflags):
            return f"printed output differs from the page's ```output block\nexpected:\n{self.expected}\ngot:\n{got}"
        return None


# Collected as path="./docs", patterns=["*.md"]: a "docs/**/*.md" pattern silently misses
# sub-folders on Python 3.11.
lessons = Sybil(
    parsers=[LessonBlockParser(), SkipParser(), ClearNamespaceParser()],
    path="./docs",
    patterns=["*.md"],
    name="lessons",
)

docstrings = Sybil(
    parsers=[DocTestParser(optionflags=FLAGS)],
    path="./llmfund",
    patterns=["*.py"],
    name="docstrings",
)

pytest_collect_file = (lessons + docstrings).pytest()
