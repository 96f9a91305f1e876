"""Shared pytest fixtures: where the team's real data and reference sets live.

The real imaging files and the published statistics references are test data
that are never committed here.  They are found at ``../shared`` beside the
project root, or wherever the environment variable ``PARASPINALFAT_SHARED``
points; tests that need them skip with a message saying so when absent.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# the shared helper modules of the tests (slicer_wheel.py, voxel_oracle.py, report_results.py) import
# by name (--import-mode=importlib puts no test folder on sys.path)
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
SHARED_ENV = "PARASPINALFAT_SHARED"


def shared_root() -> Path:
    """The shared folder (may not exist)."""
    env = os.environ.get(SHARED_ENV)
    return Path(env) if env else PROJECT_ROOT.parent / "shared"


def _require(sub: str) -> Path:
    path = shared_root() / sub
    if not path.is_dir():
        pytest.skip(
            f"shared test data folder {path} is absent (set {SHARED_ENV} to the folder "
            f"holding '{sub}/' to run this test)"
        )
    return path


@pytest.fixture(scope="session")
def realdata() -> Path:
    """``shared/realdata``: real scanner/tool files (skip when absent)."""
    return _require("realdata")


@pytest.fixture(scope="session")
def statsref() -> Path:
    """``shared/statsref``: published statistics reference sets (skip when absent)."""
    return _require("statsref")
