"""MkDocs hooks for the course site (``hooks:`` in ``mkdocs.yml``).

Small jobs that no plugin does for us:

1. Content built from code. Figures: ``llmfund.figures`` draws every figure into
   ``docs/assets/figures/`` before the build (only when the package's source changed), and a
   lesson line ``<!-- figure: name -->`` becomes the image with its alt text in the page's
   language; an unknown name fails the build. Notebooks: each lesson is also written as a
   Jupyter notebook beside its page (``tools/notebooks.py``) and the page links to it. The
   benchmarks page gets its tables from ``docs/assets/benchmarks/results.json``
   (``tools/benchmarks_page.py``); only ``python benchmarks/report.py`` measures.
2. mkdocstrings section titles (Parameters / 参数 ...) in the language of the page. Under
   mkdocs-static-i18n, mkdocstrings keeps the locale of the first language for every build;
   resetting the handler's locale before each page is rendered fixes that. It touches a
   private attribute (``Handlers._locale``): versions are pinned and tests/test_site.py checks
   the result on every API page. Code blocks (the API's source listings, the lessons' code
   and output) are kept out of the search index: prose and inline code stay searchable.
3. No request to another host at page view. Material's header repository widget asks
   api.github.com for stars and forks; the link stays, the widget's data attribute goes.
   And no 404 either: Material's language selector reads ``sitemap.xml`` under each
   language root, but i18n writes one (covering both languages) at the site root only.
4. MathJax 3 is copied from the installed ``django-static-mathjax`` wheel into the built site
   (nothing third-party is committed here, nothing is fetched at build or view time). Only what
   the pages load is copied: the single-file TeX-to-CHTML bundle with every TeX extension
   built in (so nothing is autoloaded), the CHTML web fonts it asks for on demand, and what
   the MathJax menu's accessibility options load when a reader turns them on (speech, the
   explorer: ``a11y/``, ``input/mml.js`` and the speech rule engine's ``sre/mathmaps``).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import shutil
import sys
import warnings
from pathlib import Path, PurePosixPath

from mkdocs.exceptions import PluginError

log = logging.getLogger("mkdocs.hooks.llmfund")

# --- 1. content built from code ----------------------------------------------------------

TOOLS = Path(__file__).resolve().parent
FIGURE = re.compile(r"^(?P<indent>[ \t]*)<!--\s*figure:\s*(?P<name>[\w-]+)\s*-->[ \t]*$", re.MULTILINE)
NOTEBOOK_LINK = {
    "zh": "下载本课的 Jupyter 笔记本（.ipynb）：代码与本页相同，已通过测试。",
    "en": "Download this lesson as a Jupyter notebook (.ipynb): the same code as this page, tested.",
}


def _tool(name: str):
    """A module of tools/ (not a package), loaded by path once."""
    module = sys.modules.get(f"llmfund_tools.{name}")
    if module is None:
        spec = importlib.util.spec_from_file_location(f"llmfund_tools.{name}", TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def _figures_dir(config) -> Path:
    return Path(config["docs_dir"]) / "assets" / "figures"


def on_pre_build(config):
    try:
        from llmfund import figures
    except ImportError as exc:  # matplotlib is in the docs extra
        raise PluginError(f"the figures need matplotlib: python -m pip install -e '.[docs]' ({exc})") from exc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = figures.build_all(_figures_dir(config))
    if written:
        log.info("Drew %d figure files", len(written))
    missing = sorted({str(w.message) for w in caught if "missing from font" in str(w.message)})
    if missing and _has_cjk_font():
        # With the CJK font installed a missing glyph is a character no font has: a bug in a
        # label, shown as a box in the figure. (Without the font every Chinese label is boxes:
        # .ci/run installs fonts-noto-cjk; the README says so.)
        log.warning("figures drawn with missing glyphs:\n  %s", "\n  ".join(missing))
    elif missing:
        log.info("no Noto Sans CJK font: the Chinese figures show boxes (apt-get install fonts-noto-cjk)")
    for w in caught:
        if "missing from font" not in str(w.message):
            log.warning("while drawing the figures: %s", w.message)


def _has_cjk_font() -> bool:
    from matplotlib import font_manager

    return any("Noto Sans CJK" in f.name for f in font_manager.fontManager.ttflist)


def _figure_markdown(markdown: str, page, language: str) -> str:
    from llmfund.figures import REGISTRY

    depth = len(PurePosixPath(page.file.src_uri).parts) - 2  # below docs/<lang>/
    prefix = "../" * depth + "../assets/figures/" if depth >= 0 else "assets/figures/"

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in REGISTRY:
            raise PluginError(f"{page.file.src_uri}: unknown figure {name!r}; known: {sorted(REGISTRY)}")
        alt = REGISTRY[name].alt[language]
        return f'{match["indent"]}![{alt}]({prefix}{name}.{language}.svg){{ .llmfund-figure loading=lazy }}'

    return FIGURE.sub(replace, markdown)


def _is_lesson(page) -> bool:
    parts = PurePosixPath(page.file.src_uri).parts
    return len(parts) == 3 and parts[1] == "lessons" and parts[2].endswith(".md")


def _write_notebook(page, config, language: str) -> None:
    from llmfund.figures import REGISTRY

    def figure_svg(name: str, lang: str) -> tuple[str, bytes]:
        return REGISTRY[name].alt[lang], (_figures_dir(config) / f"{name}.{lang}.svg").read_bytes()

    source = Path(page.file.abs_src_path)
    dest = Path(page.file.abs_dest_path).parent / f"{source.stem}.ipynb"
    _tool("notebooks").write_notebook(source, dest, language, figure_svg=figure_svg)


# --- 2. mkdocstrings in the page's language --------------------------------------------------


def on_page_markdown(markdown, page, config, files):
    language = str(config.theme["language"]).replace("_", "-")
    plugin = config.plugins.get("mkdocstrings")
    handlers = getattr(plugin, "_handlers", None)
    if handlers is not None:
        handlers._locale = language

    markdown = _figure_markdown(markdown, page, language)
    return _tool("benchmarks_page").insert_tables(markdown, language)


# A highlighted block: a fence, a docstring example, an API signature (doc-signature).
CODE_BLOCK = re.compile(r'<div class="language-[\w-]+(?: [\w-]+)* highlight"')


def on_page_content(html, page, config, files):
    # The source listings under each API entry stay on the page but out of the search index:
    # a search for "softmax" should find the function, not every line that calls it (and the
    # index, which a full page load downloads and builds, stays smaller).
    html = html.replace(
        '<details class="mkdocstrings-source"', '<details class="mkdocstrings-source" data-search-exclude'
    )
    # Likewise every other code block (lessons' code and output, docstring examples, API
    # signatures): the prose around a block names what it does, inline code stays searchable,
    # and the blocks were half of the index's text.
    html = CODE_BLOCK.sub(r"\g<0> data-search-exclude", html)
    if _is_lesson(page):
        # Injected into the HTML, not the Markdown: the notebook is written after the page,
        # so a Markdown link to it would fail link validation.
        language = str(config.theme["language"])
        name = Path(page.file.abs_src_path).stem
        link = (
            f'<p class="llmfund-notebook"><a href="{name}.ipynb" download>'
            f"{NOTEBOOK_LINK.get(language, NOTEBOOK_LINK['en'])}</a></p>"
        )
        html = re.sub(r"(</h1>)", lambda m: m[1] + link, html, count=1)
    return html


# --- 3. no request to another host -----------------------------------------------------------


def _without_repository_facts(html: str) -> str:
    # Without this attribute Material does not fetch repository facts from api.github.com.
    return html.replace(' data-md-component="source"', "")


def on_post_page(output, page, config):
    if _is_lesson(page):
        _write_notebook(page, config, str(config.theme["language"]))
    return _without_repository_facts(output)


def on_post_template(output_content, template_name, config):
    return _without_repository_facts(output_content)  # 404.html is a template, not a page


# --- 4. MathJax from the installed wheel -----------------------------------------------------

MATHJAX_FILES = ["tex-chtml-full.js", "input/mml.js"]
MATHJAX_DIRS = ["output/chtml/fonts/woff-v2", "a11y", "sre/mathmaps"]


def _mathjax_dir() -> Path:
    spec = importlib.util.find_spec("mathjax")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            es5 = Path(location) / "static" / "mathjax" / "es5"
            if (es5 / MATHJAX_FILES[0]).is_file():
                return es5
    raise PluginError(
        "MathJax not found: the site serves MathJax 3 from the PyPI package "
        "django-static-mathjax (part of the docs extra): python -m pip install -e '.[docs]'"
    )


def _copy_if_changed(src: Path, dest: Path) -> None:
    if dest.is_file() and dest.stat().st_size == src.stat().st_size:
        if dest.read_bytes() == src.read_bytes():
            return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def _language_dirs(config) -> list[Path]:
    docs = Path(config["docs_dir"])
    return sorted(p for p in docs.iterdir() if p.is_dir() and (p / "index.md").is_file())


def on_post_build(config):
    site = Path(config["site_dir"])
    sitemap = site / "sitemap.xml"
    for language in _language_dirs(config):
        if sitemap.is_file() and (site / language.name / "index.html").is_file():
            _copy_if_changed(sitemap, site / language.name / "sitemap.xml")

    es5 = _mathjax_dir()
    dest = site / "assets" / "mathjax"
    for name in MATHJAX_FILES:
        _copy_if_changed(es5 / name, dest / name)
    for folder in MATHJAX_DIRS:
        for src in sorted((es5 / folder).iterdir()):
            _copy_if_changed(src, dest / folder / src.name)
    licence = es5.parent / "LICENSE"
    if licence.is_file():
        _copy_if_changed(licence, dest / "LICENSE")
