"""Builds the Dagster ``Definitions``: assets, checks, sensors, schedules and resources per environment.

``RADAR_ASSETS_ENV=production`` takes every location from ``RADAR_ASSETS_*`` variables (read at run time
through ``dg.EnvVar``); the embedded default keeps everything under ``.radar-assets/``.
"""

from __future__ import annotations

import os

import dagster as dg

from radar_assets.defs import echoes, scans, sweeps
from radar_assets.defs.catalog.assets import build_catalog_snapshot, catalog_automation_sensor
from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
from radar_assets.defs.scans.resources import RadarSourceResource
from radar_assets.defs.scans.sensors import SitesConfig
from radar_assets.settings import paths

FAMILIES = [scans, sweeps, echoes]


def _env_or(name: str, default: str | None) -> str | dg.EnvVar | None:
    """An ``EnvVar`` when the variable is set (resolved at run time), else the embedded default."""
    return dg.EnvVar(name) if name in os.environ else default


def build_resources(environment: str | None = None) -> dict:
    environment = environment or os.environ.get("RADAR_ASSETS_ENV", "local")
    local = paths()
    store = StoreResource(
        url=_env_or("RADAR_ASSETS_STORE_URL", str(local.store)),
        endpoint_url=_env_or("RADAR_ASSETS_S3_ENDPOINT", None),
        access_key_id=_env_or("AWS_ACCESS_KEY_ID", None),
        secret_access_key=_env_or("AWS_SECRET_ACCESS_KEY", None),
    )
    if environment == "production":
        for required in ("RADAR_ASSETS_STORE_URL", "RADAR_ASSETS_SOURCE_URL", "RADAR_ASSETS_CATALOG_DIR"):
            if required not in os.environ:
                raise RuntimeError(f"RADAR_ASSETS_ENV=production needs {required}")
    source = RadarSourceResource(
        url=_env_or("RADAR_ASSETS_SOURCE_URL", str(local.source)),
        level3_url=_env_or("RADAR_ASSETS_LEVEL3_URL", None),
        endpoint_url=_env_or("RADAR_ASSETS_SOURCE_ENDPOINT", None),
        anonymous=os.environ.get("RADAR_ASSETS_SOURCE_ANONYMOUS", "") in ("1", "true", "yes"),
        access_key_id=_env_or("AWS_ACCESS_KEY_ID", None),
        secret_access_key=_env_or("AWS_SECRET_ACCESS_KEY", None),
    )
    resources = {
        "store": store,
        "source": source,
        "catalog": CatalogResource(
            store=store, snapshot_dir=_env_or("RADAR_ASSETS_CATALOG_DIR", str(local.catalog))
        ),
        "sites_config": SitesConfig(
            sites=[s for s in os.environ.get("RADAR_ASSETS_SITES", "").split(",") if s.strip()]
        ),
    }
    for family in FAMILIES:
        resources.update(getattr(family, "family_resources", {}))
    return resources


def build_definitions(environment: str | None = None) -> dg.Definitions:
    assets = [a for family in FAMILIES for a in family.assets]
    snapshot = build_catalog_snapshot(assets)
    return dg.Definitions(
        assets=[*assets, snapshot],
        asset_checks=[c for family in FAMILIES for c in getattr(family, "asset_checks", [])],
        jobs=[j for family in FAMILIES for j in getattr(family, "jobs", [])],
        sensors=[
            *(s for family in FAMILIES for s in getattr(family, "sensors", [])),
            catalog_automation_sensor,
        ],
        schedules=[s for family in FAMILIES for s in getattr(family, "schedules", [])],
        resources=build_resources(environment),
    )


defs = build_definitions()
