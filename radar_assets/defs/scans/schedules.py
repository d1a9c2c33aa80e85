"""Schedules of the scans family."""

from datetime import timedelta

import dagster as dg

from radar_assets.defs.partitions import Partitions, site_day_key, sites_partitions
from radar_assets.defs.scans.assets import RAW_SCANS

RAW_SCANS_JOB = "raw_scans_job"


def build_raw_scans_job():
    """``raw_scans`` only (its partitions come from the asset when the definitions resolve the job)."""
    # The key, not the string "raw_scans": a selection string is parsed with Dagster's ANTLR grammar, whose
    # import costs every process that loads the code location ~30 ms (same for the source sensor's target).
    return dg.define_asset_job(RAW_SCANS_JOB, selection=dg.AssetSelection.assets(RAW_SCANS))


def build_daily_schedule(
    status: dg.DefaultScheduleStatus, partitions: Partitions, job
) -> dg.ScheduleDefinition:
    """The daily finalisation with the default status the deployment chose (``Settings.automation``)."""

    def raw_scans_daily(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
        day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
        if not partitions.has_day(day):
            return dg.SkipReason(f"{day} is before the grid's first day {partitions.first_day}")
        sites = sorted(context.instance.get_dynamic_partitions(sites_partitions.name))
        return [
            dg.RunRequest(run_key=f"raw_scans_daily:{site}:{day}", partition_key=site_day_key(site, day))
            for site in sites
        ]

    return dg.schedule(
        name="raw_scans_daily",
        job=job,
        cron_schedule="15 0 * * *",
        execution_timezone="UTC",
        default_status=status,
        description="Finalises yesterday's site-days once the archive has all of them (files arrive late).",
    )(raw_scans_daily)
