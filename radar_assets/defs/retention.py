"""Retention and compaction jobs and their schedules (the work is :mod:`radar_assets.lib.retention`).

Both run in the catalog writer's pool (size 1), so they never publish at the same time as ``catalog_snapshot``.
"""

from datetime import UTC, datetime

import dagster as dg

from radar_assets.defs.catalog.assets import CATALOG_POOL
from radar_assets.defs.catalog.resources import CatalogResource
from radar_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    sweeps_days, packages_days = settings.retention.sweeps_days, settings.retention.packages_days

    @dg.op(
        pool=CATALOG_POOL, description="Expire rendered sweeps and package versions older than the retention"
    )
    def expire_published_files(context: dg.OpExecutionContext, catalog: CatalogResource) -> None:
        # Imported here, not at module level: the retention rules (pyarrow, DuckDB, the packager) would
        # otherwise load in every process that loads the code location, every run included.
        from radar_assets.lib.retention import PACKAGES, SWEEPS, expire

        cat = catalog.get_catalog()
        now = datetime.now(UTC)
        for family, days in {SWEEPS: sweeps_days, PACKAGES: packages_days}.items():
            if days is None:
                context.log.info(
                    f"{family.table}: kept forever (RADAR_ASSETS_RETENTION_{family.table.upper()}_DAYS unset)"
                )
                continue
            report = expire(cat, family, days, now, publish=cat.publish)
            context.log.info(
                f"{family.table}: {report.rows_expired} rows of {len(report.partitions)} partitions before "
                f"{report.cutoff_day} expired, {report.files_deleted} files deleted"
            )

    @dg.op(
        pool=CATALOG_POOL,
        description="Rebuild the DuckDB snapshot from every partition file (not incremental)",
    )
    def compact_catalog(context: dg.OpExecutionContext, catalog: CatalogResource) -> None:
        counts = catalog.get_catalog().publish(incremental=False)
        context.log.info(f"snapshot rebuilt: {counts}")

    @dg.job(
        name="retention_job",
        description="Deletes expired rendered files; catalog rows move to expired_* tables",
    )
    def retention_job():
        expire_published_files()

    @dg.job(name="catalog_compaction_job", description="Nightly full rebuild of the catalog snapshot")
    def catalog_compaction_job():
        compact_catalog()

    on = (
        dg.DefaultScheduleStatus.RUNNING
        if settings.automation.retention
        else dg.DefaultScheduleStatus.STOPPED
    )
    return dg.Definitions(
        jobs=[retention_job, catalog_compaction_job],
        schedules=[
            dg.ScheduleDefinition(
                name="retention_schedule",
                job=retention_job,
                cron_schedule=settings.retention.cron,
                execution_timezone="UTC",
                default_status=on,
                description="Deletes rendered sweeps and package versions older than RADAR_ASSETS_RETENTION_*_DAYS.",
            ),
            dg.ScheduleDefinition(
                name="catalog_compaction_schedule",
                job=catalog_compaction_job,
                cron_schedule=settings.retention.compaction_cron,
                execution_timezone="UTC",
                default_status=dg.DefaultScheduleStatus.RUNNING,
                description="Nightly full rebuild of the DuckDB snapshot (the incremental publish patches it all day).",
            ),
        ],
    )
