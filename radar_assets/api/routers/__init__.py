"""One module per resource; each exposes ``router``. A new resource is a new module added to ``ROUTERS``."""

from __future__ import annotations

from radar_assets.api.routers import (
    boundaries,
    echoes,
    events,
    health,
    legend,
    live,
    packages,
    products,
    scans,
    sites,
    sweeps,
    tiles,
    timeseries,
)

ROUTERS = (
    health,
    sites,
    scans,
    sweeps,
    products,
    echoes,
    events,
    live,
    tiles,
    legend,
    packages,
    boundaries,
    timeseries,
)
