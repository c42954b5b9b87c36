"""Where the repository and the compatibility data are, for tests that read project files."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMPAT = REPO / "tests" / "data" / "compat"
