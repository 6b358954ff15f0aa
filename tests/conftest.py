"""Hooks for the tests in tests/ (the Sybil set-up for docs/ and llmfund/ is ../conftest.py).

The suite runs on pytest-xdist workers (``-n auto`` in pyproject.toml). The strict site build
is the slowest single step, so it starts as early as possible, once per run, in a process of
its own, and every worker that needs the site waits for that one build (site_helpers.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import site_helpers

TESTS = Path(__file__).resolve().parent
SITE_TESTS = {TESTS / name for name in ("test_site.py", "test_figures.py", "test_notebooks.py")}
_started = time.time()


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def _site_tests_requested(config) -> bool:
    """Whether the command line names tests that need the built site (all of them, by
    default). Only decides whether to start the build before collection."""
    for arg in config.args:
        path = Path(arg.split("::")[0])
        for base in (config.invocation_params.dir, config.rootpath):
            candidate = (base / path).resolve()
            if candidate.exists():
                if any(candidate == f or candidate in f.parents for f in SITE_TESTS):
                    return True
                break
    return False


def pytest_configure(config) -> None:
    if _is_worker(config):
        return
    # The first process of the run (pytest itself, or xdist's controller before it starts
    # the workers, which inherit the environment): one build directory and port for all.
    site_helpers.prepare_site_build()
    if _site_tests_requested(config):
        site_helpers.start_site_build()  # runs while the workers start and collect


def pytest_terminal_summary(terminalreporter, config) -> None:
    # Workers' output is not shown under xdist: the first process reports the build here.
    if _is_worker(config):
        return
    build = site_helpers.build_result()
    if build is not None:
        status = "ok" if build.returncode == 0 else f"FAILED (exit {build.returncode})"
        terminalreporter.write_line(f"site: strict build {status} in {build.seconds:.1f} s (in the background)")
    walk = site_helpers.ARTIFACTS / "browser-walk.txt"
    if walk.is_file() and walk.stat().st_mtime > _started:
        terminalreporter.write_line(f"browser: {walk.read_text(encoding='utf-8').strip()}")
    retries = site_helpers.ARTIFACTS / "browser-retries.txt"
    if retries.is_file() and retries.stat().st_mtime > _started:
        lines = retries.read_text(encoding="utf-8").splitlines()
        terminalreporter.write_line(f"browser: clicked again after {len(lines)} lost click(s) (see {retries.name})")


def pytest_unconfigure(config) -> None:
    if not _is_worker(config):
        site_helpers.clean_up_site_build()


def _needs_site(item) -> bool:
    return "built_site" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config, items) -> None:
    # Tests that need the built site go last, so a process that has other tests to run does
    # not wait for the build first.
    items[:] = [i for i in items if not _needs_site(i)] + [i for i in items if _needs_site(i)]


def pytest_collection_finish(session) -> None:
    # Started already unless the command line did not name the site tests (e.g. -k ...).
    if any(_needs_site(item) for item in session.items):
        site_helpers.start_site_build()


@pytest.fixture(scope="session")
def built_site() -> site_helpers.SiteBuild:
    """The run's strict build (``python -m mkdocs build --strict``), started in the
    background at the start of the run and shared by every test and worker that needs it."""
    return site_helpers.finish_site_build()


@pytest.fixture(scope="session")
def site(built_site) -> Path:
    if built_site.returncode != 0:
        pytest.fail("the site does not build (see test_strict_build_is_clean)", pytrace=False)
    return built_site.site
