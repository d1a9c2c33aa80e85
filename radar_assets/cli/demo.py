"""``radar-assets demo`` (``make demo``): the embedded stack end to end on a machine with nothing but the
installed packages.

1. writes a synthetic Archive II archive (two sites, a few hours of moving storms) under ``.radar-assets/source``;
2. adds the sites to the dynamic partition dimension of the local SQLite Dagster instance;
3. runs the :data:`BEFORE_SITE_DAYS` steps (things site-day assets need, e.g. registered boundaries);
4. materialises every site x day asset for each demo site-day (one run per partition, in dependency order);
5. runs the :data:`AFTER_SITE_DAYS` steps (other partitioned families: the live feed, packages, ...);
6. publishes the catalog snapshot and prints what it made;
7. serves the Dagster UI on 127.0.0.1:3000 and the catalog API on :8000 until Ctrl-C (unless ``--once``).

A family adds its demo work by appending a ``step(ctx: DemoContext) -> None`` to one of the step lists.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import click

from radar_assets.cli.demo_packages import packages as package_step
from radar_assets.cli.demo_timeseries import register_boundaries, summarise_timeseries
from radar_assets.settings import DEFAULT_FIRST_DAY, Settings

DEMO_SITES = ("KLOT", "KTLX")
#: The demo's weather starts at the default first day of the partition grid (RADAR_ASSETS_PARTITIONS_FIRST_DAY).
DEMO_START = f"{DEFAULT_FIRST_DAY}T00:00Z"


def _say(msg: str) -> None:
    click.echo(f"[demo] {msg}", err=False)


@dataclass
class DemoContext:
    """What a demo step gets: the settings, the Dagster instance and definitions, the demo's partitions."""

    settings: Settings
    instance: object
    defs: object
    sites: tuple[str, ...]
    days: list[str]
    say: Callable[[str], None] = _say
    summary: list[str] = field(default_factory=list)

    def asset(self, name: str):
        import dagster as dg

        return next(
            a for a in self.defs.assets if isinstance(a, dg.AssetsDefinition) and a.key.path == [name]
        )

    def materialize(self, assets: list, partition_key=None) -> bool:
        import dagster as dg

        result = dg.materialize(
            assets, partition_key=partition_key, instance=self.instance, resources=self.defs.resources
        )
        return result.success


def _synthesize(source_url: str, hours: int) -> None:
    from radar_assets.cli.synth import synth

    synth.main(
        ["--sites", ",".join(DEMO_SITES), "--start", DEMO_START, "--hours", str(hours), "--to", source_url,
         "--seed", "4"],
        standalone_mode=False,
    )  # fmt: skip


def _days(hours: int) -> list[str]:
    start = datetime.strptime(DEMO_START, "%Y-%m-%dT%H:%MZ")
    end = start + timedelta(hours=hours) - timedelta(seconds=1)
    return sorted({(start + timedelta(days=d)).strftime("%Y-%m-%d") for d in range((end - start).days + 1)})


def run_demo(once: bool, port: int, hours: int, api_port: int = 8000) -> int:
    import dagster as dg

    from radar_assets.cli.context import ensure_dagster_home
    from radar_assets.cli.context import settings as load
    from radar_assets.definitions import build_definitions
    from radar_assets.defs.partitions import partitions_for, site_day_key, sites_partitions
    from radar_assets.settings import export_environment

    # Served, the demo is unattended: a volume added to its archive flows to every asset by itself
    # (README: Automation defaults). The in-process materialisation below does not need them.
    settings = load() if once else load(automation={"source_sensor": True, "daily_schedule": True})
    # Subprocesses (listener, API, dagster dev) and in-process runs see the same settings.
    export_environment(settings)
    ensure_dagster_home(settings.dagster_home)
    _say(f"state under {settings.home}")
    partitions = partitions_for(settings)
    if not partitions.has_day(_days(hours)[0]):
        _say(
            f"the demo's weather starts on {_days(hours)[0]}, before RADAR_ASSETS_PARTITIONS_FIRST_DAY="
            f"{partitions.first_day}: unset it (or set it no later than {_days(hours)[0]}) for the demo"
        )
        return 2

    t0 = time.monotonic()
    _synthesize(str(settings.source.url), hours)
    _say(f"synthetic archive ready in {settings.source.url} ({time.monotonic() - t0:.1f} s)")

    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    instance.add_dynamic_partitions(sites_partitions.name, list(DEMO_SITES))
    defs = build_definitions(settings)
    ctx = DemoContext(settings, instance, defs, DEMO_SITES, _days(hours))
    for step in BEFORE_SITE_DAYS:
        step(ctx)
    # The main job: every asset of the site x day family, one run per partition.
    partitioned = [
        a
        for a in defs.assets
        if isinstance(a, dg.AssetsDefinition) and a.partitions_def == partitions.site_day
    ]
    for site in DEMO_SITES:
        for day in ctx.days:
            t = time.monotonic()
            if not ctx.materialize(partitioned, partition_key=site_day_key(site, day)):
                _say(f"materialisation of {site} {day} failed; see the run in the UI")
                return 1
            _say(f"materialised {', '.join(a.key.to_user_string() for a in partitioned)} for {site} {day} "
                 f"({time.monotonic() - t:.1f} s)")  # fmt: skip
    for step in AFTER_SITE_DAYS:
        step(ctx)
    ctx.materialize([ctx.asset("catalog_snapshot")])
    _summary(ctx)
    if once:
        return 0
    root = Path(__file__).resolve().parents[2]
    bin_dir = Path(sys.executable).parent
    api = subprocess.Popen(
        [str(bin_dir / "radar-assets"), "api", "--host", "127.0.0.1", "--port", str(api_port)]
    )
    _say(f"serving the catalog API and map viewer on http://127.0.0.1:{api_port}/ (docs at /docs)")
    _say(f"serving the Dagster UI on http://127.0.0.1:{port} (Ctrl-C stops both)")
    try:
        return subprocess.call(
            [str(bin_dir / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", str(root / "workspace.yaml")],
            cwd=root,
        )  # fmt: skip
    except KeyboardInterrupt:
        return 0
    finally:
        api.terminate()
        api.wait(timeout=30)


def live_feed(ctx: DemoContext) -> None:
    """A simulated SuperDARN feed for a few seconds: simulator -> listener -> spool -> ``live_echoes``."""
    import socket
    from datetime import UTC

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    cli = str(Path(sys.executable).parent / "radar-assets")
    started = datetime.now(UTC)
    listener = subprocess.Popen(
        [cli, "feed", "listen", "--endpoint", endpoint, "--duration", "30"],
        stdout=subprocess.DEVNULL,
    )
    try:
        subprocess.run(
            [
                cli,
                "feed",
                "simulate",
                "--endpoint",
                endpoint,
                "--rate",
                "40",
                "--duration",
                "8",
                "--stations",
                "sas,rkn",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        time.sleep(1.0)  # let the listener drain and fsync
    finally:
        listener.terminate()
        listener.wait(timeout=30)
    hours = sorted({t.strftime("%Y-%m-%d-%H:00") for t in (started, datetime.now(UTC))})
    for hour in hours:
        ctx.materialize([ctx.asset("live_echoes")], partition_key=hour)
    _say(
        f"live feed: simulated SuperDARN records {endpoint} -> spool {ctx.settings.feed.spool_dir} -> live_echoes {', '.join(hours)}"
    )


def _summary(ctx: DemoContext) -> None:
    from radar_assets.cli.catalog import format_rows
    from radar_assets.lib.catalog import query_readonly

    snapshot = ctx.settings.snapshot_path
    _, tables = query_readonly(snapshot, "select table_name from information_schema.tables order by 1")
    for (table,) in tables:
        if table.startswith("catalog_"):  # publishing bookkeeping, not data
            continue
        cols, rows = query_readonly(snapshot, f'select count(*) as rows from "{table}"')
        _say(f"catalog table {table}: {rows[0][0]} rows")
    cols, rows = query_readonly(
        snapshot,
        "select site, level, count(*) as files, min(volume_start) as first, max(volume_start) as last "
        "from scans group by site, level order by site, level",
    )
    click.echo(format_rows(cols, rows))
    for line in ctx.summary:
        _say(line)
    _say(f"store:    {ctx.settings.store.url}")
    _say(f'catalog:  {snapshot}  (radar-assets catalog sql "select site, count(*) from scans group by site")')
    _say("UI:       http://127.0.0.1:3000/assets  (when served; the catalog API on :8000/docs)")


#: Steps run before the site x day assets (append ``step(ctx)``; e.g. registering boundaries).
BEFORE_SITE_DAYS: list[Callable[[DemoContext], None]] = [register_boundaries]
#: Steps run after them, before the catalog is published (other partitioned families).
AFTER_SITE_DAYS: list[Callable[[DemoContext], None]] = [live_feed, summarise_timeseries, package_step]


@click.command("demo")
@click.option("--once", is_flag=True, help="Stop after the materialisation instead of serving the UI")
@click.option("--port", default=3000, show_default=True, help="Dagster UI port")
@click.option("--api-port", default=8000, show_default=True, help="Catalog API port")
@click.option("--hours", default=2, show_default=True, help="Hours of synthetic weather per site")
def demo(once: bool, port: int, api_port: int, hours: int) -> None:
    """Seed a local archive, materialise the sample partitions, print what was made, serve the UI."""
    sys.exit(run_demo(once=once, port=port, hours=hours, api_port=api_port))
