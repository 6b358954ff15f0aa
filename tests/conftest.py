"""Hooks for the tests in tests/ (the Sybil set-up for docs/ and llmfund/ is ../conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import site_helpers


def pytest_collection_finish(session) -> None:
    # The strict site build takes seconds: when a selected test needs it, start it now so it
    # runs beside the rest of the suite; tests/test_site.py waits for it.
    if any("built_site" in getattr(item, "fixturenames", ()) for item in session.items):
        site_helpers.start_site_build()


@pytest.fixture(scope="session")
def built_site() -> site_helpers.SiteBuild:
    """The strict build (``python -m mkdocs build --strict``), started in the background
    right after collection and shared by every test that needs the built site."""
    return site_helpers.finish_site_build()


@pytest.fixture(scope="session")
def site(built_site) -> Path:
    if built_site.returncode != 0:
        pytest.fail("the site does not build (see test_strict_build_is_clean)", pytrace=False)
    return built_site.site
