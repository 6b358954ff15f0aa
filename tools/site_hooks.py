"""MkDocs hooks for the course site (``hooks:`` in ``mkdocs.yml``).

Small jobs that no plugin does for us:

1. Lessons are written in parallel with the site. A lesson listed in the nav whose file does
   not exist yet (in any language) is left out of the nav, and a link to it from the home,
   learning-path or API pages becomes plain text marked "coming soon". A lesson file that
   exists but is not in the nav still fails the strict build (validation.nav.omitted_files).
2. mkdocstrings section titles (Parameters / 参数 ...) in the language of the page. Under
   mkdocs-static-i18n, mkdocstrings keeps the locale of the first language for every build;
   resetting the handler's locale before each page is rendered fixes that. It touches a
   private attribute (``Handlers._locale``): versions are pinned and tests/test_site.py checks
   the result on every API page. The API's source listings are kept out of the search index.
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
from pathlib import Path, PurePosixPath

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority

log = logging.getLogger("mkdocs.hooks.llmfund")

# --- 1. lessons written in parallel ----------------------------------------------------------

LESSON = re.compile(r"^lessons/\d\d-[\w-]+\.md$")
# Pages of the site machinery whose links to unwritten lessons degrade to plain text
# (relative to the language folder). Lessons are not among them: a broken link in a lesson
# must fail the build.
PAGES_WITH_UPCOMING_LINKS = re.compile(r"^(index|path|api/\w+)\.md$")
LESSON_LINK = re.compile(
    r"\[(?P<text>[^\]\n]+)\]\((?P<target>(?:\.\./)*lessons/\d\d-[\w-]+\.md)(?P<anchor>#[^)\s]*)?\)"
)
COMING_SOON = {"zh": "（即将上线）", "en": " (coming soon)"}


def _language_dirs(config) -> list[Path]:
    docs = Path(config["docs_dir"])
    return sorted(p for p in docs.iterdir() if p.is_dir() and (p / "index.md").is_file())


def _prune_nav(items, exists) -> list:
    kept = []
    for item in items:
        if isinstance(item, dict):
            ((title, value),) = item.items()
            if isinstance(value, list):
                value = _prune_nav(value, exists)
                if value:
                    kept.append({title: value})
                continue
            path = value
        else:
            path = item
        if isinstance(path, str) and LESSON.match(path) and not exists(path):
            log.info("Lesson %s is not written yet: left out of the nav", path)
            continue
        kept.append(item)
    return kept


@event_priority(100)  # before mkdocs-static-i18n reads the nav
def on_config(config):
    languages = _language_dirs(config)
    config["nav"] = _prune_nav(
        config["nav"] or [], lambda path: any((lang / path).is_file() for lang in languages)
    )
    _mathjax_dir()  # fail early, with the fix in the message, if the package is missing
    return config


def _unlink_upcoming(markdown: str, page_dir: Path, language: str) -> str:
    def replace(match: re.Match) -> str:
        if (page_dir / match["target"]).is_file():
            return match[0]
        return match["text"] + COMING_SOON.get(language, COMING_SOON["en"])

    return LESSON_LINK.sub(replace, markdown)


# --- 2. mkdocstrings in the page's language --------------------------------------------------


def on_page_markdown(markdown, page, config, files):
    language = str(config.theme["language"]).replace("_", "-")
    plugin = config.plugins.get("mkdocstrings")
    handlers = getattr(plugin, "_handlers", None)
    if handlers is not None:
        handlers._locale = language

    src = PurePosixPath(page.file.src_uri)
    if len(src.parts) > 1 and PAGES_WITH_UPCOMING_LINKS.match(str(PurePosixPath(*src.parts[1:]))):
        markdown = _unlink_upcoming(markdown, Path(page.file.abs_src_path).parent, language)
    return markdown


def on_page_content(html, page, config, files):
    # The source listings under each API entry stay on the page but out of the search index:
    # a search for "softmax" should find the function, not every line that calls it (and the
    # index, which a full page load downloads and builds, stays smaller).
    return html.replace(
        '<details class="mkdocstrings-source"', '<details class="mkdocstrings-source" data-search-exclude'
    )


# --- 3. no request to another host -----------------------------------------------------------


def _without_repository_facts(html: str) -> str:
    # Without this attribute Material does not fetch repository facts from api.github.com.
    return html.replace(' data-md-component="source"', "")


def on_post_page(output, page, config):
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
