"""``radar-assets api``: serve the read-only catalog API with uvicorn.

Settings come from the options, then ``RADAR_ASSETS_API_*`` environment variables, then defaults
(the embedded layout under ``.radar-assets/``). With ``--workers`` > 1 uvicorn needs an import string, so
the options are handed to the workers as those environment variables.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from radar_assets.lib.catalog import SNAPSHOT_NAME


def _overrides(
    root, snapshot, store, s3_endpoint_url, s3_region, s3_anonymous, cors_origin, cache_max_age
) -> dict:
    values: dict = {}
    if root is not None:
        values["snapshot_path"] = Path(root) / "catalog" / SNAPSHOT_NAME
        values["store_url"] = str(Path(root) / "store")
    if snapshot is not None:
        values["snapshot_path"] = Path(snapshot)
    if store is not None:
        values["store_url"] = store
    if s3_endpoint_url is not None:
        values["s3_endpoint_url"] = s3_endpoint_url
    if s3_region is not None:
        values["s3_region"] = s3_region
    if s3_anonymous:
        values["s3_anonymous"] = True
    if cors_origin:
        values["cors_origins"] = list(cors_origin)
    if cache_max_age is not None:
        values["cache_max_age"] = cache_max_age
    return values


def app_from_env():
    """uvicorn factory for ``--workers`` > 1 (settings from ``RADAR_ASSETS_API_*``)."""
    from radar_assets.api import ApiSettings, create_app

    return create_app(ApiSettings())


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Embedded catalog root (snapshot in ROOT/catalog, store in ROOT/store), e.g. .radar-assets.",
)
@click.option("--snapshot", type=click.Path(dir_okay=False, path_type=Path), help="Catalog snapshot file.")
@click.option("--store", help="Object store: a folder, file://PATH or s3://BUCKET/PREFIX.")
@click.option("--s3-endpoint-url", help="S3 endpoint (SeaweedFS, MinIO); credentials from AWS_* variables.")
@click.option("--s3-region")
@click.option("--s3-anonymous", is_flag=True, help="Unsigned S3 requests (public buckets).")
@click.option("--cors-origin", multiple=True, help="Allowed CORS origin (repeatable).")
@click.option("--cache-max-age", type=click.IntRange(min=0), help="max-age of list responses, seconds.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--log-level", default="info", show_default=True)
def api(
    host,
    port,
    root,
    snapshot,
    store,
    s3_endpoint_url,
    s3_region,
    s3_anonymous,
    cors_origin,
    cache_max_age,
    workers,
    log_level,
) -> None:
    """Serve the read-only catalog API (OpenAPI docs at /docs)."""
    import uvicorn

    from radar_assets.api import ApiSettings, create_app

    overrides = _overrides(
        root, snapshot, store, s3_endpoint_url, s3_region, s3_anonymous, cors_origin, cache_max_age
    )
    settings = ApiSettings(**overrides)
    click.echo(
        f"catalog API on http://{host}:{port} (docs at /docs), snapshot {settings.snapshot_path}", err=True
    )
    common = {"host": host, "port": port, "log_level": log_level, "timeout_graceful_shutdown": 5}
    if workers == 1:
        uvicorn.run(create_app(settings), **common)
        return
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            env_value = json.dumps(value) if isinstance(value, list) else str(value)
            os.environ[f"RADAR_ASSETS_API_{name.upper()}"] = env_value
    secret = settings.s3_secret_access_key
    if secret is not None:
        os.environ["RADAR_ASSETS_API_S3_SECRET_ACCESS_KEY"] = secret.get_secret_value()
    uvicorn.run("radar_assets.commands.api:app_from_env", factory=True, workers=workers, **common)
