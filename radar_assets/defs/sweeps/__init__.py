"""Dagster layer of the sweeps family: ``rendered_sweeps``."""

import dagster as dg

from radar_assets.defs.partitions import partitions_for
from radar_assets.defs.sweeps.assets import build_rendered_sweeps
from radar_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[build_rendered_sweeps(partitions_for(settings))])
