"""Shared fixtures: the real sample data in ``../shared/data`` and free ports.

Tests that need the samples skip with a clear reason when the folder is absent, except in CI,
where ``RADAR_ASSETS_REQUIRE_SAMPLES=1`` turns the skip into a failure.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

CACHE_VAR = "RADAR_ASSETS_RENDER_CACHE_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
#: First day of the partition grid for tests that materialise the samples of ../shared/data (2005-2022; the
#: oldest, KLIX 2005-08-28, is Message 1) through Dagster: the default grid starts on the demo's first day.
#: ``RADAR_ASSETS_PARTITIONS_FIRST_DAY`` of their subprocesses.
SAMPLE_FIRST_DAY = "2005-01-01"


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
    """Keep the renderer's on-disk lookup cache in a temporary folder, not in ``~/.cache``: set for this
    process, and through the setting's variable for subprocesses (Dagster runs, CLI)."""
    from radar_assets.lib.render.grid import lookup_cache_dir, set_lookup_cache_dir

    folder = tmp_path_factory.mktemp("lookups")
    old, old_env = lookup_cache_dir(), os.environ.get(CACHE_VAR)
    os.environ[CACHE_VAR] = str(folder)
    set_lookup_cache_dir(folder)
    yield
    set_lookup_cache_dir(old)
    if old_env is None:
        os.environ.pop(CACHE_VAR, None)
    else:
        os.environ[CACHE_VAR] = old_env


def settings_for(home, *, cors_origins: list[str] | None = None, **api):
    """Settings of the embedded layout under ``home`` with API fields overridden (``cache_max_age=30``)."""
    from radar_assets.settings import Settings

    return Settings(home=Path(home), cors_origins=cors_origins or [], api=api)


def sample_partitions():
    """The partition definitions of a grid starting on :data:`SAMPLE_FIRST_DAY`."""
    from radar_assets.defs.partitions import partitions_for
    from radar_assets.settings import PartitionsSettings

    return partitions_for(PartitionsSettings(first_day=SAMPLE_FIRST_DAY))
