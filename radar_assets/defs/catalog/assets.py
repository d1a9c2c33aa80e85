"""``catalog_snapshot``: the single writer that publishes a new DuckDB snapshot of every catalog table."""

from collections.abc import Sequence

import dagster as dg

from radar_assets.defs.catalog.resources import CatalogResource

CATALOG_POOL = "duckdb_writer"

# Publish when the snapshot is missing or after any upstream partition lands; missing upstream partitions
# are normal (most days are never materialised), so unlike ``eager()`` this does not wait for all of them.
PUBLISH_CONDITION = (
    (dg.AutomationCondition.missing() | dg.AutomationCondition.any_deps_updated()).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)


def build_catalog_snapshot(deps: Sequence[dg.AssetsDefinition | dg.AssetKey | str]) -> dg.AssetsDefinition:
    @dg.asset(
        name="catalog_snapshot",
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


catalog_automation_sensor = dg.AutomationConditionSensorDefinition(
    "catalog_automation_sensor",
    target=dg.AssetSelection.assets("catalog_snapshot"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description="Evaluates catalog_snapshot's automation condition: publish after upstream partitions land.",
)
