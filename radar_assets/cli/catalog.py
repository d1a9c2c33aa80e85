"""``radar-assets catalog``: read-only SQL on the published snapshot, and publishing."""

from __future__ import annotations

from pathlib import Path

import click

from radar_assets.cli.context import settings


@click.group()
def catalog() -> None:
    """The DuckDB catalog."""


@catalog.command("sql")
@click.argument("query")
@click.option(
    "--catalog-dir", default=None, help="Folder of catalog.duckdb (default: RADAR_ASSETS_CATALOG_DIR)"
)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
def catalog_sql(query: str, catalog_dir: str | None, fmt: str) -> None:
    """Run a read-only query on the newest catalog snapshot."""
    from radar_assets.lib.catalog import SNAPSHOT_NAME, CatalogError, query_readonly

    snapshot = Path(catalog_dir) / SNAPSHOT_NAME if catalog_dir else settings().snapshot_path
    try:
        cols, rows = query_readonly(snapshot, query)
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
    from radar_assets.settings import open_catalog

    cat = open_catalog(settings())
    counts = cat.publish()
    click.echo(f"published {cat.snapshot_path}: {counts}")
