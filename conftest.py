"""Sybil: run every docstring example in ``llmfund/`` and every Python block in ``docs/``.

The flags live here rather than inline (an inline ``# doctest:`` comment would show in the
rendered API pages): ELLIPSIS and NORMALIZE_WHITESPACE for readable output, NUMBER so that
``0.3333`` matches ``0.33333334`` the way a reader expects.
"""

from __future__ import annotations

from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

from sybil import Sybil
from sybil.evaluators.doctest import NUMBER
from sybil.parsers.markdown import ClearNamespaceParser, PythonCodeBlockParser, SkipParser
from sybil.parsers.rest import DocTestParser

FLAGS = ELLIPSIS | NORMALIZE_WHITESPACE | NUMBER

# Lessons: ```python fences (a body starting with >>> runs as a doctest), skip and
# clear-namespace comments. Collected as path="./docs", patterns=["*.md"], because a
# "docs/**/*.md" pattern silently misses sub-folders on Python 3.11.
lessons = Sybil(
    parsers=[
        PythonCodeBlockParser(doctest_optionflags=FLAGS),
        SkipParser(),
        ClearNamespaceParser(),
    ],
    path="./docs",
    patterns=["*.md"],
    name="lessons",
)

# Docstrings: the numpydoc ``Examples`` sections are plain doctests.
docstrings = Sybil(
    parsers=[DocTestParser(optionflags=FLAGS)],
    path="./llmfund",
    patterns=["*.py"],
    name="docstrings",
)

pytest_collect_file = (lessons + docstrings).pytest()
