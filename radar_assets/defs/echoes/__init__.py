"""Dagster layer of the live-feed family: ``live_echoes``, its feed sensor and checks, the spool resource, and
the hourly spool retention schedule."""

import dagster as dg

from radar_assets.defs.echoes.assets import FEED_POOL, build_live_echoes
from radar_assets.defs.echoes.checks import asset_checks
from radar_assets.defs.echoes.resources import FeedSpoolResource
from radar_assets.defs.echoes.retention import feed_spool_retention_job, feed_spool_retention_schedule
from radar_assets.defs.echoes.sensors import build_feed_sensor
from radar_assets.defs.partitions import partitions_for
from radar_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    partitions = partitions_for(settings)
    return dg.Definitions(
        assets=[build_live_echoes(partitions)],
        asset_checks=asset_checks,
        sensors=[build_feed_sensor(partitions, settings)],
        jobs=[feed_spool_retention_job],
        schedules=[feed_spool_retention_schedule],
        resources={
            "feed_spool": FeedSpoolResource(
                spool_dir=str(settings.feed.spool_dir), retention_hours=settings.feed.retention_hours
            )
        },
    )


__all__ = ["FEED_POOL", "build_defs"]
