"""``radar-assets boundaries``: the boundaries registry (catalog table ``boundaries``) and the dynamic
``boundaries`` partition dimension."""

from __future__ import annotations

import json
from pathlib import Path

import click

from radar_assets.cli.context import instance, settings


def _catalog(s):
    from radar_assets.settings import open_catalog

    return open_catalog(s)


def _report(inst, catalog, action: str) -> None:
    """Record the registry change as a materialisation of the ``boundaries`` asset (as if it had run), so
    the UI shows it and downstream automation that waits for the registry sees it."""
    import dagster as dg

    from radar_assets.lib.geo.boundaries import registered

    inst.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key="boundaries",
            description=f"radar-assets boundaries {action}",
            metadata={"dagster/row_count": registered(catalog).num_rows},
        )
    )


@click.group()
def boundaries() -> None:
    """Register boundary polygons (GeoJSON, Shapefile, GeoPackage) for zonal time series and packages."""


@boundaries.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--id-field", required=True, help="Attribute holding each feature's id.")
@click.option("--name-field", default=None, help="Attribute holding each feature's name (default: the id).")
@click.option("--prefix", default="", help="Prepended to every id, e.g. IL- (keeps files' ids apart).")
def boundaries_add(file: Path, id_field: str, name_field: str | None, prefix: str) -> None:
    """Register every feature of FILE: repaired where make_valid can, rejected (named) otherwise."""
    from radar_assets.defs.boundaries.assets import sync_partitions
    from radar_assets.lib.geo.boundaries import BoundaryFileError, add_file, registered

    s = settings()
    catalog = _catalog(s)
    try:
        load = add_file(catalog, file, id_field, name_field, prefix)
    except BoundaryFileError as exc:
        raise click.ClickException(str(exc)) from exc
    for reject in load.rejects:
        click.echo(f"rejected: {reject.message}", err=True)
    inst = instance(s)
    added, _removed = sync_partitions(inst, registered(catalog).column("id").to_pylist())
    _report(inst, catalog, f"add {file.name}")
    click.echo(
        f"{load.source_file}: registered {load.rows.num_rows} boundaries ({len(added)} new partitions), "
        f"rejected {len(load.rejects)}"
    )


@boundaries.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per boundary.")
def boundaries_list(as_json: bool) -> None:
    """List registered boundaries: id, name, area, source file."""
    from radar_assets.lib.geo.boundaries import registered

    table = registered(_catalog(settings()))
    for row in table.select(
        ["id", "name", "area_km2", "west", "south", "east", "north", "source_file"]
    ).to_pylist():
        if as_json:
            click.echo(json.dumps(row))
        else:
            click.echo(f"{row['id']}\t{row['name']}\t{row['area_km2']:.1f} km²\t{row['source_file']}")


@boundaries.command("remove")
@click.argument("ids", nargs=-1, required=True)
def boundaries_remove(ids: tuple[str, ...]) -> None:
    """Remove boundaries by id from the registry and the partition dimension."""
    from radar_assets.defs.boundaries.assets import sync_partitions
    from radar_assets.lib.geo.boundaries import registered, remove

    s = settings()
    catalog = _catalog(s)
    removed = remove(catalog, list(ids))
    unknown = sorted(set(ids) - set(removed))
    sync_partitions(instance(s), registered(catalog).column("id").to_pylist())
    click.echo(
        f"removed {len(removed)} boundaries" + (f"; not registered: {' '.join(unknown)}" if unknown else "")
    )
    if unknown and not removed:
        raise SystemExit(1)
