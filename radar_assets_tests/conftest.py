"""Shared fixtures: the real sample data in ``../shared/data`` and free ports.

Tests that need the samples skip with a clear reason when the folder is absent, except in CI,
where ``RADAR_ASSETS_REQUIRE_SAMPLES=1`` turns the skip into a failure.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def _require_samples() -> bool:
    return os.environ.get("RADAR_ASSETS_REQUIRE_SAMPLES", "") not in ("", "0", "false")


def shared_path(*parts: str) -> Path:
    """Path under ``../shared/data``; skip (or fail in CI) when it is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"sample data {path} is absent (expected ../shared/data beside the project)"
        if _require_samples():
            pytest.fail(message + "; RADAR_ASSETS_REQUIRE_SAMPLES=1 is set")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_path()


def level2_samples() -> list[Path]:
    """Every real Level 2 volume in the shared data (for parametrisation; empty if absent)."""
    root = SHARED_DATA / "level2"
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name != "chunks")


def level3_samples() -> list[Path]:
    root = SHARED_DATA / "level3"
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True, scope="session")
def _lookup_cache_dir(tmp_path_factory):
    """Keep the renderer's on-disk lookup cache in a temporary folder, not in ``~/.cache`` (subprocesses inherit it)."""
    old = os.environ.get("RADAR_ASSETS_CACHE_DIR")
    os.environ["RADAR_ASSETS_CACHE_DIR"] = str(tmp_path_factory.mktemp("lookups"))
    yield
    if old is None:
        os.environ.pop("RADAR_ASSETS_CACHE_DIR", None)
    else:
        os.environ["RADAR_ASSETS_CACHE_DIR"] = old
