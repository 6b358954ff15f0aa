"""The course's figures, drawn from the package's own code (matplotlib needed: ``llmfund[figures]``).

``build_all(dir)`` writes every figure as ``<name>.<lang>.svg`` (``lang`` in ``zh``, ``en``);
``REGISTRY`` maps each name to its lesson, alt text and drawing function. The site build calls
``build_all``; a lesson places a figure with ``<!-- figure: name -->``.
"""

from __future__ import annotations

from . import attention, decoding, serving  # noqa: F401  (importing registers the figures)
from ._base import LANGS, REGISTRY, build_all, render_svg

__all__ = ["LANGS", "REGISTRY", "build_all", "render_svg"]
