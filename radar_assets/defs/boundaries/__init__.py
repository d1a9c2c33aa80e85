"""Dagster layer of the boundaries family: the ``boundaries`` registry asset (its ids are the dynamic
``boundaries`` partition dimension)."""

import dagster as dg

from radar_assets.defs.boundaries.assets import boundaries
from radar_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[boundaries])
