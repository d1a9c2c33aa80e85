"""``clipped_packages``: per boundary x day, a Frictionless data package published atomically.

The asset body only wires :mod:`radar_assets.lib.packages`: gather the day's rows of every site, build the
package in memory, publish it (versioned, ``datapackage.json`` last, catalog row switched, old version
removed after), then verify what is stored.

Two runs of one partition never overlap: the publication holds a per-partition lock (every process of a
host), and deployments limit runs per partition key with the run queue's tag concurrency
(``dagster/partition``, one run per unique value; see ``dagster.yaml`` and ``docs/packages.md``).
"""

import warnings
from importlib.metadata import PackageNotFoundError, version

import dagster as dg
from pydantic import Field

from radar_assets.defs.automation import PACKAGES_DOWNSTREAM
from radar_assets.defs.boundaries.assets import BOUNDARIES
from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
from radar_assets.defs.checks import partitioned_check
from radar_assets.defs.metadata import bullets_md, image_md
from radar_assets.defs.partitions import Partitions
from radar_assets.defs.timeseries.assets import TIMESERIES_SUMMARIES
from radar_assets.settings import Settings

CLIPPED_PACKAGES = "clipped_packages"
PACKAGE_VERIFIED = "package_validates_and_hashes_match"
# Upstream: every site's partition of the same day (the site dimension maps to all sites).
with warnings.catch_warnings():  # MultiPartitionMapping is marked beta; its behaviour here is tested
    warnings.simplefilter("ignore", dg.BetaWarning)
    DAY_MAPPING = dg.MultiPartitionMapping(
        {
            "day": dg.DimensionPartitionMapping(
                dimension_name="day", partition_mapping=dg.IdentityPartitionMapping()
            )
        }
    )


def _code_version() -> str:
    try:
        return f"radar-assets {version('radar-assets')}"
    except PackageNotFoundError:  # running from a source tree without metadata
        return "radar-assets (unknown version)"


class PackagesResource(dg.ConfigurableResource):
    """Where partition locks live and how archive keys are spelled in ``sources``."""

    lock_dir: str = Field(description="Folder of the per-partition publication locks (local to the host)")
    level2_url: str | None = Field(
        default=None, description="s3:// URL of the Level 2 archive, prefixed to keys"
    )
    level3_url: str | None = Field(
        default=None, description="s3:// URL of the Level 3 archive, prefixed to keys"
    )

    def source_urls(self) -> dict[int, str]:
        # Only public URLs: a local archive folder is a machine path and stays out of published packages.
        urls = {2: self.level2_url, 3: self.level3_url or self.level2_url}
        return {lv: u for lv, u in urls.items() if u and u.startswith(("s3://", "http://", "https://"))}


def packages_resource(settings: Settings) -> PackagesResource:
    return PackagesResource(
        lock_dir=str(settings.home / "locks"),
        level2_url=settings.source.url,
        level3_url=settings.source.level3_url,
    )


def _clipped_packages(
    context: dg.AssetExecutionContext,
    store: StoreResource,
    catalog: CatalogResource,
    packages: PackagesResource,
) -> dg.MaterializeResult:
    # Imported here, not at module level: the packager (pyarrow, numpy, shapely, rasterio, PIL,
    # frictionless) would otherwise load in every process that loads the code location, every run of every
    # other asset included.
    from radar_assets.lib.packages import build_package, publish_package, verify_package
    from radar_assets.lib.packages.inputs import UnknownBoundaryError, describe, gather_inputs, load_boundary

    dims = context.partition_key.keys_by_dimension
    boundary_id, day = dims["boundary"], dims["day"]
    cat = catalog.get_catalog()
    st = store.get_store()
    try:
        boundary = load_boundary(cat, boundary_id)
    except UnknownBoundaryError as exc:
        raise dg.Failure(str(exc)) from None
    sites = list(context.instance.get_dynamic_partitions("sites"))
    inputs = gather_inputs(cat, boundary, day, sites)
    context.log.info(f"inputs: {describe(inputs)}")
    built = build_package(
        st,
        boundary,
        day,
        inputs.sweeps,
        inputs.scans,
        inputs.timeseries,
        code_version=_code_version(),
        run_id=context.run.run_id,
        source_urls=packages.source_urls(),
    )
    result = publish_package(
        st, cat, built, boundary=boundary_id, day=day, run_id=context.run.run_id, lock_dir=packages.lock_dir
    )
    if built is None:
        note = f"no package: no sweep of {day} covers {boundary.name} (sites: {', '.join(sites) or 'none'})"
        context.log.info(note)
        return dg.MaterializeResult(
            metadata={"status": result.status, "resource_count": 0, "note": note},
            check_results=[
                dg.AssetCheckResult(check_name=PACKAGE_VERIFIED, passed=True, metadata={"note": note})
            ],
        )
    row = result.row
    check = verify_package(st, row["datapackage_key"])
    summary = check.validation.as_dict() if check.validation else {"valid": False}
    metadata = {
        "status": result.status,
        "version": built.version,
        "resource_count": row["resource_count"],
        "total_bytes": dg.MetadataValue.int(int(row["total_bytes"])),
        "datapackage_key": row["datapackage_key"],
        "datapackage_sha256": row["datapackage_sha256"],
        "sites": ", ".join(inputs.sites),
        "files_written": len(result.written),
        "files_deleted": len(result.deleted),
        "frictionless": dg.MetadataValue.json(summary),
    }
    if built.preview:
        metadata["preview"] = image_md(
            built.preview, f"{boundary.name}, {day}: maximum reflectivity", "preview"
        )
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=PACKAGE_VERIFIED,
                passed=check.ok,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "problems": bullets_md(check.problems),
                    "frictionless": dg.MetadataValue.md(
                        check.validation.text() if check.validation else "not run"
                    ),
                    "resources": check.resources,
                },
            )
        ],
    )


def build_clipped_packages(partitions: Partitions) -> dg.AssetsDefinition:
    """``clipped_packages`` on the deployment's partition grid."""
    return dg.asset(
        name=CLIPPED_PACKAGES,
        partitions_def=partitions.boundary_day,
        # The day's time series of every site (they need the day's sweeps, which the rasters come from) and the
        # registry the polygon comes from.
        deps=[dg.AssetDep(TIMESERIES_SUMMARIES, partition_mapping=DAY_MAPPING), BOUNDARIES],
        automation_condition=PACKAGES_DOWNSTREAM,
        group_name="packages",
        kinds={"geotiff", "csv", "json"},
        check_specs=[
            partitioned_check(
                PACKAGE_VERIFIED,
                asset="clipped_packages",
                description="datapackage.json passes frictionless and every listed sha256 matches the stored bytes",
                partitions_def=partitions.boundary_day,
            )
        ],
        description=(
            "Per boundary and day: the value rasters clipped by the polygon (cells outside are nodata), the "
            "boundary's time series as CSV, a preview and a Frictionless datapackage.json with sha256, licence, "
            "sources and provenance; published atomically under a content-derived version."
        ),
    )(_clipped_packages)
