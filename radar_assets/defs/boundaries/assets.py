"""``boundaries``: the registry of polygons (catalog table ``boundaries``), synchronised with the dynamic
``boundaries`` partition dimension.

Files are registered by ``radar-assets boundaries add`` or by this asset's config (``add``); either way the
asset publishes what the registry holds, adds the registered ids to the partition dimension and removes
ids that are no longer registered.
"""

import dagster as dg
from pydantic import Field

from radar_assets.defs.catalog.resources import CatalogResource
from radar_assets.defs.metadata import bullets_md
from radar_assets.defs.partitions import boundaries_partitions

BOUNDARIES = "boundaries"
NO_REJECTS = "no_rejected_features"


class BoundaryFile(dg.Config):
    path: str = Field(description="GeoJSON, Shapefile or GeoPackage to register")
    id_field: str = Field(description="Attribute holding each feature's id")
    name_field: str | None = Field(default=None, description="Attribute holding its name (default: the id)")
    prefix: str = Field(default="", description="Prepended to every id (e.g. IL-)")


class BoundariesConfig(dg.Config):
    add: list[BoundaryFile] = Field(default_factory=list, description="Files to register in this run")


def sync_partitions(instance: dg.DagsterInstance, ids: list[str]) -> tuple[list[str], list[str]]:
    """Make the dynamic ``boundaries`` dimension hold exactly ``ids``; returns (added, removed)."""
    name = boundaries_partitions.name
    existing = set(instance.get_dynamic_partitions(name))
    wanted = set(ids)
    added = sorted(wanted - existing)
    removed = sorted(existing - wanted)
    if added:
        instance.add_dynamic_partitions(name, added)
    for key in removed:
        instance.delete_dynamic_partition(name, key)
    return added, removed


@dg.asset(
    group_name="boundaries",
    kinds={"parquet", "geojson"},
    check_specs=[
        dg.AssetCheckSpec(
            NO_REJECTS, asset="boundaries", description="Every feature of the files added registered"
        )
    ],
    description="Boundary polygons in EPSG:4326 (GeoJSON/Shapefile/GeoPackage, repaired or rejected per feature); "
    "their ids form the dynamic `boundaries` partition dimension.",
)
def boundaries(
    context: dg.AssetExecutionContext, config: BoundariesConfig, catalog: CatalogResource
) -> dg.MaterializeResult:
    # Imported here, not at module level: the geo stack (shapely, pyproj, pyogrio) would otherwise load in
    # every process that loads the code location, every run of every other asset included.
    from radar_assets.lib.geo import boundaries as registry

    cat = catalog.get_catalog()
    rejects: list[str] = []
    files: list[str] = []
    for item in config.add:
        try:
            load = registry.add_file(cat, item.path, item.id_field, item.name_field, item.prefix)
        except registry.BoundaryFileError as exc:
            raise dg.Failure(str(exc)) from exc
        files.append(f"{load.source_file}: {load.rows.num_rows} registered, {len(load.rejects)} rejected")
        for reject in load.rejects:
            context.log.warning(f"rejected: {reject.message}")
            rejects.append(reject.message)
    table = registry.registered(cat)
    ids = table.column("id").to_pylist()
    added, removed = sync_partitions(context.instance, ids)
    sources = sorted(set(table.column("source_file").to_pylist()))
    preview = "\n".join(
        f"| {r['id']} | {r['name']} | {r['area_km2']:.0f} | {r['source_file']} |"
        for r in table.select(["id", "name", "area_km2", "source_file"]).slice(0, 20).to_pylist()
    )
    metadata = {
        "dagster/row_count": table.num_rows,
        "source_files": dg.MetadataValue.json(sources),
        "files_added": dg.MetadataValue.json(files),
        "partitions_added": len(added),
        "partitions_removed": len(removed),
        "boundaries": dg.MetadataValue.md(
            "| id | name | km² | source |\n|---|---|---:|---|\n" + preview
            + (f"\n\n… and {table.num_rows - 20} more" if table.num_rows > 20 else "")
        ),
    }  # fmt: skip
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=NO_REJECTS,
                passed=not rejects,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"rejected": bullets_md(rejects)},
            )
        ],
    )
