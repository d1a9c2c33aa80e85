"""Declarative automation: new upstream partitions flow to every downstream asset without a click.

The one condition every partitioned downstream asset uses is :func:`downstream_condition`:

- it fires when an upstream partition was materialised (or will be requested on the same tick), and
  remembers that until the partition is handled (requested or materialised): ``any_deps_updated().since_last_handled()``;
- it never requests a partition whose upstream partition is missing or still running
  (``~any_deps_missing() & ~any_deps_in_progress()``), nor one already running (``~in_progress()``).

Unlike :meth:`dagster.AutomationCondition.eager` there is no ``in_latest_time_window()`` (a backfilled or late day
must flow too) and no ``newly_missing()``: with a dynamic site dimension every new site makes thousands of partitions
"newly missing" at once, and a condition that fires on missing partitions only waits on the dependency guard, so the
only trigger here is an upstream partition that *exists* and changed. The tests in
``radar_assets_tests/automation/test_conditions.py`` evaluate it against a real instance.

:data:`automation_sensor` evaluates these conditions (``catalog_automation_sensor`` keeps the single-writer
``catalog_snapshot`` on its own sensor, so a long publish never delays a render request), and
:func:`build_defs` adds the jobs a data engineer uses for backfills.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg

from radar_assets.defs.catalog.assets import CATALOG_SNAPSHOT
from radar_assets.defs.partitions import Partitions

AUTOMATION_SENSOR = "pipeline_automation_sensor"
SITE_DAY_JOB = "site_day_pipeline_job"
CATALOG_KEY = dg.AssetKey(CATALOG_SNAPSHOT)


def downstream_condition(ignore: Iterable[str | dg.AssetKey] = ()) -> dg.AutomationCondition:
    """Materialise a partition after its upstream partition changed, never before the upstream exists.

    Parameters
    ----------
    ignore
        Upstream assets whose updates must not trigger this asset (for example an unpartitioned registry
        such as ``boundaries``: one new boundary would otherwise mark every partition of the asset as updated).
        Their missing/in-progress state still guards requests.
    """
    updated = dg.AutomationCondition.any_deps_updated()
    ignored = [dg.AssetKey.from_coercible(k) for k in ignore]
    if ignored:
        updated = updated.ignore(dg.AssetSelection.assets(*ignored))
    return (
        updated.since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("after_upstream_partition")


#: The condition of ``rendered_sweeps`` and of every other site x day asset fed by one upstream site-day.
SITE_DAY_DOWNSTREAM = downstream_condition()

#: ``timeseries_summaries``: after its rendered sweeps; a new boundary does not re-request every site-day
#: (that is a backfill a person starts), but the summaries wait until the boundaries registry exists.
SUMMARIES_DOWNSTREAM = downstream_condition(ignore=["boundaries"])


def day_fan_in_condition(ignore: Iterable[str | dg.AssetKey] = ()) -> dg.AutomationCondition:
    """For an asset whose partition reads one day of *every* site (``clipped_packages``: boundary x day).

    Most sites have no data on most days, so "all upstream partitions exist" (``~any_deps_missing()``)
    would never hold; instead the trigger itself proves existence: an upstream partition of that day was
    materialised. Registries in ``ignore`` must exist but do not trigger.
    """
    ignored = [dg.AssetKey.from_coercible(k) for k in ignore]
    updated = dg.AutomationCondition.any_deps_updated()
    condition = ~dg.AutomationCondition.any_deps_in_progress() & ~dg.AutomationCondition.in_progress()
    if ignored:
        selection = dg.AssetSelection.assets(*ignored)
        updated = updated.ignore(selection)
        condition = ~dg.AutomationCondition.any_deps_missing().allow(selection) & condition
    return (updated.since_last_handled() & condition).with_label("after_any_upstream_partition_of_the_day")


#: ``clipped_packages``: after any site's summaries of that day changed, for every registered boundary.
PACKAGES_DOWNSTREAM = day_fan_in_condition(ignore=["boundaries"])

automation_sensor = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=dg.AssetSelection.all() - dg.AssetSelection.assets(CATALOG_KEY),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description=(
        "Evaluates the downstream assets' automation conditions: a new or changed upstream partition "
        "(raw_scans from the source sensor) becomes rendered sweeps, summaries and packages."
    ),
)


def _keys(assets: Iterable) -> list[tuple[dg.AssetKey, object]]:
    out = []
    for asset in assets:
        if isinstance(asset, dg.AssetsDefinition):
            out += [(key, asset.partitions_def) for key in asset.keys]
    return out


def site_day_keys(assets: Sequence, partitions: Partitions) -> list[dg.AssetKey]:
    """Keys of the site x day assets among ``assets`` (the selection of the site-day pipeline job)."""
    return sorted(
        (key for key, pd in _keys(assets) if pd == partitions.site_day), key=lambda k: k.to_user_string()
    )


def build_defs(assets: Sequence, partitions: Partitions) -> dg.Definitions:
    """The automation sensor and the site-day pipeline job over ``assets`` (every family's assets)."""
    job = dg.define_asset_job(
        SITE_DAY_JOB,
        selection=dg.AssetSelection.assets(*site_day_keys(assets, partitions)),
        description=(
            "Every site x day asset (raw scans, rendered sweeps, summaries) of the selected partitions in one run "
            "per partition: the job to backfill ranges with; catalog_snapshot publishes after it by automation."
        ),
    )
    return dg.Definitions(jobs=[job], sensors=[automation_sensor])
