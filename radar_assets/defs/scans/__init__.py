"""Dagster layer of the scans family: ``raw_scans``, its sensors and schedule."""

import dagster as dg

from radar_assets.defs.partitions import partitions_for
from radar_assets.defs.scans.assets import build_raw_scans
from radar_assets.defs.scans.schedules import build_daily_schedule, build_raw_scans_job
from radar_assets.defs.scans.sensors import build_source_sensor, sites_from_config_sensor
from radar_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    partitions = partitions_for(settings)
    job = build_raw_scans_job()
    return dg.Definitions(
        assets=[build_raw_scans(partitions)],
        jobs=[job],
        sensors=[
            build_source_sensor(_sensor_status(settings.automation.source_sensor), partitions),
            sites_from_config_sensor,
        ],
        schedules=[
            build_daily_schedule(_schedule_status(settings.automation.daily_schedule), partitions, job)
        ],
    )


def _sensor_status(on: bool) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED


def _schedule_status(on: bool) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if on else dg.DefaultScheduleStatus.STOPPED
