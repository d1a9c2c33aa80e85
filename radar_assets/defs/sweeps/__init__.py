"""Dagster layer of the sweeps family: ``rendered_sweeps``."""

import dagster as dg

from radar_assets.defs.sweeps.assets import rendered_sweeps
from radar_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[rendered_sweeps])
