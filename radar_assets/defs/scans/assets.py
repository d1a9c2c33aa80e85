"""``raw_scans``: source volumes (Level 2) and products (Level 3) copied into the store, one catalog row each."""

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
from radar_assets.defs.checks import partitioned_check
from radar_assets.defs.partitions import Partitions, split_site_day
from radar_assets.defs.scans.resources import RadarSourceResource

if TYPE_CHECKING:
    from radar_assets.defs.resources import RenderResource
    from radar_assets.lib.readers.stream_cache import StreamCache

RAW_SCANS = "raw_scans"
NO_REJECTS = "no_rejected_files"
ALL_CATALOGUED = "every_source_file_catalogued"


def level2_streams(lookup_cache_dir: str | None) -> "StreamCache | None":
    """Where ``raw_scans`` leaves the Level 2 streams it decompressed for ``rendered_sweeps`` to render from
    (``level2-streams`` beside the renderer's lookup cache, a folder local to the machine like it); None when
    the lookup cache is off."""
    if not lookup_cache_dir:
        return None
    from radar_assets.lib.readers.stream_cache import StreamCache

    return StreamCache(Path(lookup_cache_dir).parent / "level2-streams")


def _raw_scans(
    context: dg.AssetExecutionContext,
    source: RadarSourceResource,
    store: StoreResource,
    catalog: CatalogResource,
    render: "RenderResource",
) -> dg.MaterializeResult:
    # Imported here, not at module level: the ingest (pyarrow) would otherwise load in every process that
    # loads the code location, every run of every other asset included.
    from radar_assets.lib.scans import ingest_partition, tables_equal

    site, day = split_site_day(context.partition_key)
    cat = catalog.get_catalog()
    partition = context.partition_key

    def progress(done: int, total: int) -> None:
        if done == total or done % 20 == 0:
            context.log.info(f"{site} {day}: {done}/{total} new source files read")

    result = ingest_partition(
        source.level2(),
        store.get_store(),
        site,
        day,
        partition,
        previous_scans=(prev_scans := cat.read_partition("scans", partition)),
        previous_rejects=(prev_rejects := cat.read_partition("rejects", partition)),
        level3_products=source.level3_products,
        level3_source=source.level3(),
        progress=progress,
        streams=level2_streams(render.cache_dir),
    )
    written = []
    if not tables_equal(prev_scans, result.scans):
        written.append(cat.write_partition("scans", partition, result.scans))
    if not tables_equal(prev_rejects, result.rejects):
        written.append(cat.write_partition("rejects", partition, result.rejects))

    rejects = result.rejects.to_pylist()
    for row in rejects:
        context.log.warning(f"rejected {row['source_key']}: {row['reason']}")
    catalogued = result.scans.num_rows + result.rejects.num_rows
    levels = result.scans.column("level").to_pylist()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.scans.num_rows,
            "listed": result.listed,
            "copied": result.copied,
            "reused": result.reused,
            "rejected": len(rejects),
            "copied_bytes": result.copied_bytes,
            "level2_volumes": levels.count(2),
            "level3_products": levels.count(3),
            "catalog_files_written": dg.MetadataValue.json(written),
            "new_scans": dg.MetadataValue.json(result.new_scan_ids[:50]),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=NO_REJECTS,
                passed=not rejects,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "rejected": len(rejects),
                    "reasons": dg.MetadataValue.md(
                        "\n".join(f"- `{r['source_key']}`: {r['reason']}" for r in rejects) or "none"
                    ),
                },
            ),
            dg.AssetCheckResult(
                check_name=ALL_CATALOGUED,
                passed=catalogued == result.listed,
                metadata={"listed": result.listed, "catalogued": catalogued},
            ),
        ],
    )


def build_raw_scans(partitions: Partitions) -> dg.AssetsDefinition:
    """``raw_scans`` on the deployment's site x day grid."""
    # Imported here: radar_assets.defs.resources imports this package (its source resource and sensors).
    from radar_assets.defs.resources import RenderResource

    def raw_scans(
        context: dg.AssetExecutionContext,
        source: RadarSourceResource,
        store: StoreResource,
        catalog: CatalogResource,
        render: RenderResource,
    ) -> dg.MaterializeResult:
        return _raw_scans(context, source, store, catalog, render)

    return dg.asset(
        name=RAW_SCANS,
        partitions_def=partitions.site_day,
        group_name="scans",
        kinds={"s3", "parquet"},
        check_specs=[
            partitioned_check(
                NO_REJECTS,
                asset="raw_scans",
                description="No source file of the partition was rejected",
                partitions_def=partitions.site_day,
            ),
            partitioned_check(
                ALL_CATALOGUED,
                asset="raw_scans",
                description="Every listed source file has exactly one catalog row (scan or reject)",
                partitions_def=partitions.site_day,
            ),
        ],
        description="NEXRAD Level 2 volumes and Level 3 products of one site-day, copied into the platform store.",
    )(raw_scans)
