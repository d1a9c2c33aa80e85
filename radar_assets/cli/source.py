"""``radar-assets source``: source archives in the public NOAA/Unidata layouts."""

from __future__ import annotations

from pathlib import Path

import click

from radar_assets.cli.synth import synth


@click.group()
def source() -> None:
    """Source archives in the public NOAA/Unidata layouts."""


def target_store(url: str):
    """The store at ``url`` (S3 buckets are created); endpoint and keys from boto3's AWS_* chain."""
    from radar_assets.lib.store import S3Store, store_from_url

    store = store_from_url(url)
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

    written, skipped = seed(from_dir, target_store(to_url), log=click.echo)
    click.echo(f"seeded {written} file(s) into {to_url} ({skipped} skipped)")


source.add_command(synth)
