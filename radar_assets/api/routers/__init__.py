"""One module per resource; each exposes ``router``. A new resource is a new module added to ``ROUTERS``."""

from __future__ import annotations

from radar_assets.api.routers import echoes, events, health, legend, packages, products, scans, sites, sweeps, tiles

ROUTERS = (health, sites, scans, sweeps, products, echoes, events, tiles, legend, packages)
