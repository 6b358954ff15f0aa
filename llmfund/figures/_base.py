"""The figure registry, a shared style, and deterministic SVG rendering.

Every figure of the course is a function ``f(lang) -> matplotlib.figure.Figure`` registered
with :func:`figure`, which also records its alt text in both languages. Figures are rendered
by the site build (a hook calls :func:`build_all`), so a change to the code changes the
picture. matplotlib is imported only here, lazily: ``import llmfund`` never needs it.
"""

from __future__ import annotations

import hashlib
import io
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LANGS = ("zh", "en")

# Noto Sans CJK SC comes from Debian's fonts-noto-cjk; DejaVu Sans (shipped with matplotlib)
# covers Latin and math symbols. Text is stored as paths, so the SVG needs no font to view.
_RC = {
    "font.sans-serif": ["Noto Sans CJK SC", "Noto Sans CJK JP", "DejaVu Sans"],
    "font.family": "sans-serif",
    "axes.unicode_minus": False,  # the CJK fonts lack U+2212; use the ASCII hyphen-minus
    "svg.fonttype": "path",
    "svg.hashsalt": "llmfund",  # stable element ids -> byte-identical SVGs across builds
    "figure.facecolor": "white",  # a white card reads the same in light and dark mode
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "figure.dpi": 100,
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class FigureSpec:
    name: str
    lesson: str
    alt: dict[str, str]
    draw: Callable[[str], Any]


REGISTRY: dict[str, FigureSpec] = {}


def figure(name: str, *, lesson: str, alt_zh: str, alt_en: str) -> Callable:
    """Register ``draw(lang) -> Figure`` under ``name`` with its alt text in both languages."""

    def register(draw: Callable[[str], Any]) -> Callable[[str], Any]:
        if name in REGISTRY:
            raise ValueError(f"figure name {name!r} is registered twice")
        REGISTRY[name] = FigureSpec(name, lesson, {"zh": alt_zh, "en": alt_en}, draw)
        return draw

    return register


def tr(lang: str, zh: str, en: str) -> str:
    """The label in the figure's language."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    return zh if lang == "zh" else en


def new_figure(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """``plt.subplots`` under the course style (never touches the global pyplot state)."""
    from matplotlib.figure import Figure

    kwargs.setdefault("layout", "constrained")
    fig = Figure(figsize=kwargs.pop("figsize", (6.4, 3.6)), layout=kwargs.pop("layout"))
    axes = fig.subplots(*args, **kwargs)
    return fig, axes


def draw(name: str, lang: str) -> Any:
    """Figure ``name`` in ``lang``, under the course style, not yet rendered."""
    import matplotlib

    if name not in REGISTRY:
        raise KeyError(f"unknown figure {name!r}; known: {sorted(REGISTRY)}")
    with matplotlib.rc_context(_RC):
        return REGISTRY[name].draw(lang)


def render(name: str, lang: str) -> tuple[Any, bytes]:
    """Draw figure ``name`` in ``lang``; return the Figure and its deterministic SVG bytes."""
    import matplotlib

    fig = draw(name, lang)
    with matplotlib.rc_context(_RC):
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return fig, buf.getvalue()


def render_svg(name: str, lang: str) -> bytes:
    """Draw figure ``name`` in ``lang`` and return deterministic SVG bytes."""
    return render(name, lang)[1]


def source_fingerprint() -> str:
    """A hash of the package's source and matplotlib's version: figures change only with it."""
    import matplotlib

    root = pathlib.Path(__file__).resolve().parents[1]
    h = hashlib.sha256(matplotlib.__version__.encode())
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def build_all(out_dir: str | pathlib.Path, *, force: bool = False) -> list[pathlib.Path]:
    """Write every figure as ``<name>.<lang>.svg`` into ``out_dir``; return the files written.

    A file is rewritten only when its bytes change (so ``mkdocs serve`` does not loop), and
    nothing is drawn at all when the package source is unchanged since the last build.
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / ".fingerprint"
    fingerprint = source_fingerprint()
    expected = [out / f"{name}.{lang}.svg" for name in REGISTRY for lang in LANGS]
    if not force and stamp.exists() and stamp.read_text() == fingerprint and all(p.exists() for p in expected):
        return []
    written = []
    for name in REGISTRY:
        for lang in LANGS:
            path = out / f"{name}.{lang}.svg"
            data = render_svg(name, lang)
            if not path.exists() or path.read_bytes() != data:
                path.write_bytes(data)
                written.append(path)
    stamp.write_text(fingerprint)
    return written
