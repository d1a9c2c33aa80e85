"""Dagster layer of the scans family: ``raw_scans``, its sensors and schedule."""

import dagster as dg

from radar_assets.defs.scans.assets import raw_scans
from radar_assets.defs.scans.schedules import build_daily_schedule, raw_scans_job
from radar_assets.defs.scans.sensors import build_source_sensor, sites_from_config_sensor
from radar_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[raw_scans],
        jobs=[raw_scans_job],
        sensors=[
            build_source_sensor(_sensor_status(settings.automation.source_sensor)),
            sites_from_config_sensor,
        ],
        schedules=[build_daily_schedule(_schedule_status(settings.automation.daily_schedule))],
    )


def _sensor_status(on: bool) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED


def _schedule_status(on: bool) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED
