"""``catalog_snapshot``: the single writer that publishes a new DuckDB snapshot of every catalog table."""

import fcntl
from collections.abc import Collection, Sequence

import dagster as dg

from radar_assets.defs.catalog.resources import CatalogResource
from radar_assets.defs.runs import UNFINISHED

CATALOG_SNAPSHOT = "catalog_snapshot"
CATALOG_POOL = "duckdb_writer"

# Publish when the snapshot is missing or after any upstream partition lands; missing upstream partitions
# are normal (most days are never materialised), so unlike ``eager()`` this does not wait for all of them.
# "Landed after the last publish" and "landed after the last request" are two ``since``s whose trigger and
# reset each carry their materialisation/request times, so when one tick first sees both a publish and an
# upstream partition that landed after it, the later one wins. Dagster keeps those times only through
# ``any_deps_match`` of ``newly_updated()`` (not through ``any_deps_updated()``, ``|`` or ``&``):
# ``any_deps_updated().since_last_handled()`` let the publish win, and that partition was never published.
_UPDATED = dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated())
PUBLISH_CONDITION = (
    (
        dg.AutomationCondition.missing().since_last_handled()
        | (
            _UPDATED.since(dg.AutomationCondition.newly_updated())
            & _UPDATED.since(dg.AutomationCondition.newly_requested())
        )
    )
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)


def build_catalog_snapshot(deps: Sequence[dg.AssetsDefinition | dg.AssetKey | str]) -> dg.AssetsDefinition:
    @dg.asset(
        name=CATALOG_SNAPSHOT,
        deps=list(deps),
        group_name="catalog",
        kinds={"duckdb"},
        pool=CATALOG_POOL,
        automation_condition=PUBLISH_CONDITION,
        description="DuckDB snapshot of every catalog table, swapped in atomically for the API.",
    )
    def catalog_snapshot(context: dg.AssetExecutionContext, catalog: CatalogResource) -> dg.MaterializeResult:
        cat = catalog.get_catalog()
        counts = cat.publish()
        context.log.info(f"published {cat.snapshot_path}: {counts}")
        return dg.MaterializeResult(
            metadata={
                "snapshot": dg.MetadataValue.path(str(cat.snapshot_path)),
                "row_counts": dg.MetadataValue.json(counts),
                **{f"rows/{table}": n for table, n in counts.items()},
            }
        )

    return catalog_snapshot


#: Run tag set by a backfill run once its catalog rows are written (see :func:`publish_if_last_of_backfill`).
ROWS_WRITTEN_TAG = "radar-assets/catalog-rows-written"
_BACKFILL_TAG = "dagster/backfill"


def publish_if_last_of_backfill(
    context: dg.AssetExecutionContext, catalog: CatalogResource, assets: Collection[str]
) -> dict[str, int] | None:
    """Publish the catalog snapshot from the last run of a backfill, once every run's rows are written.

    A backfill's runs are created by the backfill daemon with the backfill's assets only, so
    ``catalog_snapshot`` cannot be in them (an unpartitioned asset after partitioned ones waits for
    another daemon iteration, 30 s) and would otherwise be published by ``catalog_automation_sensor``
    after the last run ended (~25 s: its interval plus a run start). Instead, the step that writes a run's
    last catalog rows calls this when the run's assets are all in ``assets`` (the caller and its upstream:
    with further catalog writers in the run, their rows would be missing, so the sensor publishes): the run
    tags itself :data:`ROWS_WRITTEN_TAG` and, if no other unfinished run of its backfill lacks that tag,
    publishes. The tag and the check are made under one file lock, so of two runs finishing together the
    second always sees the first's tag: exactly one publishes, after every run's rows are in the store.

    ``catalog_snapshot`` itself still runs afterwards by automation (its upstream changed): the publish is
    incremental, so it finds nothing to do. Returns the published row counts, or None when not published
    (not a backfill run, other catalog writers in the run, or other runs of the backfill still writing).
    """
    backfill = context.run.tags.get(_BACKFILL_TAG)
    # The run's assets: its asset selection (a backfill's runs), else every asset its job executes.
    keys = context.run.asset_selection or context.job_def.asset_layer.selected_asset_keys
    selected = {key.to_user_string() for key in keys}
    if backfill is None or not selected or not selected <= set(assets):
        return None
    cat = catalog.get_catalog()
    instance = context.instance
    cat.snapshot_dir.mkdir(parents=True, exist_ok=True)
    with open(cat.snapshot_dir / ".backfill-runs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            instance.add_run_tags(context.run.run_id, {ROWS_WRITTEN_TAG: "true"})
            runs = instance.get_runs(
                filters=dg.RunsFilter(tags={_BACKFILL_TAG: backfill}, statuses=UNFINISHED)
            )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    writing = [r.run_id for r in runs if r.run_id != context.run.run_id and ROWS_WRITTEN_TAG not in r.tags]
    if writing:
        context.log.info(
            f"{len(writing)} other run(s) of backfill {backfill} still writing: the last one publishes"
        )
        return None
    counts = cat.publish()
    context.log.info(f"last run of backfill {backfill}: published {cat.snapshot_path}: {counts}")
    return counts


catalog_automation_sensor = dg.AutomationConditionSensorDefinition(
    "catalog_automation_sensor",
    target=dg.AssetSelection.assets(CATALOG_SNAPSHOT),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description="Evaluates catalog_snapshot's automation condition: publish after upstream partitions land.",
)
