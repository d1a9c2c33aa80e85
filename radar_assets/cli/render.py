"""``radar-assets render``: render one local Level 2 volume or Level 3 product outside Dagster."""

from __future__ import annotations

import gzip
import io
import json
import time
from pathlib import Path

import click


def _is_level2(data: bytes) -> bool:
    """Archive II volume (possibly whole-file gzipped) rather than a Level III product."""
    head = data[:64]
    if head[:2] == b"\x1f\x8b":
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            head = gz.read(16)
    return head.startswith(b"AR2V") or head.startswith(b"ARCHIVE2")


@click.command("render")
@click.argument("volume", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder."
)
@click.option(
    "--moments",
    default=None,
    help="Comma-separated moments (default: REF on every sweep, VEL where present).",
)
@click.option(
    "--size", default=2048, show_default=True, type=click.IntRange(16, 8192), help="Pixels on the long side."
)
@click.option("--no-cog", is_flag=True, help="Skip the Cloud-Optimized GeoTIFFs.")
def render(volume: Path, out_dir: Path, moments: str | None, size: int, no_cog: bool) -> None:
    """Render VOLUME (a Level 2 volume or a Level 3 product) to PNG + bounds JSON + COG per sweep.

    Writes ``<stem>_<moment>_<sweep:02d>.png``, ``.json`` (bounds) and ``.tif`` (values) into the
    output folder and prints one line per file written.
    """
    from radar_assets.cli.context import settings
    from radar_assets.lib.readers.nexrad_level2 import Level2DecodeError, read_level2
    from radar_assets.lib.readers.nexrad_level3 import Level3DecodeError, read_level3
    from radar_assets.lib.render import render_volume
    from radar_assets.lib.render.grid import set_lookup_cache_dir, set_lookup_cache_limit

    set_lookup_cache_dir(settings().render.lookup_cache())
    set_lookup_cache_limit(settings().render.cache_max_bytes)

    data = volume.read_bytes()
    wanted = [m.strip().upper() for m in moments.split(",") if m.strip()] if moments else None
    started = time.perf_counter()
    stem = volume.name.removesuffix(".gz")
    try:
        if _is_level2(data):
            # Message 1 volumes carry no location: the file name's site id locates them.
            decoded = read_level2(data, moments=wanted, site_hint=stem[:4] or None)
        else:
            decoded = read_level3(data)
    except (Level2DecodeError, Level3DecodeError) as exc:
        raise click.ClickException(f"{volume}: {exc}") from exc
    except ValueError as exc:  # unknown moment names
        raise click.BadParameter(str(exc), param_hint="--moments") from exc
    results = render_volume(decoded, moments=wanted, size=size, cog=not no_cog)
    if not results:
        raise click.ClickException(f"{volume}: nothing to render for moments {wanted or 'default'}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for r in results:
        base = out_dir / f"{stem}_{r.moment}_{r.sweep_index:02d}"
        outputs = [
            (base.with_suffix(".png"), r.png),
            (base.with_suffix(".json"), json.dumps(r.bounds, indent=1).encode()),
        ]
        if r.cog:
            outputs.append((base.with_suffix(".tif"), r.cog))
        for path, payload in outputs:
            # Write then rename so a reader of the folder never sees a partial file.
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(payload)
            tmp.replace(path)
            click.echo(f"wrote {path} ({len(payload)} bytes)")
    click.echo(
        f"rendered {len(results)} sweep-moment(s) of {volume.name} in {time.perf_counter() - started:.2f} s"
    )
