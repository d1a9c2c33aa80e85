"""``radar-assets source synth``: write synthetic NEXRAD Level 2 volumes into a store.

Volumes go under the public Level 2 layout ``YYYY/MM/DD/SITE/SITEYYYYMMDD_HHMMSS_V06`` of a local folder or an
``s3://bucket/prefix`` (through :func:`radar_assets.lib.store.store_from_url`), so the platform's Level 2 source
code reads them exactly like the NOAA archive. The same seed and arguments always give the same keys and
byte-identical volumes; keys already in the store are skipped unless ``--overwrite``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import click


def parse_start(text: str) -> datetime:
    """Parse ``2024-05-01T00:00Z`` / ``2024-05-01T00:00:00+00:00`` / ``2024-05-01`` as an aware UTC time."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO time: {text!r} (expected e.g. 2024-05-01T00:00Z)") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


@click.command("synth")
@click.option("--sites", "sites_", required=True, help="Comma-separated radar ids, e.g. KLOT,KTLX.")
@click.option("--start", "start", required=True, help="UTC start, e.g. 2024-05-01T00:00Z.")
@click.option("--hours", type=click.FloatRange(min=0, min_open=True), default=24.0, show_default=True)
@click.option("--to", "to", required=True, help="Local folder or s3://bucket/prefix.")
@click.option("--vcp", type=click.Choice(["212", "35", "215"]), default="212", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Weather seed (same seed, same storms).")
@click.option(
    "--clear-air-echo/--no-clear-air-echo",
    default=False,
    show_default=True,
    help="Add weak boundary-layer returns (insects, Bragg scatter) around each radar.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes generating volumes [default: number of CPUs].",
)
@click.option("--overwrite", is_flag=True, help="Rewrite volumes whose key already exists.")
def synth(
    sites_: str,
    start: str,
    hours: float,
    to: str,
    vcp: str,
    seed: int,
    clear_air_echo: bool,
    workers: int | None,
    overwrite: bool,
) -> None:
    """Generate synthetic Level 2 (Archive II, Message 31) volumes for SITES over HOURS from START."""
    from radar_assets.lib.sites import UnknownSiteError, site
    from radar_assets.lib.store import store_from_url
    from radar_assets.lib.synth import generate_many, plan, to_epoch_ms

    try:
        site_ids = [site(s).id for s in sites_.split(",") if s.strip()]
    except UnknownSiteError as exc:
        raise click.BadParameter(str(exc), param_hint="--sites") from exc
    if not site_ids:
        raise click.BadParameter("no site given", param_hint="--sites")
    t0 = parse_start(start)
    t1 = t0 + timedelta(hours=hours)
    store = store_from_url(to)
    jobs = plan(site_ids, to_epoch_ms(t0), to_epoch_ms(t1), int(vcp), seed, clear_air_echo)
    todo = jobs if overwrite else [j for j in jobs if not store.exists(j.key)]
    skipped = len(jobs) - len(todo)
    total = len(todo)
    click.echo(
        f"synth: {len(jobs)} volumes for {','.join(site_ids)} VCP {vcp} seed {seed} "
        f"{t0:%Y-%m-%dT%H:%MZ}..{t1:%Y-%m-%dT%H:%MZ} -> {to} ({skipped} already present)"
    )
    n_workers = workers or max(1, os.cpu_count() or 1)
    written = 0
    nbytes = 0
    step = max(1, total // 20)
    for key, data in generate_many(todo, workers=n_workers):
        store.put_bytes(key, data)
        written += 1
        nbytes += len(data)
        if written % step == 0 or written == total:
            click.echo(f"  {written}/{total} volumes written ({nbytes / 1e6:.1f} MB), last {key}")
    click.echo(f"synth: done, {written} written, {skipped} skipped")
