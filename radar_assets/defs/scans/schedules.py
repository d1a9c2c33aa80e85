"""Schedules of the scans family."""

from datetime import timedelta

import dagster as dg

from radar_assets.defs.partitions import site_day_key, sites_partitions
from radar_assets.defs.scans.assets import raw_scans

raw_scans_job = dg.define_asset_job("raw_scans_job", selection=[raw_scans])


def _daily(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    sites = sorted(context.instance.get_dynamic_partitions(sites_partitions.name))
    return [
        dg.RunRequest(run_key=f"raw_scans_daily:{site}:{day}", partition_key=site_day_key(site, day))
        for site in sites
    ]


def build_daily_schedule(status: dg.DefaultScheduleStatus) -> dg.ScheduleDefinition:
    """The daily finalisation with the default status the deployment chose (``Settings.automation``)."""
    return dg.schedule(
        name="raw_scans_daily",
        job=raw_scans_job,
        cron_schedule="15 0 * * *",
        execution_timezone="UTC",
        default_status=status,
        description="Finalises yesterday's site-days once the archive has all of them (files arrive late).",
    )(_daily)


raw_scans_daily = build_daily_schedule(dg.DefaultScheduleStatus.STOPPED)
