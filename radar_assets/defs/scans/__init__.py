"""Dagster layer of the scans family: ``raw_scans``, its sensors and schedule."""

from radar_assets.defs.scans.assets import raw_scans
from radar_assets.defs.scans.schedules import raw_scans_daily, raw_scans_job
from radar_assets.defs.scans.sensors import raw_scans_source_sensor, sites_from_config_sensor

assets = [raw_scans]
jobs = [raw_scans_job]
sensors = [raw_scans_source_sensor, sites_from_config_sensor]
schedules = [raw_scans_daily]
