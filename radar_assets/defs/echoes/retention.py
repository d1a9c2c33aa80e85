"""Spool retention, hourly: the listener's segments that are old, landed in ``live_echoes`` and published go.

The rules live in :mod:`radar_assets.lib.feed.retention` (nothing un-landed or un-published is ever removed);
this module only runs them on a schedule with the spool and catalog resources. The window is
``RADAR_ASSETS_FEED_RETENTION_HOURS`` (``FeedSpoolResource.retention_hours``). The schedule starts running:
it can only remove data the catalog already holds.
"""

import dagster as dg

from radar_assets.defs.catalog.resources import CatalogResource
from radar_assets.defs.echoes.resources import FeedSpoolResource


@dg.op(description="Remove spool segments older than the window, landed in live_echoes and published.")
def prune_feed_spool(context: dg.OpExecutionContext, feed_spool: FeedSpoolResource, catalog: CatalogResource):
    # Imported here, not at module level: the rules read the catalog with DuckDB, which would otherwise load
    # in every process that loads the code location.
    from radar_assets.lib.feed.retention import prune_spool

    plan = prune_spool(
        feed_spool.get_spool(), catalog.get_catalog(), window_s=feed_spool.retention_hours * 3600.0
    )
    summary = plan.summary()
    context.log.info(f"spool retention: {summary}")
    return dg.Output(
        summary,
        metadata={
            "removed_segments": len(plan.removed),
            "bytes_freed": plan.bytes_freed,
            "kept_segments": len(plan.kept),
            "kept_by_reason": dg.MetadataValue.json(summary["kept_by_reason"]),
        },
    )


@dg.job(name="feed_spool_retention", description="Spool retention (see radar_assets.lib.feed.retention).")
def feed_spool_retention_job():
    prune_feed_spool()


feed_spool_retention_schedule = dg.ScheduleDefinition(
    name="feed_spool_retention_hourly",
    job=feed_spool_retention_job,
    cron_schedule="20 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Removes old spool segments whose records are in the published catalog.",
)
