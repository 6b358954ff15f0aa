"""``python -m llmfund``: the course's command line (see :mod:`llmfund.cli`)."""

from __future__ import annotations

from llmfund.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
