"""The one owner of partition-key formats: the strings that name a partition in catalog files and run tags.

Dagster spells a multi-partition key as its dimension values joined by ``|`` in dimension-name order
(``day|site`` -> ``2021-06-25|KLOT``; ``boundary|day`` -> ``IL-17031|2021-06-25``), and an hourly key as
``YYYY-MM-DD-HH:MM``. ``lib`` code takes plain values (site, day, boundary, hour) and builds the key here, so
the format is spelled once; ``defs/partitions.py`` declares the Dagster definitions with the same dimension names.

Invariants
----------
- ``split_site_day(site_day(site, day)) == (site, day)`` and likewise for every pair below.
- Keys never contain ``/``; :func:`radar_assets.lib.catalog.partition_file` maps them to file names.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

SEPARATOR = "|"
HOUR_FORMAT = "%Y-%m-%d-%H:%M"
DAY_FORMAT = "%Y-%m-%d"
HOUR_US = 3_600_000_000


def site_day(site: str, day: str) -> str:
    """Key of a site x day partition (dimensions ``day`` and ``site``, in name order)."""
    return f"{day}{SEPARATOR}{site}"


def split_site_day(key: str) -> tuple[str, str]:
    """``(site, day)`` of a site x day key."""
    day, site = key.split(SEPARATOR)
    return site, day


def boundary_day(boundary: str, day: str) -> str:
    """Key of a boundary x day partition (dimensions ``boundary`` and ``day``, in name order)."""
    return f"{boundary}{SEPARATOR}{day}"


def split_boundary_day(key: str) -> tuple[str, str]:
    """``(boundary, day)`` of a boundary x day key."""
    boundary, day = key.split(SEPARATOR)
    return boundary, day


def asset_scoped(asset: str, key: str) -> str:
    """Catalog partition name for rows one asset writes into a table shared by several assets
    (``rejects``): the asset name first, so two assets never replace each other's rows."""
    return f"{asset}{SEPARATOR}{key}"


def hour_key(t_us: int) -> str:
    """Hourly partition key (``2026-11-21-14:00``) of a time in microseconds since the epoch."""
    return _hour_key(t_us // HOUR_US)


@functools.lru_cache(maxsize=4096)
def _hour_key(hour: int) -> str:
    return datetime.fromtimestamp(hour * 3600, UTC).strftime(HOUR_FORMAT)


def hour_start_us(key: str) -> int:
    """Inverse of :func:`hour_key`: the first microsecond of the hour."""
    return int(datetime.strptime(key, HOUR_FORMAT).replace(tzinfo=UTC).timestamp()) * 1_000_000
