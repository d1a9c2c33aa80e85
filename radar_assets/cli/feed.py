"""``radar-assets feed``: the live-feed listener and a simulator of the SuperDARN real-time publisher.

Also runnable as ``python -m radar_assets.cli.feed`` (the tests start the listener this way so that a
SIGKILL hits the real process).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def feed() -> None:
    """Live radar feed (ZeroMQ, DMAP fitacf records): listener and simulator."""


@feed.command("listen")
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    help="tcp://HOST:PORT (repeatable; default RADAR_ASSETS_FEED_ENDPOINTS)",
)
@click.option(
    "--spool",
    "spool_dir",
    default=None,
    help="Spool folder (default RADAR_ASSETS_FEED_SPOOL_DIR, or .radar-assets/spool)",
)
@click.option("--station", "stations", multiple=True, help="Subscribe only to these stations (repeatable)")
@click.option("--segment-mb", default=32.0, show_default=True, help="Rotate spool segments at this size")
@click.option("--segment-seconds", default=600.0, show_default=True, help="Rotate spool segments at this age")
@click.option(
    "--fsync-interval", default=0.2, show_default=True, help="Seconds between fsyncs (durability window)"
)
@click.option("--heartbeat-interval", default=1.0, show_default=True)
@click.option(
    "--duration", default=None, type=float, help="Stop after this many seconds (default: until SIGTERM)"
)
@click.option("-v", "--verbose", is_flag=True)
def listen(
    endpoints: tuple[str, ...],
    spool_dir: str | None,
    stations: tuple[str, ...],
    segment_mb: float,
    segment_seconds: float,
    fsync_interval: float,
    heartbeat_interval: float,
    duration: float | None,
    verbose: bool,
) -> None:
    """Subscribe to the endpoints and append every valid record durably to the spool."""
    from radar_assets.lib.feed.listener import Listener
    from radar_assets.lib.feed.spool import SpoolLockedError

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(message)s"
    )
    from radar_assets.cli.context import settings

    feed_settings = settings().feed
    endpoints = endpoints or tuple(feed_settings.endpoints)
    if not endpoints:
        raise click.UsageError("no endpoint: pass --endpoint or set RADAR_ASSETS_FEED_ENDPOINTS")
    spool = Path(spool_dir or feed_settings.spool_dir)
    listener = Listener(
        endpoints,
        spool,
        stations=stations,
        heartbeat_interval=heartbeat_interval,
        segment_bytes=int(segment_mb * (1 << 20)),
        segment_seconds=segment_seconds,
        fsync_interval=fsync_interval,
    )
    click.echo(f"listening to {' '.join(endpoints)}; spool {spool}", err=True)
    try:
        stats = listener.run(max_seconds=duration, install_signals=True)
    except SpoolLockedError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(stats.as_dict()))


@feed.command("simulate")
@click.option("--endpoint", required=True, help="Bind address, e.g. tcp://127.0.0.1:5555")
@click.option(
    "--rate", default=None, type=float, help="Records per second (default: 10, or real time with --from)"
)
@click.option(
    "--from",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="fitacf(.bz2) file to replay (repeatable)",
)
@click.option("--stations", default=None, help="Comma-separated station names for synthetic records")
@click.option("--count", default=None, type=int, help="Stop after this many records")
@click.option(
    "--duration", default=None, type=float, help="Stop after this many seconds of records (with --rate)"
)
@click.option("--loops", default=1, show_default=True, help="Replay the files this many times (shifted on)")
@click.option(
    "--subscribers", default=1, show_default=True, help="Wait for this many subscribers before sending"
)
@click.option("--wait-timeout", default=30.0, show_default=True)
@click.option("--seed", default=0, show_default=True)
def simulate(
    endpoint: str,
    rate: float | None,
    files: tuple[str, ...],
    stations: str | None,
    count: int | None,
    duration: float | None,
    loops: int,
    subscribers: int,
    wait_timeout: float,
    seed: int,
) -> None:
    """Publish fitacf records like a SuperDARN real-time server: replayed files or synthetic records."""
    from radar_assets.lib.feed.simulate import DEFAULT_STATIONS, SyntheticFeed, file_records, publish

    # Record times start when publishing starts (after the subscribers arrived), hence the factories.
    if files:
        records = lambda start_us: file_records(files, start_us, loops=loops)  # noqa: E731
        realtime = rate is None
        total = -1
    else:
        names = [s.strip() for s in (stations or ",".join(DEFAULT_STATIONS)).split(",") if s.strip()]
        rate = rate or 10.0
        records = lambda start_us: SyntheticFeed(names, rate, start_us, seed=seed)  # noqa: E731
        realtime = False
        total = None
    if duration is not None and rate:
        count = min(count, int(duration * rate)) if count else int(duration * rate)
    if count is None and total is None:
        count = None  # endless synthetic feed until interrupted
    click.echo(
        f"publishing on {endpoint} ({'files' if files else 'synthetic'}, {rate or 'real-time'} rec/s)",
        err=True,
    )
    try:
        result = publish(
            endpoint,
            records,
            rate=rate,
            count=count,
            subscribers=subscribers,
            wait_timeout=wait_timeout,
            realtime=realtime,
        )
    except KeyboardInterrupt:
        sys.exit(130)
    click.echo(json.dumps(result))


if __name__ == "__main__":
    feed()
