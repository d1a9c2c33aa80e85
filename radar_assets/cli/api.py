"""``radar-assets api``: serve the read-only catalog API with uvicorn.

Settings come from the options, then the ``RADAR_ASSETS_*`` variables of :class:`~radar_assets.settings.Settings`
(the same ones the Dagster services read, so the API opens the same store and catalog), then the embedded
defaults. With ``--workers`` > 1 uvicorn needs an import string, so the options are exported to the workers as
those variables.
"""

from __future__ import annotations

from pathlib import Path

import click


def overrides(home, catalog_dir, store, store_endpoint, cors_origin, cache_max_age) -> dict:
    """Settings arguments for the command's options (only those given)."""
    values: dict = {}
    if home is not None:
        values["home"] = Path(home)
    if catalog_dir is not None:
        values["catalog"] = {"dir": Path(catalog_dir)}
    store_values = {}
    if store is not None:
        store_values["url"] = store
    if store_endpoint is not None:
        store_values["endpoint"] = store_endpoint
    if store_values:
        values["store"] = store_values
    if cors_origin:
        values["cors_origins"] = list(cors_origin)
    if cache_max_age is not None:
        values["api"] = {"cache_max_age": cache_max_age}
    return values


def app_from_env():
    """uvicorn factory for ``--workers`` > 1 (settings from the environment)."""
    from radar_assets.api import create_app
    from radar_assets.settings import load_settings

    return create_app(load_settings())


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--home",
    "--root",
    "home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Embedded home (catalog in HOME/catalog, store in HOME/store); default RADAR_ASSETS_HOME.",
)
@click.option(
    "--catalog-dir", type=click.Path(file_okay=False, path_type=Path), help="Folder of catalog.duckdb."
)
@click.option("--store", help="Object store: a folder, file://PATH or s3://BUCKET/PREFIX.")
@click.option("--store-endpoint", help="S3 endpoint (SeaweedFS, MinIO); credentials from AWS_* variables.")
@click.option("--cors-origin", multiple=True, help="Allowed CORS origin (repeatable).")
@click.option("--cache-max-age", type=click.IntRange(min=0), help="max-age of list responses, seconds.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--log-level", default="info", show_default=True)
def api(
    host, port, home, catalog_dir, store, store_endpoint, cors_origin, cache_max_age, workers, log_level
) -> None:
    """Serve the read-only catalog API (OpenAPI docs at /docs)."""
    import uvicorn

    from radar_assets.api import create_app
    from radar_assets.cli.context import settings as load
    from radar_assets.settings import export_environment

    settings = load(**overrides(home, catalog_dir, store, store_endpoint, cors_origin, cache_max_age))
    click.echo(
        f"catalog API on http://{host}:{port} (docs at /docs), snapshot {settings.snapshot_path}", err=True
    )
    common = {"host": host, "port": port, "log_level": log_level, "timeout_graceful_shutdown": 5}
    if workers == 1:
        uvicorn.run(create_app(settings), **common)
        return
    export_environment(settings)
    uvicorn.run("radar_assets.cli.api:app_from_env", factory=True, workers=workers, **common)


if __name__ == "__main__":
    api()
