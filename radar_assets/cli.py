"""The ``radar-assets`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from radar_assets.settings import paths


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """radar-assets: partitioned, catalogued weather-radar assets on Dagster."""


# -- sites -------------------------------------------------------------------------------------------
@main.group()
def sites() -> None:
    """The dynamic site dimension of the site x day partitions."""


def _instance():
    import dagster as dg

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        home = str(paths().dagster_home)
        os.environ["DAGSTER_HOME"] = home
        ensure_dagster_home(Path(home))
    return dg.DagsterInstance.get()


def ensure_dagster_home(home: Path) -> None:
    """Create DAGSTER_HOME with the project's embedded instance configuration."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        template = Path(__file__).resolve().parents[1] / "dagster.yaml"
        target.write_text(template.read_text())


@sites.command("add")
@click.argument("site_ids", nargs=-1, required=True)
def sites_add(site_ids: tuple[str, ...]) -> None:
    """Add sites (e.g. KLOT KTLX) to the site dimension; no deploy needed."""
    from radar_assets.defs.partitions import sites_partitions
    from radar_assets.lib.sites import UnknownSiteError, site

    ids = []
    for sid in site_ids:
        try:
            ids.append(site(sid).id)
        except UnknownSiteError as exc:
            raise click.BadParameter(str(exc), param_hint="SITE_IDS") from exc
    instance = _instance()
    existing = set(instance.get_dynamic_partitions(sites_partitions.name))
    new = [s for s in dict.fromkeys(ids) if s not in existing]
    if new:
        instance.add_dynamic_partitions(sites_partitions.name, new)
    click.echo(
        f"added {len(new)} site(s): {' '.join(new) or '-'}; sites now: {' '.join(sorted(existing | set(new)))}"
    )


@sites.command("list")
def sites_list() -> None:
    """List the sites of the site dimension."""
    from radar_assets.defs.partitions import sites_partitions

    for s in sorted(_instance().get_dynamic_partitions(sites_partitions.name)):
        click.echo(s)


# -- source ------------------------------------------------------------------------------------------
@main.group()
def source() -> None:
    """Source archives in the public NOAA/Unidata layouts."""


def _target(url: str):
    from radar_assets.lib.store import S3Store, open_store

    store = open_store(url)
    if isinstance(store, S3Store):
        store.ensure_bucket()
    return store


@source.command("seed")
@click.option(
    "--from", "from_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option(
    "--to", "to_url", required=True, help="Folder or s3://bucket/prefix (endpoint from AWS_ENDPOINT_URL)"
)
def source_seed(from_dir: Path, to_url: str) -> None:
    """Put real radar files from a folder into a source archive under the public layouts."""
    from radar_assets.lib.seed import seed

    written, skipped = seed(from_dir, _target(to_url), log=click.echo)
    click.echo(f"seeded {written} file(s) into {to_url} ({skipped} skipped)")


# -- catalog -----------------------------------------------------------------------------------------
def _snapshot_dir(catalog_dir: str | None) -> Path:
    return Path(catalog_dir or os.environ.get("RADAR_ASSETS_CATALOG_DIR") or paths().catalog)


@main.group()
def catalog() -> None:
    """The DuckDB catalog."""


@catalog.command("sql")
@click.argument("query")
@click.option("--catalog-dir", default=None, help="Folder of catalog.duckdb (default .radar-assets/catalog)")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
def catalog_sql(query: str, catalog_dir: str | None, fmt: str) -> None:
    """Run a read-only query on the newest catalog snapshot."""
    from radar_assets.lib.catalog import CatalogError, query_readonly

    try:
        cols, rows = query_readonly(_snapshot_dir(catalog_dir) / "catalog.duckdb", query)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:  # DuckDB errors (unknown table, syntax) are the user's query, not a crash
        raise click.ClickException(f"query failed: {exc}") from exc
    click.echo(format_rows(cols, rows, fmt))


def format_rows(cols: list[str], rows: list[tuple], fmt: str = "table") -> str:
    if fmt == "json":
        import json

        return json.dumps([dict(zip(cols, r, strict=True)) for r in rows], default=str)
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(cols)
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    text = [[str(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()  # noqa: E731
    out = [line(cols), line(["-" * w for w in widths]), *(line(r) for r in text)]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


@catalog.command("publish")
def catalog_publish() -> None:
    """Publish a new catalog snapshot from the Parquet partitions (what the catalog_snapshot asset does)."""
    from radar_assets.definitions import build_resources

    cat = build_resources()["catalog"].get_catalog()
    counts = cat.publish()
    click.echo(f"published {cat.snapshot_path}: {counts}")


# -- demo --------------------------------------------------------------------------------------------
@main.command()
@click.option("--once", is_flag=True, help="Stop after the materialisation instead of serving the UI")
@click.option("--port", default=3000, show_default=True, help="Dagster UI port")
@click.option("--api-port", default=8000, show_default=True, help="Catalog API port")
@click.option("--hours", default=2, show_default=True, help="Hours of synthetic weather per site")
def demo(once: bool, port: int, api_port: int, hours: int) -> None:
    """Seed a local archive, materialise the sample partitions, print what was made, serve the UI."""
    from radar_assets.demo import run_demo

    sys.exit(run_demo(once=once, port=port, hours=hours, api_port=api_port))


def _register_optional() -> None:
    """Commands of the other families live in ``radar_assets.commands``."""
    from radar_assets.commands import register

    register(main, source)


_register_optional()

if __name__ == "__main__":
    main()
