"""Benchmark: a backfill raw -> sweeps -> catalog through a real Dagster instance and daemon, vs the usual pipeline.

Usage: ``python bench/backfill.py [--volumes 96] [--sites 2] [--baseline-volumes 12] [--size 2048] [--moments REF]``

1. Builds a source archive (public Level 2 layout, a local folder) of N real volumes from
   ``../shared/data/level2`` placed at successive 5-minute times, round-robin over the sites.
2. Starts ``radar-assets daemon`` (Dagster's daemon, backfill loop every 5 s) and ``dagster-webserver`` on a
   fresh SQLite instance, launches a backfill of
   ``raw_scans`` + ``rendered_sweeps`` over the site-days through GraphQL, and waits until the catalog
   snapshot has published all the sweeps (the backfill's last run publishes it, or ``catalog_snapshot`` by
   automation) and every partition succeeded.
3. In the same run, the usual pipeline on ``--baseline-volumes`` of the same volumes: Py-ART
   ``read_nexrad_archive`` + ``RadarDisplay.plot_ppi`` + transparent PNG per sweep and moment at the same
   pixel size, one process per core (as the public overlay backend does).

Prints one JSON line:

* ``volumes``, ``wall_s`` (backfill launch -> the published DuckDB snapshot holds the sweeps of every volume;
  the backfill's status, which the daemon marks at its next 30 s iteration, is checked after, untimed),
  ``compute_s`` (the sum of the asset steps' own time, from the event log: STEP_START -> STEP_SUCCESS of
  raw_scans / rendered_sweeps / catalog_snapshot, each a wall-clock duration whatever threads the step uses;
  run start, code loading, queueing and sensor intervals are outside every step; the backfill's runs, and other
  runs only if they ended before the publish);
* ``overhead_fraction`` = 1 - compute_s / (wall_s x parallel runs), the share of the run slots' time not
  spent in asset bodies (process start, code loading, queueing, sensor intervals, a slot idle because its
  partition finished first); parallel runs = min(partitions, cores), which is the instance's
  ``max_concurrent_runs`` (2) here, so the fraction lies in [0, 1];
* ``volumes_per_min`` = volumes / wall_s, ``baseline_volumes_per_min`` (the baseline's volumes over its wall
  time, ``cores`` processes), ``speedup`` (their ratio, same cores);
* context: ``partitions``, ``runs``, ``first_run_s`` (launch -> the daemon created the first run: its backfill
  loop, ``RADAR_ASSETS_AUTOMATION_BACKFILL_LOOP_SECONDS``), ``sweeps_published``, ``size_px``, ``moments``, ``cores``, ``cpu_busy_fraction`` (all cores'
  busy share during the backfill, from /proc/stat: other load counts too), ``loadavg`` at the end and
  ``loadavg_backfill`` (the 1-minute load when the catalog was published, before the baseline ran).

On stderr: every run's creation, start, asset steps (start+duration) and end, in seconds after the launch,
which shows where the wall time between the steps goes.

The deployment's knobs are set through the settings' environment variables only:
``RADAR_ASSETS_EXECUTION_EXECUTOR=in_process`` (one process per run, as the 2-core default instance runs two
runs at once) and ``RADAR_ASSETS_PARTITIONS_FIRST_DAY`` (the grid must reach the volumes' day).
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
from collections.abc import Callable
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
FIRST_DAY = "2021-06-01"


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


def step_seconds(
    instance, run_ids: set[str], t0: float | None = None, counted: Callable[[object], bool] = lambda _r: True
) -> tuple[float, list[str]]:
    """Sum of the asset steps' own time (STEP_START -> STEP_SUCCESS) in the runs that ``counted(record)``,
    and a timeline of every run (seconds after ``t0``, a wall-clock timestamp) for the report on stderr."""
    import dagster as dg

    total = 0.0
    timeline = []
    for run_id in run_ids:
        started: dict[str, float] = {}
        marks: list[str] = []
        record = instance.get_run_record_by_id(run_id)
        count = counted(record)
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None:
                continue
            at = entry.timestamp - (t0 or 0.0)
            if event.event_type in (dg.DagsterEventType.RUN_START, dg.DagsterEventType.RUN_SUCCESS):
                marks.append(f"{event.event_type.value}@{at:.1f}")
            if event.step_key not in STEPS:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                started[event.step_key] = entry.timestamp
            elif event.event_type == dg.DagsterEventType.STEP_SUCCESS and event.step_key in started:
                took = entry.timestamp - started.pop(event.step_key)
                total += took if count else 0.0
                marks.append(f"{event.step_key}:{at - took:.1f}+{took:.1f}")
        created = record.create_timestamp.timestamp() - (t0 or 0.0)
        tags = record.dagster_run.tags
        name = tags.get("dagster/partition") or ",".join(
            k.to_user_string() for k in record.dagster_run.asset_selection or ()
        )
        late = "" if count else " (after the publish: not counted)"
        timeline.append(f"{created:7.1f} created {name}: " + " ".join(marks) + late)
    return total, sorted(timeline, key=lambda line: float(line.split()[0]))


def failures(instance) -> list[str]:
    """The error of every failed run (step failures and run-level errors), for a failed backfill."""
    import dagster as dg

    out = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])):
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is not None and event.event_type in (
                dg.DagsterEventType.STEP_FAILURE,
                dg.DagsterEventType.RUN_FAILURE,
                dg.DagsterEventType.ENGINE_EVENT,
            ):
                info = getattr(event.event_specific_data, "error", None)
                if info is not None or event.event_type != dg.DagsterEventType.ENGINE_EVENT:
                    out.append(f"{run.tags.get('dagster/partition')}: {event.message} {info or ''}")
    return out


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat (idle and iowait count as idle)."""
    fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def run_backfill(work: Path, partitions: list[str], volumes: int, size: int, moments: list[str]) -> dict:
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
        with_bytecode_cache,
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
        # The site x day grid starts at this setting's day; the bench's volumes are of 2021-06-25.
        RADAR_ASSETS_PARTITIONS_FIRST_DAY=FIRST_DAY,
    )
    env = with_bytecode_cache(env, work / "pycache")
    sites = sorted({p.split("|")[1] for p in partitions})
    added = Process("sites", [str(BIN / "radar-assets"), "sites", "add", *sites], env, logs)
    assert added.proc.wait(timeout=300) == 0, added.tail()
    port = free_port()
    workspace = str(ROOT / "workspace.yaml")
    processes = [
        Process("daemon", [str(BIN / "radar-assets"), "daemon", "run", "-w", workspace], env, logs),
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
        started_wall = time.time()
        busy0, total0 = cpu_times()
        launched = graphql(port, LAUNCH_BACKFILL, {"params": params})["data"]["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched

        def published() -> bool:
            """Every volume has its sweeps in the published snapshot (a partition's rows land at once)."""
            if not snapshot.exists():
                return False
            try:
                _, [(n,)] = query_readonly(snapshot, "select count(distinct scan_id) from sweeps")
            except Exception:
                return False
            return n >= volumes

        with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
            backfill_id = launched["backfillId"]

            def status():
                return instance.get_backfill(backfill_id).status

            def published_or_failed():
                if published():
                    return "published"
                return (
                    status() not in (BulkActionStatus.REQUESTED, BulkActionStatus.COMPLETED_SUCCESS)
                    and "failed"
                )

            # The clock stops when the published catalog holds every volume's sweeps, which is what a consumer
            # waits for; the backfill's own status turns to success only at the daemon's next iteration (up to
            # 30 s later) and is checked after, untimed.
            outcome = wait_until(published_or_failed, 7200, "the published catalog", processes, every=0.5)
            wall = time.monotonic() - started
            published_at = time.time()
            busy1, total1 = cpu_times()
            load_at_publish = Path("/proc/loadavg").read_text().split()[0]
            done = wait_until(
                lambda: status() != BulkActionStatus.REQUESTED and status(), 600, "the backfill"
            )
            if outcome == "failed" or done != BulkActionStatus.COMPLETED_SUCCESS:
                sys.exit(f"backfill {done.value}:\n" + "\n".join(failures(instance)))
            runs = {r.run_id for r in instance.get_runs()}

            def counted(record) -> bool:
                # The backfill's runs, and any other run (a catalog_snapshot run) that ended before the publish.
                run = record.dagster_run
                ended = record.end_time is not None and record.end_time <= published_at
                return run.tags.get("dagster/backfill") == backfill_id or ended

            compute, timeline = step_seconds(instance, runs, started_wall, counted)
            first_run = min(
                r.create_timestamp.timestamp()
                for r in instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
            )
            _, [(sweeps,)] = query_readonly(snapshot, "select count(*) from sweeps")
            _, [(scans,)] = query_readonly(snapshot, "select count(*) from scans")
    finally:
        stop_all(reversed(processes))
    timeline.append(f"{wall:7.1f} published: every volume's sweeps in the snapshot")
    print("\n".join(["run timeline (s after launch):", *timeline]), file=sys.stderr)
    return {
        "wall_s": wall,
        "compute_s": compute,
        "sweeps": sweeps,
        "scans": scans,
        "runs": len(runs),
        "first_run_s": first_run - started_wall,
        "loadavg_backfill": load_at_publish,
        "cpu_busy_fraction": (busy1 - busy0) / max(total1 - total0, 1.0),
    }


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
                "first_run_s": round(result["first_run_s"], 1),
                "sweeps_published": result["sweeps"],
                "size_px": args.size,
                "moments": moments,
                "cores": cores,
                "cpu_busy_fraction": round(result["cpu_busy_fraction"], 3),
                "loadavg": Path("/proc/loadavg").read_text().split()[:3],
                "loadavg_backfill": result["loadavg_backfill"],
            }
        )
    )


if __name__ == "__main__":
    main()
