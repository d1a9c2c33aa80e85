"""Sensors of the scans family: new source files in the archive, and sites added from configuration."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from radar_assets.defs.partitions import site_day_key, sites_partitions
from radar_assets.defs.scans.assets import raw_scans
from radar_assets.defs.scans.resources import RadarSourceResource
from radar_assets.lib import partitions as keys
from radar_assets.lib.scans import list_partition_sources


def source_watermarks(source: RadarSourceResource, sites: list[str], days: list[str]) -> dict[str, str]:
    """Site-day key -> a watermark that changes whenever a file is added to or replaced in that site-day."""
    level2, level3 = source.level2(), source.level3()
    marks = {}
    for site in sites:
        for day in days:
            found = list_partition_sources(level2, site, day, source.level3_products, level3)
            if found:
                newest = max(parsed.key for parsed, _ in found)
                marks[keys.site_day(site, day)] = f"{len(found)}:{sum(size for _, size in found)}:{newest}"
    return marks


@dg.sensor(
    asset_selection=[raw_scans],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Lists today's and yesterday's keys of every site and requests raw_scans for site-days that changed.",
)
def raw_scans_source_sensor(
    context: dg.SensorEvaluationContext, source: RadarSourceResource
) -> dg.SensorResult:
    # The cursor holds the last watermark per site-day; run keys derive from the watermark, so a
    # re-evaluation after a crash requests the same run and Dagster de-duplicates it.
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    sites = sorted(context.instance.get_dynamic_partitions(sites_partitions.name))
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=n)).isoformat() for n in (1, 0)]
    marks = source_watermarks(source, sites, days)
    requests = [
        dg.RunRequest(
            run_key=f"raw_scans:{site_day}:{mark}",
            partition_key=site_day_key(*keys.split_site_day(site_day)),
            tags={"radar-assets/trigger": "source-sensor"},
        )
        for site_day, mark in sorted(marks.items())
        if seen.get(site_day) != mark
    ]
    # Keep only the watched window in the cursor so it does not grow without bound.
    cursor = {k: v for k, v in {**seen, **marks}.items() if keys.split_site_day(k)[1] in days}
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))


class SitesConfig(dg.ConfigurableResource):
    """Sites to keep in the ``sites`` partition dimension (besides those added with ``radar-assets sites add``)."""

    sites: list[str] = Field(default_factory=list)


@dg.sensor(
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds the configured sites to the dynamic site dimension.",
)
def sites_from_config_sensor(
    context: dg.SensorEvaluationContext, sites_config: SitesConfig
) -> dg.SensorResult:
    existing = set(context.instance.get_dynamic_partitions(sites_partitions.name))
    new = sorted({s.strip().upper() for s in sites_config.sites if s.strip()} - existing)
    if not new:
        return dg.SensorResult(skip_reason=dg.SkipReason("every configured site is already a partition"))
    return dg.SensorResult(dynamic_partitions_requests=[sites_partitions.build_add_request(new)])
