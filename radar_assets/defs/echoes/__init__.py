"""Dagster layer of the live-feed family: ``live_echoes``, its feed sensor and checks, the spool resource.

``definitions.py`` picks up ``assets``, ``asset_checks``, ``sensors`` and ``family_resources`` (``resources``
is the same dict).
"""

import os

from radar_assets.defs.echoes.assets import FEED_POOL, live_echoes
from radar_assets.defs.echoes.checks import asset_checks
from radar_assets.defs.echoes.resources import FeedSpoolResource
from radar_assets.defs.echoes.sensors import sensors
from radar_assets.settings import paths


def _spool_resource() -> FeedSpoolResource:
    import dagster as dg

    spool = (
        dg.EnvVar("RADAR_ASSETS_SPOOL_DIR") if "RADAR_ASSETS_SPOOL_DIR" in os.environ else str(paths().spool)
    )
    return FeedSpoolResource(spool_dir=spool)


assets = [live_echoes]
jobs: list = []
schedules: list = []
resources = {"feed_spool": _spool_resource()}
family_resources = resources

__all__ = [
    "FEED_POOL",
    "asset_checks",
    "assets",
    "family_resources",
    "jobs",
    "resources",
    "schedules",
    "sensors",
]
