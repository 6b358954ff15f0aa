"""The course site: strict bilingual build, code blocks that really run, zh/en parity, and a
headless-Chromium walk of the built site (no other host, math rendered, language switcher,
Chinese and English search).

The site is built once per session (``built_site``), for the local server the browser tests
use (site_url http://127.0.0.1:PORT/llmfund/, so Material's sitemap-driven instant navigation
works as on the real host), and every test reuses that build. The build starts in the
background right after collection (tests/conftest.py), so it overlaps with the other tests.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from site_helpers import (
    ARTIFACTS,
    DOCS,
    LANGUAGES,
    PYTHONISH,
    ROOT,
    SKIP_MARKER,
    block_signature,
    lesson_parsers,
    markdown_pages,
    numbers,
    scan_fences,
    serve,
)
from sybil import Document
from sybil.parsers.abstract import AbstractClearNamespaceParser, AbstractSkipParser

LESSON_01 = "lessons/01-attention/"


# --- the build -------------------------------------------------------------------------------


def test_strict_build_is_clean(built_site, record_property):
    site, output, seconds = built_site.site, built_site.output, built_site.seconds
    record_property("build_seconds", round(seconds, 1))
    print(f"strict build: {seconds:.1f} s (in the background, beside the other tests)")
    assert built_site.returncode == 0, output
    assert "WARNING" not in output, output
    assert "ERROR" not in output, output
    assert (site / "index.html").is_file() and (site / "en" / "index.html").is_file()


def test_every_page_exists_in_both_languages():
    zh, en = (set(markdown_pages(language)) for language in LANGUAGES)
    assert zh, "docs/zh has no pages"
    assert zh - en == set(), f"pages only in docs/zh (add the English page): {sorted(zh - en)}"
    assert en - zh == set(), f"pages only in docs/en (add the Chinese page): {sorted(en - zh)}"


def test_mathjax_is_served_by_the_site(site):
    mathjax = site / "assets" / "mathjax"
    assert (mathjax / "tex-chtml-full.js").is_file()
    assert any((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("MathJax_Main-Regular.woff"))


class _Refs(HTMLParser):
    """Collects the URLs a page loads by itself (not the links a reader may follow)."""

    LOADS = {("script", "src"), ("link", "href"), ("img", "src"), ("source", "src"), ("iframe", "src")}

    def __init__(self):
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and attrs.get("rel") in ("alternate", "canonical"):
            return
        for t, attr in self.LOADS:
            if tag == t and attrs.get(attr):
                self.loaded.append(attrs[attr])


def test_built_pages_load_nothing_from_another_host(site):
    offenders = []
    for page in sorted(site.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        refs = _Refs()
        refs.feed(html)
        offenders += [
            f"{page.relative_to(site)}: {url}" for url in refs.loaded if re.match(r"^(https?:)?//", url)
        ]
        # Material's repository widget asks api.github.com for stars (site_hooks.py removes it).
        if 'data-md-component="source"' in html:
            offenders.append(f"{page.relative_to(site)}: repository widget (api.github.com)")
    assert not offenders, "\n".join(offenders)


def test_search_index_holds_prose_not_code_blocks(site):
    """Code and output blocks are kept out of the search index (tools/site_hooks.py): the
    index is downloaded and built on every full page load, and the blocks were half of it.
    Prose, headings and inline code stay searchable."""
    import json

    docs = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))["docs"]
    text = "\n".join(doc["text"] for doc in docs)
    assert "import numpy as np" not in text and "<pre" not in text
    assert "<code>scaled_dot_product_attention</code>" in text
    lesson_01 = [d for d in docs if d["location"].startswith(LESSON_01)]
    assert lesson_01 and any("注意力" in d["text"].replace("\u200b", "") for d in lesson_01)


# --- API reference ---------------------------------------------------------------------------


class _Text(HTMLParser):
    """The visible prose of a page: text outside code, scripts and styles."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("code", "pre", "script", "style"):
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in ("code", "pre", "script", "style"):
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)


API_MODULES = sorted(p.stem for p in (DOCS / "zh" / "api").glob("*.md") if p.stem != "index")


CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_TITLES = ("Parameters:", "Returns:", "Raises:", "Examples:", "Attributes:", "Methods:")


@pytest.mark.parametrize("module", API_MODULES)
def test_api_page_in_both_languages(site, module):
    """Generated from the docstrings, with section titles in the page's language (the locale
    hook in tools/site_hooks.py) and the docstrings' math typeset like the lessons'."""
    zh = (site / "api" / module / "index.html").read_text(encoding="utf-8")
    en = (site / "en" / "api" / module / "index.html").read_text(encoding="utf-8")
    titles = {}
    for language, html in (("zh", zh), ("en", en)):
        assert f'id="llmfund.{module}.' in html, f"{language}: no documented object of llmfund.{module}"
        titles[language] = re.findall(r'class="doc-section-title">([^<]*)<', html)
        assert titles[language], f"{language}: mkdocstrings rendered no docstring sections"
    assert not any(t.strip() in ENGLISH_TITLES for t in titles["zh"]), f"English titles on zh: {titles['zh']}"
    assert any(CJK.search(t) for t in titles["zh"]), titles["zh"]
    assert not any(CJK.search(t) for t in titles["en"]), f"Chinese titles on en: {titles['en']}"
    # Math in docstrings goes through arithmatex like the lessons: no raw $...$ left in prose.
    for html in (zh, en):
        text = _Text()
        text.feed(html)
        prose = "".join(text.parts)
        assert not re.search(r"\$[^$\s][^$]*\$", prose), re.search(r".{40}\$[^$\s][^$]*\$.{0,40}", prose)
    if "$" in (ROOT / "llmfund" / f"{module}.py").read_text(encoding="utf-8"):
        assert 'class="arithmatex"' in zh and 'class="arithmatex"' in en


# --- learning path and nav -------------------------------------------------------------------


def _lessons(language: str) -> list[str]:
    return sorted(p.stem for p in (DOCS / language / "lessons").glob("[0-9][0-9]-*.md"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_learning_path_links_every_written_lesson(site, language):
    path_html = site / ("" if language == "zh" else language) / "path" / "index.html"
    html = path_html.read_text(encoding="utf-8")
    index_html = (path_html.parent.parent / "index.html").read_text(encoding="utf-8")
    for lesson in _lessons(language):
        assert f'href="../lessons/{lesson}/"' in html, f"path page does not link lessons/{lesson}.md"
        assert f"/lessons/{lesson}/" in index_html or f'href="lessons/{lesson}/"' in index_html, (
            f"lessons/{lesson}.md is not in the navigation"
        )
    assert "lessons/01-attention.md" in (DOCS / language / "path.md").read_text(encoding="utf-8")


# --- Python blocks: collected by Sybil, and the same in both languages -----------------------


def _all_markdown() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


@pytest.fixture(scope="module")
def parsers():
    return lesson_parsers()


def _fence_problems(path: Path, parsers) -> list[str]:
    """Why some Python-looking fence of ``path`` would not run (empty: all is well)."""
    text = path.read_text(encoding="utf-8")
    document = Document(text, str(path))
    code = [p for p in parsers if not isinstance(p, (AbstractSkipParser, AbstractClearNamespaceParser))]
    examples = sorted((region for parser in code for region in parser(document)), key=lambda r: r.start)
    fences = scan_fences(text)
    name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name

    def where(offset: int) -> str:
        return f"{name}:{text.count(chr(10), 0, offset) + 1}"

    problems = []

    markers = list(SKIP_MARKER.finditer(text))
    for marker in markers:
        action, reason = marker["action"], (marker["reason"] or "").strip()
        if action in ("next", "start") and not reason:
            problems.append(
                f'{where(marker.start())}: "skip: {action}" needs a reason, e.g.'
                f' <!-- skip: {action} "needs a GPU" --> (without one Sybil reports the block'
                " as passed although it never ran)"
            )
        if action == "next":
            following = next((f for f in fences if f.start >= marker.end()), None)
            adjacent = following is not None and not text[marker.end() : following.start].strip()
            target = next((r for r in examples if r.start >= marker.end()), None)
            if not adjacent:
                problems.append(
                    f"{where(marker.start())}: a skip marker must sit right above the fence it skips"
                )
            elif target is None or not (following.start <= target.start < following.end):
                at = f" the block at {where(target.start)}" if target is not None else " nothing"
                problems.append(
                    f"{where(following.start)}: Sybil does not collect this ```{following.info.strip()}"
                    f" fence, so the skip marker above it would skip{at} instead; write ```python"
                    " (skipped blocks are reported with their reason) or use a non-Python fence"
                    " such as ```text"
                )

    for fence in fences:
        if fence.language not in PYTHONISH:
            continue
        if any(fence.start <= r.start < fence.end for r in examples):
            continue
        before = [m for m in markers if m.end() <= fence.start and not text[m.end() : fence.start].strip()]
        if before and before[-1]["action"] == "next" and (before[-1]["reason"] or "").strip():
            continue  # exempt, but see the marker check above
        problems.append(
            f"{where(fence.start)}: ```{fence.info.strip()} block is not run by the tests: only ```python"
            " fences run (a body starting with >>> runs as a doctest); if it must not run, put"
            ' <!-- skip: next "the reason" --> right above a ```python fence'
        )
    return problems


def test_every_python_block_in_docs_is_run(parsers):
    problems = []
    for path in _all_markdown():
        problems += _fence_problems(path, parsers)
    assert not problems, "\n".join(problems)


def test_fence_check_catches_what_sybil_would_not_run(tmp_path, parsers):
    page = tmp_path / "page.md"
    page.write_text(
        "```py\nx = 1\n```\n\n"
        '<!-- skip: next "display only" -->\n```pycon\n>>> 1\n1\n```\n\n'
        "```python\nprint(1)\n```\n\n```output\n1\n```\n\n"
        "<!-- skip: next -->\n```python\ny = 2\n```\n",
        encoding="utf-8",
    )
    problems = "\n".join(_fence_problems(page, parsers))
    assert "page.md:1: ```py block is not run" in problems
    assert "page.md:6: Sybil does not collect this ```pycon fence" in problems  # the skip would leak
    assert '"skip: next" needs a reason' in problems
    assert problems.count("\n") == 2, problems


def test_indented_fences_in_folded_solutions_and_tabs_run(parsers):
    """Lessons put solutions in ``??? success "答案"`` with the fence indented four spaces:
    those blocks must be collected and executed (here a failing one must fail)."""
    path = ROOT / "tests" / "data" / "indented_fences.md"
    document = Document.parse(str(path), *parsers)
    examples = list(document)
    assert [e.line for e in examples] == [5, 17, 25, 38], [(e.line, e.region) for e in examples]
    outcomes = {}
    for example in examples:
        try:
            example.evaluate()
            outcomes[example.line] = "passed"
        except Exception as exc:  # SybilFailure or the block's own exception
            outcomes[example.line] = f"failed: {exc}"
    assert outcomes[5] == outcomes[25] == outcomes[38] == "passed", outcomes
    assert (
        outcomes[17].startswith("failed") and "the assertion inside the folded solution ran" in outcomes[17]
    )


def _python_fences(language: str, page: str):
    text = (DOCS / language / page).read_text(encoding="utf-8")
    fences = scan_fences(text)
    return [f for f in fences if f.language in PYTHONISH], [f for f in fences if f.language == "output"]


@pytest.mark.parametrize("page", sorted(set(markdown_pages("zh")) & set(markdown_pages("en"))))
def test_same_code_in_both_languages(page):
    """Same number of Python blocks, and the same code in each pair once comments and string
    literals are set aside (printed labels and comments may be translated). Doctest expected
    outputs and ```output blocks must show the same numbers (their words may differ)."""
    (zh, zh_out), (en, en_out) = _python_fences("zh", page), _python_fences("en", page)
    assert len(zh) == len(en), (
        f"{page}: {len(zh)} Python blocks in zh (lines {[f.line for f in zh]}),"
        f" {len(en)} in en (lines {[f.line for f in en]})"
    )
    for a, b in zip(zh, en, strict=True):
        sa, sb = block_signature(a.body), block_signature(b.body)
        assert sa == sb, (
            f"{page}: the Python block at zh line {a.line} and en line {b.line} differ in code"
            f" (comments and strings aside):\nzh: {' '.join(map(str, sa))}\nen: {' '.join(map(str, sb))}"
        )
    assert len(zh_out) == len(en_out), f"{page}: {len(zh_out)} output blocks in zh, {len(en_out)} in en"
    for a, b in zip(zh_out, en_out, strict=True):
        assert numbers(a.body) == numbers(b.body), (
            f"{page}: output blocks at zh line {a.line} and en line {b.line} show different numbers"
        )


# --- the browser -----------------------------------------------------------------------------
#
# One reader's tab for all the browser tests, in the order of this file: the first loads
# lesson 01 cold (its transfer size is measured), the others move through the site by
# Material's instant navigation, as a reader does (a full load per page would rebuild the
# search index each time and take far longer). This file runs on one xdist worker (--dist loadfile).

# Debian's Chromium; LLMFUND_CHROMIUM may name another Chromium-based browser (the GitHub
# workflow uses it where the distribution's package is only a snap wrapper).
CHROMIUM = Path(os.environ.get("LLMFUND_CHROMIUM") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Nothing leaves the machine, whatever a page asks for: every request not to the local
# server goes to a proxy that is not there (a closed port) and fails at once. The request is
# still seen by _Watch, and reported.
NOWHERE = {"server": "http://127.0.0.1:9", "bypass": "127.0.0.1"}
MATH_READY = """() => [...document.querySelectorAll('.arithmatex')]
    .every(e => e.querySelector('mjx-container'))"""

def _page_paths(site: Path, first: str = "zh") -> list[str]:
    """Every page of the site, those in the language ``first`` first (one language switch)."""
    pages = [p.relative_to(site).parent.as_posix() for p in site.rglob("index.html")]
    return sorted(("" if p == "." else p + "/" for p in pages), key=lambda p: (p.startswith("en/") != (first == "en"), p))


RETRIES = ARTIFACTS / "browser-retries.txt"


def _retry(message: str) -> None:
    """Note that the browser test clicked again after a lost click (shown in the summary)."""
    print(message)
    with RETRIES.open("a", encoding="utf-8") as log:
        log.write(message.replace("\n", " ") + "\n")


class _Watch:
    """Everything the tab asks for, and every failed request or console error."""

    def __init__(self, context, base: str):
        self.host = urlsplit(base).netloc
        self.requests: list[str] = []
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.bodies: dict[str, int] | None = None  # url -> bytes, while measuring a load
        self.gzipped: dict[str, int] = {}
        self.recent: list[str] = []  # the last events, to explain a navigation that hangs
        self.started = time.perf_counter()
        context.on("request", self._request)
        context.on("response", self._response)
        context.on("requestfailed", lambda r: self._note(f"failed {r.url} {r.failure}"))

    def _note(self, event: str) -> None:
        self.recent = self.recent[-15:] + [f"{time.perf_counter() - self.started:7.2f} s {event}"]

    def _local(self, url: str) -> bool:
        return url.startswith(("data:", "blob:")) or urlsplit(url).netloc == self.host

    def _request(self, request):
        self._note(f"request {request.url}")
        self.requests.append(request.url)
        if not self._local(request.url):
            self.foreign.append(request.url)

    def _response(self, response):
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status} {response.url}")
        elif self.bodies is not None and response.request.method == "GET" and not response.url.startswith("data:"):
            try:
                body = response.body()
            except Exception:  # redirects and aborted requests have no body
                return
            self.bodies[response.url] = len(body)
            self.gzipped[response.url] = len(gzip.compress(body))

    def watch(self, page):
        page.on("framenavigated", lambda f: f == page.main_frame and self._note(f"navigated {f.url}"))
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        return page


# Material's instant navigation: a click on a link of the site fetches the page and swaps
# the content, without reloading the scripts. Count document$ emissions to know it arrived.
COUNT_PAGES = "() => { window.__pages = 0; document$.subscribe(() => { window.__pages += 1; }); }"
CLICK = """url => { const seen = window.__pages; const a = document.createElement('a');
    a.href = url; document.body.append(a); a.click(); a.remove(); return seen; }"""
# (Without the fragment: navigation.tracking puts the heading in view into the URL.)
ARRIVED = """([url, seen]) => location.href.split('#')[0] === url
    && (window.__pages === undefined || window.__pages > seen)"""


class Tab:
    """The browser tests' tab on the served site, with what it has seen so far."""

    def __init__(self, page, watch: _Watch, base: str):
        self.page, self.watch, self.base = page, watch, base

    def load(self, path: str, until: str = "load") -> None:
        """A full page load (scripts, search index, fonts). Requests the page makes later
        (the search index) are still watched: the test that ends the tour waits for them."""
        self.page.goto(self.base + path, wait_until=until)
        if self.page.evaluate("() => typeof document$ !== 'undefined'"):
            self.page.evaluate(COUNT_PAGES)

    def go(self, path: str) -> None:
        """Go to ``path`` as a reader clicking a link: instant navigation, or a full load if
        the tab has no page of the site yet or ``path`` is in the other language.

        (Material treats a click on a link into another language as a language switch: it
        looks the current page up in that language's sitemap and loads it in full, so such
        a link may even land on the twin of the current page rather than on ``path``.)
        """
        language = "en" if path.startswith("en/") else "zh"
        counting = self.page.evaluate("() => window.__pages !== undefined")
        if self.page.url.split("#")[0] == self.base + path:  # here already (after a full load?)
            if not counting:
                self.page.evaluate(COUNT_PAGES)
            return
        if not counting or language != self.language():
            self.load(path)
            return
        url = self.base + path
        seen = self.page.evaluate(CLICK, url)
        try:
            self.page.wait_for_function(ARRIVED, arg=[url, seen], timeout=20_000)
        except Exception:  # playwright's TimeoutError
            # A click that lands while Material is still settling the previous page can be
            # dropped; a reader would click again, and so do we, once (written to
            # browser-retries.txt). A page that never arrives fails. (The stalls once seen
            # here at the zh -> en boundary were Material's language switch, see above.)
            _retry(f"instant navigation to {url} did not arrive in 20 s: clicking again")
            print("last events:\n" + "\n".join(self.watch.recent))
            seen = self.page.evaluate(CLICK, url)
            self.page.wait_for_function(ARRIVED, arg=[url, seen], timeout=60_000)
        assert self.page.evaluate("() => window.__pages !== undefined"), (
            f"{url}: a full page load, not instant navigation; last events:\n" + "\n".join(self.watch.recent)
        )

    def language(self) -> str:
        return self.page.evaluate("() => document.documentElement.lang")

    def math_problems(self, where: str) -> list[str]:
        """Wait until every formula on the page is typeset; report TeX errors."""
        if not self.page.locator(".arithmatex").count():
            return []
        self.page.wait_for_function(MATH_READY, timeout=60_000)
        self.page.evaluate("() => document.fonts.ready")
        bad = self.page.locator("mjx-merror").count()
        return [f"{where}: {bad} formula(s) MathJax could not parse"] if bad else []

    @contextlib.contextmanager
    def clean(self):
        """Fail the enclosing test on any request to another host or any error (console,
        page, HTTP) that happens inside the block."""
        foreign, errors = len(self.watch.foreign), len(self.watch.errors)
        yield
        assert not self.watch.foreign[foreign:], "requests to other hosts:\n" + "\n".join(
            sorted(set(self.watch.foreign[foreign:]))
        )
        assert not self.watch.errors[errors:], "\n".join(self.watch.errors[errors:])


@pytest.fixture(scope="module")
def tab(built_site, site):
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found (Debian: apt-get install chromium fonts-noto-cjk)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    ARTIFACTS.mkdir(exist_ok=True)
    RETRIES.unlink(missing_ok=True)
    with serve(site, built_site.port) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, proxy=NOWHERE)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        watch = _Watch(context, base)
        tab = Tab(watch.watch(context.new_page()), watch, base)
        yield tab
        tab.page.wait_for_load_state("networkidle")
        context.close()
        browser.close()
    # Whatever a page asked for after its test ended: still nothing from another host.
    assert not watch.foreign, "requests to other hosts:\n" + "\n".join(sorted(set(watch.foreign)))


@pytest.mark.browser
def test_lesson_01_loads_cold_with_its_math(tab):
    """A reader's first visit: lesson 01 with an empty cache. Its transfer size is written
    to test-artifacts/lesson-01-transfer.txt, with a screenshot of the top of the page."""
    ARTIFACTS.mkdir(exist_ok=True)
    tab.watch.bodies, tab.watch.gzipped = {}, {}
    with tab.clean():
        tab.load(LESSON_01, until="networkidle")  # everything the first visit fetches
        assert not tab.math_problems(LESSON_01)
    bodies, gzipped = tab.watch.bodies, tab.watch.gzipped
    tab.watch.bodies = None
    width = tab.page.eval_on_selector("div.arithmatex mjx-container", "e => e.getBoundingClientRect().width")
    assert width > 50, "the display formula rendered with no width (fonts missing?)"
    report = (
        f"zh {LESSON_01}: {len(bodies)} responses, {sum(bodies.values()) / 1024:.0f} KiB"
        f" ({sum(gzipped.values()) / 1024:.0f} KiB gzipped)\n"
        + "\n".join(
            f"  {size / 1024:8.1f} KiB  {url}" for url, size in sorted(bodies.items(), key=lambda kv: -kv[1])
        )
    )
    (ARTIFACTS / "lesson-01-transfer.txt").write_text(report + "\n", encoding="utf-8")
    print(report)
    tab.page.screenshot(path=str(ARTIFACTS / "lesson-01-zh.png"))


def _open_language_menu_and_pick(page, language: str) -> None:
    page.hover(".md-header__option .md-select")
    page.click(f'.md-select__link[hreflang="{language}"]')


@pytest.mark.browser
def test_language_switcher_leads_to_the_twin_page(tab):
    """zh -> en -> zh on lesson 01 (a screenshot of the English page is kept); then, after
    an instant navigation (the header is not reloaded), the switcher follows the new page."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = tab.page
    with tab.clean():
        tab.go(LESSON_01)
        _open_language_menu_and_pick(page, "en")
        page.wait_for_url(tab.base + "en/" + LESSON_01)
        assert not tab.math_problems("en/" + LESSON_01)
        assert page.locator("html").get_attribute("lang") == "en"
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "lesson-01-en.png"))
        _open_language_menu_and_pick(page, "zh")
        page.wait_for_url(tab.base + LESSON_01)
        assert page.locator("html").get_attribute("lang") == "zh"

        tab.go(LESSON_01)  # counts pages again if the switch was a full load
        seen = page.evaluate("() => window.__pages")
        page.click('.md-sidebar--primary a[href$="path/"]')
        page.wait_for_function(ARRIVED, arg=[tab.base + "path/", seen])
        assert page.evaluate("() => window.__pages !== undefined"), "not instant navigation"
        assert not tab.math_problems("path/")
        _open_language_menu_and_pick(page, "en")
        page.wait_for_url(tab.base + "en/path/")
        assert not tab.math_problems("en/path/")
        assert page.locator("html").get_attribute("lang") == "en"


@pytest.mark.browser
def test_every_page_loads_from_the_site_alone(tab, site):
    """Every built page: nothing from another host, no failed request, no console error, every
    formula typeset without a TeX error. The pages of the tab's language, then those of the
    other, each reached by instant navigation (switching language is a full load, as for a
    reader), then the 404 page (not reachable by navigation) by a full load."""
    paths = _page_paths(site, first=tab.language())
    problems = []
    requests = len(tab.watch.requests)
    with tab.clean():
        for path in paths:
            tab.go(path)
            problems += tab.math_problems(path)
        tab.load("404.html", until="networkidle")
    assert not problems, "\n".join(problems)
    summary = f"{len(paths) + 1} pages walked, {len(tab.watch.requests) - requests} requests, none to another host"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser-walk.txt").write_text(summary + "\n", encoding="utf-8")
    print(summary)


FIGURE_IMG = re.compile(r'<img alt="(?P<alt>[^"]*)" class="llmfund-figure" loading="lazy" src="(?P<src>[^"]+)" />')
IMAGES_LOADED = """() => [...document.querySelectorAll('img.llmfund-figure')].map(
    img => [img.getAttribute('src'), img.complete && img.naturalWidth > 0])"""


@pytest.mark.parametrize("prefix", ["", "en/"])
def test_every_figure_on_the_built_lessons_resolves(site, prefix):
    """Each figure placed in a lesson points at an SVG the build drew, in the page's language,
    with alt text in that language."""
    seen = 0
    for html_path in sorted((site / prefix / "lessons").glob("*/index.html")):
        for match in FIGURE_IMG.finditer(html_path.read_text(encoding="utf-8")):
            svg = (html_path.parent / match["src"]).resolve()
            assert svg.is_file() and svg.read_bytes().lstrip().startswith(b"<?xml"), match["src"]
            assert svg.name.endswith(f".{prefix[:-1] or 'zh'}.svg"), f"{html_path}: {svg.name}"
            assert bool(re.search(r"[\u4e00-\u9fff]", match["alt"])) == (prefix == ""), match["alt"]
            seen += 1
    assert seen >= 14, f"only {seen} figures on the {prefix or 'zh/'} lessons"


@pytest.mark.browser
@pytest.mark.parametrize(
    ("prefix", "lesson", "n_figures", "shown"),  # shown: the heatmaps; the paged-memory bars
    [
        ("", "01-attention", 3, 0),
        ("", "06-inference-optimization", 3, 1),
        ("en/", "01-attention", 3, 0),
        ("en/", "06-inference-optimization", 3, 1),
    ],
    ids=["zh-01", "zh-06", "en-01", "en-06"],
)
def test_figures_render_and_screenshots(tab, prefix, lesson, n_figures, shown):
    """A lesson's figures load in the browser (scrolled into view: they are lazy); a
    screenshot of one of them, with its prose, in each language, is kept as a test artefact."""
    ARTIFACTS.mkdir(exist_ok=True)
    where = f"{prefix}lessons/{lesson}/"
    page = tab.page
    with tab.clean():
        tab.go(where)
        figures = page.locator("img.llmfund-figure").all()
        assert len(figures) == n_figures
        for img in figures:
            img.scroll_into_view_if_needed()
        # Lazy images start loading once near the viewport; wait for them (an upper bound).
        page.wait_for_function(f"() => ({IMAGES_LOADED})().every(([, ok]) => ok)", timeout=60_000)
        for src, loaded in page.evaluate(IMAGES_LOADED):
            assert loaded, f"{where}: figure {src} did not load"
        assert not tab.math_problems(where)
        figures[shown].scroll_into_view_if_needed()
        page.evaluate("() => window.scrollBy(0, -250)")
        page.screenshot(path=str(ARTIFACTS / f"lesson-{lesson[:2]}-figure-{prefix[:-1] or 'zh'}.png"))


SEARCH_STATE = """() => {
    const out = document.querySelector('.md-search__output');
    const first = document.querySelector('.md-search-result__list > li a');
    const style = el => el ? [getComputedStyle(el).display, getComputedStyle(el).visibility,
                              JSON.stringify(el.getBoundingClientRect())] : null;
    return {toggle: document.getElementById('__search').checked, url: location.href,
            active: document.activeElement && document.activeElement.className,
            input: document.querySelector('.md-search__input').value,
            output: style(out), first: style(first), scrollY: window.scrollY,
            meta: (document.querySelector('.md-search-result__meta') || {}).textContent};
}"""


def _search(page, query: str) -> list[str]:
    """Type ``query`` into the search box, key by key, and return the result links.

    Material closes the search (and the drawer) 125 ms after every location change, so a
    search opened right after an instant navigation closes again under the test, leaving the
    results in a closed dialog. A reader cannot be that quick: wait as long first. Should the
    search still not open or close again, click again as a reader would (twice at most)."""
    results = page.locator(".md-search-result__list > li a")
    page.wait_for_timeout(200)  # > Material's 125 ms (its bundle: location$ ... delay(125))
    for attempt in range(3):
        # Open the search as a reader does, by clicking the box (Material ties the dialog to
        # the #__search toggle).
        page.click(".md-search__input")
        try:
            page.wait_for_function("() => document.getElementById('__search').checked", timeout=5_000)
        except Exception:  # playwright's TimeoutError
            if attempt == 2:
                raise AssertionError(f"the search does not open; state: {page.evaluate(SEARCH_STATE)}") from None
            _retry(f"search did not open ({page.evaluate(SEARCH_STATE)}); clicking again")
            page.evaluate("() => document.activeElement && document.activeElement.blur()")
            continue
        page.fill(".md-search__input", "")  # an earlier query's results go with it
        page.wait_for_function("() => !document.querySelector('.md-search-result__list > li')")
        # Typed key by key. Material reads the box on keyup: Chinese characters arrive as text
        # input (as from an IME), so finish with a key that fires keyup, as an IME commit does.
        page.locator(".md-search__input").press_sequentially(query, delay=30)
        page.keyboard.press("End")
        try:
            results.first.wait_for(timeout=15_000)
            break
        except Exception:  # playwright's TimeoutError
            if attempt == 2:  # keep what the reader would have seen, and the search's state
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "search-failure.png"))
                state = page.evaluate(SEARCH_STATE)
                raise AssertionError(f"no visible search result for {query!r}; search state: {state}") from None
            _retry(f"search for {query!r}: no visible result ({page.evaluate(SEARCH_STATE)}); again")
            page.keyboard.press("Escape")
            page.evaluate("() => document.activeElement && document.activeElement.blur()")
    hrefs = results.evaluate_all("els => els.map(e => e.href)")
    page.keyboard.press("Escape")  # close the search, as a reader would before moving on
    return hrefs


@pytest.mark.browser
@pytest.mark.parametrize(
    ("start", "query", "expected"),
    [
        ("en/", "attention", "en/" + LESSON_01),
        ("en/", "perplexity", "en/lessons/05-ppl/"),
        ("", "注意力", LESSON_01),
        ("", "困惑度", "lessons/05-ppl/"),
        ("", "采样", "lessons/04-sampling/"),
    ],
    ids=["en-attention", "en-perplexity", "zh-attention", "zh-perplexity", "zh-sampling"],
)
def test_search_finds_the_lesson(tab, start, query, expected):
    with tab.clean():
        tab.go(start)
        hrefs = _search(tab.page, query)
    assert any(re.split(r"[?#]", h)[0] == tab.base + expected for h in hrefs), hrefs
