"""``rendered_sweeps``: per sweep and moment, a Web Mercator PNG, its bounds JSON and a value COG."""

import dagster as dg
from pydantic import Field

from radar_assets.defs.automation import SITE_DAY_DOWNSTREAM
from radar_assets.defs.catalog.assets import publish_if_last_of_backfill
from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
from radar_assets.defs.checks import partitioned_check
from radar_assets.defs.metadata import bullets_md, image_md
from radar_assets.defs.partitions import Partitions
from radar_assets.defs.resources import RenderResource
from radar_assets.defs.scans.assets import RAW_SCANS, level2_streams
from radar_assets.lib.partitions import asset_scoped

RENDERED_SWEEPS = "rendered_sweeps"
ALL_RENDERED = "every_sweep_rendered"
BOUNDS_NEAR_SITE = "bounds_within_500_km"


class RenderConfig(dg.Config):
    size: int | None = Field(
        default=None,
        ge=64,
        le=8192,
        description="Pixels on the long side of each PNG/COG; default RADAR_ASSETS_RENDER_SIZE (2048)",
    )
    moments: list[str] | None = Field(
        default=None, description="Moments to render; default REF everywhere, VEL where present"
    )


def _reject_reasons(table) -> list[tuple[str, str]]:
    if table is None:
        return []
    return sorted(
        zip(table.column("source_key").to_pylist(), table.column("reason").to_pylist(), strict=True)
    )


def _rendered_sweeps(
    context: dg.AssetExecutionContext,
    config: RenderConfig,
    store: StoreResource,
    catalog: CatalogResource,
    render: RenderResource,
) -> dg.MaterializeResult:
    # Imported here, not at module level: the renderer (pyarrow, numpy, pyproj, rasterio, PIL) would otherwise
    # load in every process that loads the code location, every run of every other asset included.
    from radar_assets.lib.scans import tables_equal
    from radar_assets.lib.sweeps import MAX_BOUNDS_KM, coverage_problems, render_partition

    render.apply()
    size = config.size or render.size
    cat = catalog.get_catalog()
    partition = context.partition_key
    scans = cat.read_partition("scans", partition)
    if scans is None:
        raise dg.Failure(f"no raw_scans rows for partition {partition}: materialise raw_scans first")
    previous = cat.read_partition("sweeps", partition)
    rejects_partition = asset_scoped("rendered_sweeps", partition)
    previous_rejects = cat.read_partition("rejects", rejects_partition)

    def progress(done: int, total: int) -> None:
        context.log.info(f"{partition}: rendered scan {done}/{total}")

    result = render_partition(
        scans,
        store.get_store(),
        partition,
        previous,
        size,
        config.moments,
        progress=progress,
        streams=level2_streams(render.cache_dir),
    )
    written = []
    if not tables_equal(previous, result.sweeps):
        written.append(cat.write_partition("sweeps", partition, result.sweeps))
    if _reject_reasons(previous_rejects) != _reject_reasons(result.rejects):
        written.append(cat.write_partition("rejects", rejects_partition, result.rejects))
    rejected = set(result.rejects.column("source_key").to_pylist())
    for reason in result.rejects.column("reason").to_pylist():
        context.log.warning(f"rejected: {reason}")
    problems = coverage_problems(scans, result.sweeps, rejected)
    metadata = {
        "dagster/row_count": result.sweeps.num_rows,
        "images_rendered": result.images,
        "scans_rendered": result.rendered_scans,
        "scans_reused": result.reused_scans,
        "decompressed_streams_reused": result.streams_reused,
        "rejected": len(rejected),
        "size_px": size,
        "catalog_files_written": dg.MetadataValue.json(written),
    }
    if result.location_from_site_table:
        metadata["location_from_site_table"] = dg.MetadataValue.md(
            "Message 1 volumes carry no site location; taken from the site table for: "
            + ", ".join(result.location_from_site_table)
        )
    if result.thumbnail:
        metadata["thumbnail"] = image_md(result.thumbnail, result.thumbnail_caption, "lowest sweep")
    # The last run of a raw_scans + rendered_sweeps backfill publishes the catalog itself (not ~25 s later).
    published = publish_if_last_of_backfill(context, catalog, (RAW_SCANS, RENDERED_SWEEPS))
    if published is not None:
        metadata["catalog_published"] = dg.MetadataValue.json(published)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=ALL_RENDERED,
                passed=not problems and not rejected,
                metadata={
                    "problems": bullets_md(problems),
                    "rejected": len(rejected),
                },
            ),  # fmt: skip
            dg.AssetCheckResult(
                check_name=BOUNDS_NEAR_SITE,
                passed=result.max_extent_km <= MAX_BOUNDS_KM,
                metadata={"max_extent_km": round(result.max_extent_km, 1), "limit_km": MAX_BOUNDS_KM},
            ),
        ],
    )


def build_rendered_sweeps(partitions: Partitions) -> dg.AssetsDefinition:
    """``rendered_sweeps`` on the deployment's partition grid."""
    return dg.asset(
        name=RENDERED_SWEEPS,
        partitions_def=partitions.site_day,
        deps=[RAW_SCANS],
        group_name="sweeps",
        automation_condition=SITE_DAY_DOWNSTREAM,
        kinds={"png", "geotiff", "parquet"},
        check_specs=[
            partitioned_check(
                ALL_RENDERED,
                asset="rendered_sweeps",
                description="Every sweep of every scan was rendered",
                partitions_def=partitions.site_day,
            ),
            partitioned_check(
                BOUNDS_NEAR_SITE,
                asset="rendered_sweeps",
                description="Image bounds lie within 500 km of the site",
                partitions_def=partitions.site_day,
            ),
        ],
        description="Sweep imagery in EPSG:3857 (transparent PNG + bounds JSON) and Cloud-Optimized GeoTIFFs of the values.",
    )(_rendered_sweeps)
