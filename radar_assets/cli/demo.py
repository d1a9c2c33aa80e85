"""``make demo``: the embedded stack end to end on a machine with nothing but the installed packages.

1. writes a synthetic Archive II archive (two sites, a few hours of moving storms) under ``.radar-assets/source``;
2. adds the sites to the dynamic partition dimension of the local SQLite Dagster instance;
3. materialises every site-day partition of the main assets (``raw_scans``, ``rendered_sweeps``);
4. runs a simulated SuperDARN feed for a few seconds through a real listener and materialises ``live_echoes``;
5. publishes the catalog snapshot and prints what it made;
6. serves the Dagster UI on 127.0.0.1:3000 and the catalog API on :8000 until Ctrl-C (unless ``--once``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import click

from radar_assets.settings import paths

DEMO_SITES = ("KLOT", "KTLX")
DEMO_START = "2024-05-01T00:00Z"


def _say(msg: str) -> None:
    click.echo(f"[demo] {msg}", err=False)


def _synthesize(source_url: str, hours: int) -> None:
    from radar_assets.commands.synth import synth

    synth.main(
        [
            "--sites",
            ",".join(DEMO_SITES),
            "--start",
            DEMO_START,
            "--hours",
            str(hours),
            "--to",
            source_url,
            "--seed",
            "4",
        ],
        standalone_mode=False,
    )


def _days(hours: int) -> list[str]:
    start = datetime.strptime(DEMO_START, "%Y-%m-%dT%H:%MZ")
    end = start + timedelta(hours=hours) - timedelta(seconds=1)
    return sorted({(start + timedelta(days=d)).strftime("%Y-%m-%d") for d in range((end - start).days + 1)})


def run_demo(once: bool, port: int, hours: int, api_port: int = 8000) -> int:
    import dagster as dg

    from radar_assets.cli import ensure_dagster_home
    from radar_assets.definitions import build_definitions
    from radar_assets.defs.partitions import site_day_key, site_day_partitions, sites_partitions

    home = paths()
    os.environ["RADAR_ASSETS_HOME"] = str(home.home)
    os.environ["DAGSTER_HOME"] = str(home.dagster_home)
    ensure_dagster_home(home.dagster_home)
    _say(f"state under {home.home}")

    t0 = time.monotonic()
    _synthesize(str(home.source), hours)
    _say(f"synthetic archive ready in {home.source} ({time.monotonic() - t0:.1f} s)")

    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions(sites_partitions.name, list(DEMO_SITES))
    defs = build_definitions("local")
    resources = defs.resources
    # The main job: every asset of the site x day family, one run per partition.
    partitioned = [
        a
        for a in defs.assets
        if isinstance(a, dg.AssetsDefinition) and a.partitions_def == site_day_partitions
    ]
    for site in DEMO_SITES:
        for day in _days(hours):
            t = time.monotonic()
            result = dg.materialize(
                partitioned, partition_key=site_day_key(site, day), instance=instance, resources=resources
            )
            if not result.success:
                _say(f"materialisation of {site} {day} failed; see the run in the UI")
                return 1
            _say(f"materialised {', '.join(a.key.to_user_string() for a in partitioned)} for {site} {day} "
                 f"({time.monotonic() - t:.1f} s)")  # fmt: skip
    _live_feed(home, instance, defs)
    snapshot = next(
        a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.key.path == ["catalog_snapshot"]
    )
    dg.materialize([snapshot], instance=instance, resources=resources)
    _summary(home)
    if once:
        return 0
    root = Path(__file__).resolve().parents[1]
    bin_dir = Path(sys.executable).parent
    api = subprocess.Popen(
        [
            str(bin_dir / "radar-assets"),
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(api_port),
            "--root",
            str(home.home),
        ]
    )
    _say(f"serving the catalog API on http://127.0.0.1:{api_port}/docs (try /sites, /scans?site=KLOT)")
    _say(f"serving the Dagster UI on http://127.0.0.1:{port} (Ctrl-C stops both)")
    try:
        return subprocess.call(
            [
                str(bin_dir / "dagster"),
                "dev",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                str(root / "workspace.yaml"),
            ],
            cwd=root,
        )
    except KeyboardInterrupt:
        return 0
    finally:
        api.terminate()
        api.wait(timeout=30)


def _live_feed(home, instance, defs) -> None:
    """A simulated SuperDARN feed for a few seconds: simulator -> listener -> spool -> ``live_echoes``."""
    import socket
    from datetime import UTC

    import dagster as dg

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    cli = str(Path(sys.executable).parent / "radar-assets")
    started = datetime.now(UTC)
    listener = subprocess.Popen(
        [cli, "feed", "listen", "--endpoint", endpoint, "--spool", str(home.spool), "--duration", "30"],
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
    echoes = next(
        a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.key.path == ["live_echoes"]
    )
    hours = sorted({t.strftime("%Y-%m-%d-%H:00") for t in (started, datetime.now(UTC))})
    for hour in hours:
        dg.materialize([echoes], partition_key=hour, instance=instance, resources=defs.resources)
    _say(
        f"live feed: simulated SuperDARN records {endpoint} -> spool {home.spool} -> live_echoes {', '.join(hours)}"
    )


def _summary(home) -> None:
    from radar_assets.cli import format_rows
    from radar_assets.lib.catalog import query_readonly

    snapshot = home.catalog / "catalog.duckdb"
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
    _say(f"store:    {home.store}")
    _say(f'catalog:  {snapshot}  (radar-assets catalog sql "select site, count(*) from scans group by site")')
    _say("UI:       http://127.0.0.1:3000/assets  (when served; the catalog API on :8000/docs)")
