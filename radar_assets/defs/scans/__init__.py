"""Dagster layer of the scans family: ``raw_scans``, its sensors and schedule."""

import dagster as dg

from radar_assets.defs.scans.assets import raw_scans
from radar_assets.defs.scans.schedules import raw_scans_daily, raw_scans_job
from radar_assets.defs.scans.sensors import raw_scans_source_sensor, sites_from_config_sensor
from radar_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[raw_scans],
        jobs=[raw_scans_job],
        sensors=[raw_scans_source_sensor, sites_from_config_sensor],
        schedules=[raw_scans_daily],
    )
