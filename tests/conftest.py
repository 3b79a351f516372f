"""Shared fixtures: the real Xi'an data in ../shared (skipped where absent) and the demo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PLANNER_SHARED", ROOT.parent / "shared"))
XIAN = SHARED / "data" / "xian"
ORLIB = SHARED / "bench" / "orlib"
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def xian_dir() -> Path:
    """The real central Xi'an data; skips the test where ../shared is absent."""
    if not (XIAN / "xian_road.kml").is_file():
        pytest.skip(f"real Xi'an data not found at {XIAN} (../shared is absent in a fresh clone)")
    return XIAN


@pytest.fixture(scope="session")
def orlib_dir() -> Path:
    """OR-Library pmed instances; skips where ../shared is absent."""
    if not (ORLIB / "pmed1.txt").is_file():
        pytest.skip(f"OR-Library instances not found at {ORLIB} (../shared is absent)")
    return ORLIB
