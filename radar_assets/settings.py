"""Where the embedded default keeps its state, and which settings the environment may override.

The embedded default needs no configuration: everything lives under ``.radar-assets/`` in the working
directory (or ``RADAR_ASSETS_HOME``). Production sets the ``RADAR_ASSETS_*`` variables listed here
(see ``docker/``); secrets are passed to resources as ``dg.EnvVar`` so they are read at run time only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VARS = {
    "RADAR_ASSETS_HOME": "root of the embedded default's state (default .radar-assets)",
    "RADAR_ASSETS_STORE_URL": "platform store: folder or s3://bucket/prefix",
    "RADAR_ASSETS_SOURCE_URL": "Level 2 source archive: folder or s3://bucket/prefix",
    "RADAR_ASSETS_LEVEL3_URL": "Level 3 source archive (defaults to the Level 2 one)",
    "RADAR_ASSETS_SOURCE_ANONYMOUS": "1 for unsigned requests to the public NOAA/Unidata buckets",
    "RADAR_ASSETS_SOURCE_ENDPOINT": "S3 endpoint of the source archive",
    "RADAR_ASSETS_S3_ENDPOINT": "S3 endpoint of the platform store (SeaweedFS, MinIO)",
    "RADAR_ASSETS_CATALOG_DIR": "folder of the published DuckDB snapshot",
    "RADAR_ASSETS_SPOOL_DIR": "folder of the live-feed spool",
    "RADAR_ASSETS_SITES": "comma-separated sites added to the site dimension by a sensor",
    "RADAR_ASSETS_CACHE_DIR": "renderer's polar-lookup cache (default ~/.cache/radar-assets/lookups; 'off' disables)",
}


@dataclass(frozen=True)
class Paths:
    home: Path

    @property
    def store(self) -> Path:
        return self.home / "store"

    @property
    def source(self) -> Path:
        return self.home / "source"

    @property
    def catalog(self) -> Path:
        return self.home / "catalog"

    @property
    def spool(self) -> Path:
        return self.home / "spool"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"


def paths(home: str | Path | None = None) -> Paths:
    return Paths(Path(home or os.environ.get("RADAR_ASSETS_HOME") or ".radar-assets").resolve())
