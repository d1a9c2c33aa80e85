"""Benchmark: a backfill raw -> sweeps -> catalog through a real Dagster instance and daemon, vs the usual pipeline.

Usage: ``python bench/backfill.py [--volumes 96] [--sites 2] [--baseline-volumes 12] [--size 2048] [--moments REF]``

1. Builds a source archive (public Level 2 layout, a local folder) of N real volumes from
   ``../shared/data/level2`` placed at successive 5-minute times, round-robin over the sites.
2. Starts ``dagster-daemon`` and ``dagster-webserver`` on a fresh SQLite instance, launches a backfill of
   ``raw_scans`` + ``rendered_sweeps`` over the site-days through GraphQL, and waits until every partition
   succeeded and ``catalog_snapshot`` (by automation) has published all the sweeps.
3. In the same run, the usual pipeline on ``--baseline-volumes`` of the same volumes: Py-ART
   ``read_nexrad_archive`` + ``RadarDisplay.plot_ppi`` + transparent PNG per sweep and moment at the same
   pixel size, one process per core (as the public overlay backend does).

Prints one JSON line:

* ``volumes``, ``wall_s`` (backfill launch -> published catalog), ``compute_s`` (sum of the asset steps' own
  time, from the event log: STEP_START -> STEP_SUCCESS of raw_scans / rendered_sweeps / catalog_snapshot);
* ``overhead_fraction`` = 1 - compute_s / (wall_s x parallel runs), the share of the run slots' time not
  spent in asset bodies (process start, code loading, queueing, sensor intervals);
* ``volumes_per_min``, ``baseline_volumes_per_min``, ``speedup`` (their ratio, same cores).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("PYART_QUIET", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "level2"
SITES = ("KLOT", "KCRP", "KTLX", "KLBB")
START = datetime(2021, 6, 25, 0, 0, 0, tzinfo=UTC)
STEPS = ("raw_scans", "rendered_sweeps", "catalog_snapshot")


def real_volumes() -> list[Path]:
    found = sorted(p for p in DATA.glob("*/*_V0[0-9]") if p.is_file())
    if not found:
        sys.exit(f"no Level 2 volumes under {DATA}")
    return found


def build_archive(folder: Path, n: int, sites: list[str]) -> tuple[list[str], list[Path]]:
    """N volumes at successive 5-minute times, round-robin over ``sites``; returns partitions and files used."""
    volumes = real_volumes()
    used, partitions = [], set()
    for i in range(n):
        site = sites[i % len(sites)]
        when = START + timedelta(minutes=5 * (i // len(sites)))
        name = f"{site}{when:%Y%m%d_%H%M%S}_V06"
        target = folder / f"{when:%Y/%m/%d}" / site / name
        target.parent.mkdir(parents=True, exist_ok=True)
        source = volumes[i % len(volumes)]
        shutil.copyfile(source, target)
        used.append(source)
        partitions.add(f"{when:%Y-%m-%d}|{site}")
    return sorted(partitions), used


def step_seconds(instance, run_ids: set[str]) -> float:
    import dagster as dg

    total = 0.0
    for run_id in run_ids:
        started: dict[str, float] = {}
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None or event.step_key not in STEPS:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                started[event.step_key] = entry.timestamp
            elif event.event_type == dg.DagsterEventType.STEP_SUCCESS and event.step_key in started:
                total += entry.timestamp - started.pop(event.step_key)
    return total


def run_backfill(
    work: Path, partitions: list[str], n_sweep_rows_min: int, size: int, moments: list[str]
) -> dict:
    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus

    from radar_assets.lib.catalog import query_readonly
    from radar_assets_tests.conftest import free_port
    from radar_assets_tests.deployment.processes import (
        BIN,
        LAUNCH_BACKFILL,
        Process,
        base_environment,
        graphql,
        http_ok,
        stop_all,
        wait_until,
    )

    home, logs = work / "home", work / "logs"
    logs.mkdir(parents=True)
    instance_dir = home / "dagster"
    instance_dir.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", instance_dir / "dagster.yaml")
    env = base_environment(
        RADAR_ASSETS_HOME=str(home),
        DAGSTER_HOME=str(instance_dir),
        RADAR_ASSETS_SOURCE_URL=str(work / "archive"),
        RADAR_ASSETS_EXECUTION_EXECUTOR="in_process",
    )
    sites = sorted({p.split("|")[1] for p in partitions})
    added = Process("sites", [str(BIN / "radar-assets"), "sites", "add", *sites], env, logs)
    assert added.proc.wait(timeout=300) == 0, added.tail()
    port = free_port()
    workspace = str(ROOT / "workspace.yaml")
    processes = [
        Process("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace], env, logs),
        Process("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", workspace],
                env, logs),
    ]  # fmt: skip
    snapshot = home / "catalog" / "catalog.duckdb"
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/server_info"), 300, "the webserver", processes)
        params = {
            "partitionNames": partitions,
            "assetSelection": [{"path": ["raw_scans"]}, {"path": ["rendered_sweeps"]}],
            "runConfigData": {"ops": {"rendered_sweeps": {"config": {"size": size, "moments": moments}}}},
            "title": "bench/backfill.py",
        }
        started = time.monotonic()
        launched = graphql(port, LAUNCH_BACKFILL, {"params": params})["data"]["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched

        def published() -> bool:
            if not snapshot.exists():
                return False
            try:
                _, [(n,)] = query_readonly(snapshot, "select count(*) from sweeps")
            except Exception:
                return False
            return n >= n_sweep_rows_min

        with dg.DagsterInstance.from_config(str(instance_dir)) as instance:

            def finished():
                backfill = instance.get_backfill(launched["backfillId"])
                return backfill.status != BulkActionStatus.REQUESTED and backfill

            backfill = wait_until(finished, 7200, "the backfill", processes, every=1)
            assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, backfill.status
            wait_until(published, 600, "the published catalog", processes, every=1)
            wall = time.monotonic() - started
            runs = {r.run_id for r in instance.get_runs()}
            compute = step_seconds(instance, runs)
            _, [(sweeps,)] = query_readonly(snapshot, "select count(*) from sweeps")
            _, [(scans,)] = query_readonly(snapshot, "select count(*) from scans")
    finally:
        stop_all(reversed(processes))
    return {"wall_s": wall, "compute_s": compute, "sweeps": sweeps, "scans": scans, "runs": len(runs)}


def baseline_one(args: tuple[str, int, list[str]]) -> float:
    """Py-ART + matplotlib: every sweep of every requested moment to a transparent PNG at ``size`` px."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyart

    warnings.filterwarnings("ignore")
    path, size, moments = args
    fields = {"REF": ("reflectivity", -20, 60, "NWSRef"), "VEL": ("velocity", -30, 30, "NWSVel")}
    wanted = [fields[m] for m in moments if m in fields]
    dpi = 100
    start = time.perf_counter()
    radar = pyart.io.read_nexrad_archive(path, include_fields=[f[0] for f in wanted])
    display = pyart.graph.RadarDisplay(radar)
    for name, vmin, vmax, cmap in wanted:
        if name not in radar.fields:
            continue
        for sweep in range(radar.nsweeps):
            fig = plt.figure(figsize=(size / dpi, size / dpi), dpi=dpi)
            ax = fig.add_axes([0, 0, 1, 1])
            display.plot_ppi(name, sweep=sweep, ax=ax, vmin=vmin, vmax=vmax, cmap=cmap,
                             colorbar_flag=False, title_flag=False, axislabels_flag=False)  # fmt: skip
            ax.set_axis_off()
            fig.savefig(io.BytesIO(), format="png", transparent=True, dpi=dpi)
            plt.close(fig)
    return time.perf_counter() - start


def run_baseline(volumes: list[Path], size: int, moments: list[str], cores: int) -> float:
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=cores) as pool:
        list(pool.map(baseline_one, [(str(v), size, moments) for v in volumes]))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=96)
    parser.add_argument("--sites", type=int, default=2, choices=range(1, len(SITES) + 1))
    parser.add_argument("--baseline-volumes", type=int, default=12)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--moments", default="REF", help="comma-separated, REF and/or VEL")
    args = parser.parse_args()
    moments = [m.strip().upper() for m in args.moments.split(",") if m.strip()]
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        work = Path(tmp)
        partitions, used = build_archive(work / "archive", args.volumes, list(SITES[: args.sites]))
        result = run_backfill(work, partitions, args.volumes, args.size, moments)
    baseline_s = run_baseline(used[: args.baseline_volumes], args.size, moments, cores)
    parallel = min(len(partitions), cores)
    volumes_per_min = args.volumes / result["wall_s"] * 60
    baseline_per_min = min(args.baseline_volumes, len(used)) / baseline_s * 60
    print(
        json.dumps(
            {
                "volumes": args.volumes,
                "wall_s": round(result["wall_s"], 1),
                "compute_s": round(result["compute_s"], 1),
                "overhead_fraction": round(1 - result["compute_s"] / (result["wall_s"] * parallel), 3),
                "volumes_per_min": round(volumes_per_min, 2),
                "baseline_volumes_per_min": round(baseline_per_min, 2),
                "speedup": round(volumes_per_min / baseline_per_min, 2),
                "partitions": len(partitions),
                "runs": result["runs"],
                "sweeps_published": result["sweeps"],
                "size_px": args.size,
                "moments": moments,
                "cores": cores,
            }
        )
    )


if __name__ == "__main__":
    main()
