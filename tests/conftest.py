"""Hooks for the tests in tests/ (the Sybil set-up for docs/ and llmfund/ is ../conftest.py)."""

from __future__ import annotations

import site_helpers


def pytest_collection_finish(session) -> None:
    # The strict site build takes seconds: when a selected test needs it, start it now so it
    # runs beside the rest of the suite; tests/test_site.py waits for it.
    if any("built_site" in getattr(item, "fixturenames", ()) for item in session.items):
        site_helpers.start_site_build()
