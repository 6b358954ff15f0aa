"""Helpers for tests/test_site.py: find fences in lesson Markdown, compare code across
languages, build the site and serve it the way GitHub Pages does (under the site_url path)."""

from __future__ import annotations

import contextlib
import doctest
import functools
import http.server
import importlib.util
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import token
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LANGUAGES = ("zh", "en")  # zh: default, at the site root; en: under /en/
ARTIFACTS = ROOT / "test-artifacts"

# Fence languages that a reader would take for Python. Only ```python runs (conftest.py).
PYTHONISH = {"python", "py", "python3", "py3", "pycon", "ipython", "ipython3", "pyi", "python-repl"}


# --- fences ----------------------------------------------------------------------------------

_OPEN = re.compile(r"^(?P<prefix>[ \t]*(?:>[ \t]?)*[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$")


@dataclass
class Fence:
    """A fenced code block as Markdown renders it (fences inside fences are content)."""

    start: int  # offset of the opening line
    end: int  # offset just after the closing line
    line: int  # 1-based line of the opening fence
    info: str
    body: str  # content, with the opening line's indentation removed

    @property
    def language(self) -> str:
        words = self.info.strip().split()
        return words[0].strip("{}").lstrip(".").lower() if words else ""


def scan_fences(text: str) -> list[Fence]:
    """Every fenced block of a Markdown text, at any indentation (admonitions, tabs, lists).

    Unlike a pure CommonMark parser this sees fences indented 4+ spaces too, because
    pymdownx (admonition, details, tabbed) nests them that way.
    """
    fences: list[Fence] = []
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i].rstrip("\n"))
        if not match or (match["fence"][0] == "`" and "`" in match["info"]):
            i += 1
            continue
        char, size, prefix = match["fence"][0], len(match["fence"]), match["prefix"]
        close = re.compile(r"^[ \t]*(?:>[ \t]?)*[ \t]*" + re.escape(char) + "{" + str(size) + r",}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j].rstrip("\n")):
            j += 1
        body_lines = []
        for line in lines[i + 1 : j]:
            body_lines.append(line[len(prefix) :] if line.startswith(prefix) else line.lstrip(" \t>"))
        fences.append(
            Fence(
                start=offsets[i],
                end=offsets[min(j + 1, len(lines))],
                line=i + 1,
                info=match["info"],
                body="".join(body_lines),
            )
        )
        i = j + 1
    return fences


# Sybil's markdown skip directive: <!-- skip: next "reason" -->. The reason is a Python
# expression (a string literal); without one Sybil reports the block as *passed* unrun.
SKIP_MARKER = re.compile(
    r"^[ \t]*<!--+\s*skip:?[ \t]*(?P<action>\w+)(?:[ \t]+(?P<reason>.*?))?\s*--+>[ \t]*$", re.MULTILINE
)


def lesson_parsers():
    """The parsers conftest.py gives Sybil for docs/, loaded from the real conftest.py."""
    spec = importlib.util.spec_from_file_location("_llmfund_root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lessons.parsers


def markdown_pages(language: str) -> list[str]:
    base = DOCS / language
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*.md"))


# --- comparing code across languages ---------------------------------------------------------

_STRING_PARTS = {token.STRING} | {
    getattr(token, name)
    for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(token, name)
}
_IGNORED = {token.COMMENT, token.NL, token.ENCODING, token.ENDMARKER}


def code_tokens(source: str) -> list[str]:
    """The code of ``source`` with comments dropped and every string literal (including an
    f-string with its fields, and implicitly concatenated strings) replaced by ``<str>``."""
    out: list[str] = []
    depth = 0  # inside an f-string (Python 3.12+ tokenizes its parts)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            name = getattr(token, "FSTRING_START", None)
            if tok.type == name:
                depth += 1
            elif depth and tok.type == getattr(token, "FSTRING_END", None):
                depth -= 1
                if not depth and (not out or out[-1] != "<str>"):
                    out.append("<str>")
                continue
            if depth:
                continue
            if tok.type in _IGNORED:
                continue
            if tok.type in _STRING_PARTS:
                if not out or out[-1] != "<str>":
                    out.append("<str>")
                continue
            if tok.type in (token.INDENT, token.DEDENT, token.NEWLINE):
                out.append(token.tok_name[tok.type])
                continue
            out.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        # Not valid Python on its own: compare the lines, comments and quoted text set aside.
        return [
            re.sub(r"(['\"]).*?\1", "<str>", line.split("#", 1)[0]).strip()
            for line in source.splitlines()
            if line.split("#", 1)[0].strip()
        ]
    return out


NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def numbers(text: str) -> list[str]:
    return NUMBER.findall(text)


def block_signature(body: str) -> tuple:
    """What must agree between the zh and en versions of one Python block.

    Plain blocks: the code tokens. Doctest blocks (``>>>``): the code tokens of every source
    line, and the numbers of every expected output (printed labels may be translated, the
    numbers the code computes may not).
    """
    if body.lstrip().startswith(">>>"):
        examples = doctest.DocTestParser().get_examples(body)
        return tuple((tuple(code_tokens(ex.source)), tuple(numbers(ex.want))) for ex in examples)
    return (tuple(code_tokens(body)),)


# --- building and serving the site -----------------------------------------------------------

PREFIX = "/llmfund"  # the path GitHub Pages serves the project site under (see site_url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _build_command(dest: Path, site_url: str | None) -> tuple[list[str], dict]:
    # NO_MKDOCS_2_WARNING only silences Material's end-of-life banner (plain text that names
    # the variable); real warnings are log records starting with "WARNING".
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    if site_url:
        env["LLMFUND_SITE_URL"] = site_url
    return [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(dest)], env


def build_site(dest: Path, site_url: str | None = None) -> subprocess.CompletedProcess:
    """``python -m mkdocs build --strict -d dest``; ``site_url`` overrides mkdocs.yml's
    (LLMFUND_SITE_URL), so a site built for a local server has a sitemap that matches it."""
    command, env = _build_command(dest, site_url)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@dataclass
class SiteBuild:
    site: Path
    port: int
    output: str
    returncode: int
    seconds: float


# One strict build per test run, shared by every process of the run. The process that starts
# pytest (alone, or as pytest-xdist's controller) picks a directory and a port and puts them
# in the environment, which the xdist workers inherit; the build itself runs as a separate
# process (``python tests/site_helpers.py build DIR URL``) that writes ``result.json`` when
# it ends, so any worker can wait for it and none has to own it.
SITE_DIR_VAR, SITE_PORT_VAR = "LLMFUND_TEST_SITE_DIR", "LLMFUND_TEST_SITE_PORT"


def prepare_site_build() -> None:
    """Called once per run, by the first pytest process, before any worker starts."""
    if not os.environ.get(SITE_DIR_VAR):
        os.environ[SITE_DIR_VAR] = tempfile.mkdtemp(prefix="llmfund-site-")
        os.environ[SITE_PORT_VAR] = str(free_port())


def _run_dir() -> tuple[Path, int]:
    prepare_site_build()  # outside pytest (or a plain import): a private directory
    return Path(os.environ[SITE_DIR_VAR]), int(os.environ[SITE_PORT_VAR])


def start_site_build() -> None:
    """Start the run's strict build in the background unless some process already did.

    It is built for the local server the browser tests use (site_url
    http://127.0.0.1:PORT/llmfund/). A lock makes the check-and-start atomic across workers.
    """
    import fcntl

    workdir, port = _run_dir()
    with open(workdir / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (workdir / "started").exists():
            return
        log = open(workdir / "build.log", "w", encoding="utf-8")  # a file: a pipe could fill up
        subprocess.Popen(
            [sys.executable, __file__, "build", str(workdir), f"http://127.0.0.1:{port}{PREFIX}/"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not killed with the worker that happened to start it
        )
        log.close()
        (workdir / "started").write_text(str(time.time()))


def finish_site_build(timeout: float = 300) -> SiteBuild:
    """Wait for the run's build (starting it if nobody has) and return it."""
    start_site_build()
    workdir, _ = _run_dir()
    deadline = time.monotonic() + timeout
    while (build := build_result()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the site build did not finish in {timeout:.0f} s ({workdir})")
        time.sleep(0.05)
    return build


def build_result() -> SiteBuild | None:
    """The run's build if it has finished, else None (it may not have been needed)."""
    workdir = os.environ.get(SITE_DIR_VAR)
    result = Path(workdir) / "result.json" if workdir else None
    if result is None or not result.is_file():
        return None
    data = json.loads(result.read_text(encoding="utf-8"))
    return SiteBuild(Path(workdir) / "site", int(os.environ[SITE_PORT_VAR]), data["output"], data["returncode"], data["seconds"])


def clean_up_site_build() -> None:
    """Called by the first pytest process when the run ends: stop a build still running
    and remove the run's directory."""
    import signal

    workdir = os.environ.get(SITE_DIR_VAR)
    if not workdir or not Path(workdir).is_dir():
        return
    pid_file = Path(workdir) / "pid"
    if pid_file.exists() and not (Path(workdir) / "result.json").exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    shutil.rmtree(workdir, ignore_errors=True)


def _build_main(workdir: Path, site_url: str) -> None:
    """The background build: mkdocs, then ``result.json`` (written last, atomically)."""
    (workdir / "pid").write_text(str(os.getpid()))
    started = time.perf_counter()
    try:
        done = build_site(workdir / "site", site_url)
        output, returncode = done.stdout + done.stderr, done.returncode
    except Exception as exc:  # a timeout or a missing mkdocs: report it as a failed build
        output, returncode = f"{type(exc).__name__}: {exc}", 1
    data = {"output": output, "returncode": returncode, "seconds": time.perf_counter() - started}
    (workdir / "result.tmp").write_text(json.dumps(data), encoding="utf-8")
    os.replace(workdir / "result.tmp", workdir / "result.json")


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A browser that navigates away drops its requests: not an error of the site.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(site: Path, port: int = 0, prefix: str = PREFIX) -> Iterator[str]:
    """Serve ``site`` on 127.0.0.1 under ``prefix`` (as GitHub Pages serves a project site);
    yields the base URL. Anything outside the prefix is a 404, so a root-absolute link shows."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path: str) -> str:
            bare = path.split("?", 1)[0].split("#", 1)[0]
            if prefix and not (bare == prefix or bare.startswith(prefix + "/")):
                return str(site / "__outside_the_site_path__")
            return super().translate_path(path[len(prefix) :] or "/")

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

    server = _QuietServer(("127.0.0.1", port), functools.partial(Handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{prefix}/"
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__" and sys.argv[1:2] == ["build"]:
    _build_main(Path(sys.argv[2]), sys.argv[3])
