"""Sensors of the scans family: new source files in the archive, and sites added from configuration."""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from radar_assets.defs.partitions import Partitions, site_day_key, sites_partitions
from radar_assets.defs.scans.assets import RAW_SCANS
from radar_assets.defs.scans.resources import RadarSourceResource
from radar_assets.lib import partitions as keys

if TYPE_CHECKING:
    from radar_assets.lib.scans import Watermarks

WATCHED_DAYS = 2  # yesterday and today: the archive's late files land within a day


def _load_cursor(raw: str | None) -> "tuple[Watermarks, dict[str, str], str | None]":
    """(watermarks, pending site-days -> run key, the site the next pass starts at) from the cursor; an
    older cursor format starts afresh."""
    state = json.loads(raw) if raw else {}
    if state.get("v") != 2:
        return {}, {}, None
    return state["marks"], state["pending"], state.get("next")


def _rotated(sites: list[str], start: str | None) -> list[str]:
    """``sites`` (sorted) starting at ``start`` or the first site after it: a pass that ran out of time is
    continued where it stopped, so every site is reached however many sites the budget allows per tick."""
    if start is None:
        return sites
    at = next((i for i, site in enumerate(sites) if site >= start), 0)
    return sites[at:] + sites[:at]


def _run_key(site_day: str, marks: "Watermarks") -> str:
    # Derived from the partition's watermarks only: the same archive state seen from the same cursor (a
    # re-evaluated tick) gives the same key, which Dagster de-duplicates; any new key gives a new one.
    site, day = keys.split_site_day(site_day)
    state = json.dumps(marks.get(site, {}).get(day, {}), sort_keys=True)
    return f"raw_scans:{site_day}:{hashlib.sha256(state.encode()).hexdigest()[:16]}"


def evaluate_source(
    context: dg.SensorEvaluationContext, source: RadarSourceResource, partitions: Partitions
) -> dg.SensorResult:
    # Imported here, not at module level: the listing (pyarrow) would otherwise load in every process that
    # loads the code location, every run included.
    from radar_assets.lib.scans import list_new_sources

    # Cursor: per site, day and stream the last key listed; plus site-days with new keys whose listing
    # did not finish yet (requested once complete, so a day of 4000 keys is one request, not one per tick).
    marks, pending, start = _load_cursor(context.cursor)
    sites = sorted(context.instance.get_dynamic_partitions(sites_partitions.name))
    # A site deleted from the dimension, or a day before the grid's first day: no partitions any more.
    pending = {
        p: key
        for p, key in pending.items()
        if keys.split_site_day(p)[0] in sites and partitions.has_day(keys.split_site_day(p)[1])
    }
    today = datetime.now(UTC).date()
    watched = [(today - timedelta(days=n)).isoformat() for n in range(WATCHED_DAYS - 1, -1, -1)]
    days = [day for day in watched if partitions.has_day(day)]
    listing = list_new_sources(
        source.level2(),
        _rotated(sites, start),
        days,
        marks,
        level3=source.level3(),
        level3_products=source.level3_products,
        budget_s=source.sensor_budget_s,
        workers=source.sensor_workers,
    )
    for message in listing.errors.values():
        context.log.error(message)
    for site_day in listing.found:
        pending[site_day] = _run_key(site_day, listing.marks)
    ready = sorted(p for p in pending if p in listing.complete or keys.split_site_day(p)[1] not in days)
    requests = [
        dg.RunRequest(
            run_key=pending.pop(site_day),
            partition_key=site_day_key(*keys.split_site_day(site_day)),
            tags={"radar-assets/trigger": "source-sensor"},
        )
        for site_day in ready
    ]
    # Only the watched days keep watermarks, so the cursor does not grow with time.
    kept = {
        site: {day: st for day, st in by_day.items() if day in days}
        for site, by_day in listing.marks.items()
        if site in sites
    }
    state = {"v": 2, "marks": kept, "pending": pending}
    if listing.resume_site is not None:
        state["next"] = listing.resume_site
    cursor = json.dumps(state, sort_keys=True)
    if listing.out_of_time:
        context.log.info(
            f"listed {listing.listed} keys in the tick's budget; the next tick continues at {listing.resume_site}"
        )
    if not requests:
        reason = "; ".join(listing.errors.values()) or f"no new source keys ({listing.listed} listed)"
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def build_source_sensor(status: dg.DefaultSensorStatus, partitions: Partitions) -> dg.SensorDefinition:
    """The source sensor with the default status the deployment chose (``Settings.automation.source_sensor``);
    it watches only days of the grid (on the first day, yesterday is not one)."""

    def raw_scans_source_sensor(
        context: dg.SensorEvaluationContext, source: RadarSourceResource
    ) -> dg.SensorResult:
        return evaluate_source(context, source, partitions)

    return dg.sensor(
        name="raw_scans_source_sensor",
        asset_selection=dg.AssetSelection.assets(RAW_SCANS),
        minimum_interval_seconds=60,
        default_status=status,
        description=(
            "Lists yesterday's and today's new source keys per site (date/site prefixes, after each stream's "
            "watermark, paginated, within a time budget) and requests raw_scans for the site-days that changed."
        ),
    )(raw_scans_source_sensor)


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
