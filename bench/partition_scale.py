"""Benchmark: the site x day grid at a real network's scale (160 sites x 3 years) in a real Dagster instance.

Usage: ``python bench/partition_scale.py [--sites 160] [--years 3] [--postgres] [--repeats 20] [--baseline-sites 2]``

1. A fresh DAGSTER_HOME (the repository's ``dagster.yaml``; with ``--postgres`` the same plus Postgres storage in a
   new database on 127.0.0.1:5432, dropped at the end) and ``RADAR_ASSETS_PARTITIONS_FIRST_DAY`` = today minus
   ``--years`` years. The run queue is set to launch nothing (``max_concurrent_runs: 0``): runs the sensor
   requests are created and queued, as in production, but never executed, so nothing else loads the machine.
2. ``radar-assets sites add`` with all the sites in one command (the first N ids of the NEXRAD/TDWR site table),
   timed as a whole process (``add_sites_s``, includes the interpreter start), then once more (must add none).
3. ``dagster-webserver`` on a free port against ``workspace.yaml``; ``dagster-daemon run`` after (a) and (b).
4. (a) The UI's own ``PartitionHealthQuery`` (copied from the webserver's bundle: partition keys per dimension
   and ``assetPartitionStatuses``) for ``raw_scans``, ``--repeats`` times: ``status_query_p50_s`` / ``_p95_s``.
   (b) Headless Debian Chromium through Playwright opens the ``raw_scans`` asset page, clicks "Materialize…" and
   waits until the partition dialog's launch button is enabled (``dialog_s``, click -> usable; ``dialog_open_s``
   click -> both dimensions' selectors shown; ``dialog_browser_busy_s`` the renderer's main-thread time; the slowest
   GraphQL answers while the dialog opened are ``dialog_slowest_queries``).
   (c) The source archive is a local folder with ``--volumes-per-site`` Level 2 keys per site for today
   (hard links to one real volume of ``../shared/data/level2``), so the source sensor's first tick lists every
   site's prefixes and requests a run per site; ``sensor_tick_s`` is the longest tick of
   ``raw_scans_source_sensor`` in the instance's tick records after ``--ticks`` ticks (evaluation plus the
   daemon creating and queueing one run per request), against the daemon's sensor time limit
   (``sensor_limit_s``, the gRPC timeout of the evaluation). ``sensor_eval_s`` is the sensor body alone, the part
   that limit bounds, run once in a separate process on the same instance and archive before the daemon starts;
   every site has new keys, so ``sensor_eval_requests`` is the number of sites one evaluation reached.
   ``sensor_tick_met``: that evaluation stays within the limit *and* reaches every site. The automation sensors (condition evaluation over every partition)
   tick in the same daemon; their longest tick is ``automation_tick_s``.
5. The baseline, in the same run and the same way: (a) and (b) with ``--baseline-sites`` sites on the same
   instance type and grid (the 2-site demo scale; ``dialog_ratio`` = dialog_s / baseline_dialog_s).

Prints one JSON line with those figures, ``partitions`` (sites x days of the grid the code location serves),
the targets (status query <= 1 s, dialog <= 2 s, sensor tick within its limit) and ``load_avg``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYART_QUIET", "1")

DATA = ROOT.parent / "shared" / "data" / "level2"
CHROMIUM = "/usr/bin/chromium"
STATUS_TARGET_S, DIALOG_TARGET_S = 1.0, 2.0
ASSET = "raw_scans"
SOURCE_SENSOR = "raw_scans_source_sensor"
AUTOMATION_SENSORS = ("pipeline_automation_sensor", "catalog_automation_sensor")

#: The UI's partition-health query (dagster-webserver's bundle, ``usePartitionHealthData``): what the asset
#: page's partitions view and the Materialize dialog load for a partitioned asset.
PARTITION_HEALTH_QUERY = """
query PartitionHealthQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      id
      partitionKeysByDimension { name type partitionKeys }
      assetPartitionStatuses {
        ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
        ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey primaryDimEndKey primaryDimStartTime primaryDimEndTime
            secondaryDim {
              ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
              ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
            }
          }
        }
      }
    }
  }
}
"""

SENSOR_TICKS_QUERY = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status ticks(limit: 20) { status timestamp endTimestamp } } }
  }
}
"""


def load_avg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def first_day(years: int, today: date) -> str:
    try:
        start = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        start = today.replace(year=today.year - years, day=28)
    return start.isoformat()


def network_sites(n: int) -> list[str]:
    from radar_assets.lib.sites import all_sites

    ids = [s.id for s in all_sites()]
    if n > len(ids):
        sys.exit(f"--sites {n}: the site table has {len(ids)} sites")
    return ids[:n]


def grid_days(env: dict[str, str]) -> int:
    """Days of the site x day grid the code location builds from ``env`` (a fresh interpreter reads it)."""
    code = (
        "from radar_assets.definitions import build_definitions\n"
        f"d = build_definitions().resolve_assets_def({ASSET!r}).partitions_def\n"
        "print(len(d.get_partitions_def_for_dimension('day').get_partition_keys()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"building the definitions failed:\n{out.stderr[-3000:]}")
    return int(out.stdout.split()[-1])


@contextmanager
def postgres_storage(enabled: bool):
    """A fresh Postgres database's storage block (or None for SQLite); the database is dropped after."""
    if not enabled:
        yield None
        return
    from radar_assets_tests.deployment.services import postgres_database

    with postgres_database() as db:
        yield {
            "postgres": {
                "postgres_db": {
                    "hostname": "127.0.0.1", "username": "postgres", "password": "unused-with-trust-auth",
                    "db_name": db, "port": 5432,
                }
            }
        }  # fmt: skip


def write_instance(folder: Path, storage: dict | None) -> None:
    """The embedded instance file with the sensor's runs queued and none launched (and ``storage`` if given)."""
    from radar_assets_tests.deployment.processes import dagster_home

    concurrency = yaml.safe_load((ROOT / "dagster.yaml").read_text())["concurrency"]
    concurrency["runs"]["max_concurrent_runs"] = 0
    dagster_home(
        folder, ROOT / "dagster.yaml", concurrency=concurrency, **({"storage": storage} if storage else {})
    )


def build_archive(folder: Path, sites: list[str], per_site: int, today: date) -> int:
    """``per_site`` Level 2 keys per site for today (public layout), hard links to one real volume."""
    volumes = sorted(p for p in DATA.glob("*/*_V06") if p.is_file())
    if not volumes:
        sys.exit(f"no Level 2 volumes under {DATA}")
    n = 0
    for site in sites:
        target_dir = folder / f"{today:%Y/%m/%d}" / site
        target_dir.mkdir(parents=True, exist_ok=True)
        for i in range(per_site):
            when = datetime.combine(today, datetime.min.time(), UTC) + timedelta(minutes=5 * i)
            target = target_dir / f"{site}{when:%Y%m%d_%H%M%S}_V06"
            try:
                os.link(volumes[0], target)
            except OSError:
                shutil.copyfile(volumes[0], target)
            n += 1
    return n


SENSOR_EVAL = """
import json, time
import dagster as dg
from radar_assets.definitions import build_definitions
defs = build_definitions()
sensor = defs.get_sensor_def({name!r})
with dg.DagsterInstance.get() as instance:
    context = dg.build_sensor_context(instance=instance, resources={{"source": defs.resources["source"]}})
    wall, cpu = time.perf_counter(), time.process_time()
    result = sensor(context)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({{"wall_s": wall, "cpu_s": cpu, "requests": len(result.run_requests or [])}}))
"""


def sensor_evaluation(env: dict[str, str]) -> dict:
    """The source sensor's body on the instance (what the daemon's time limit bounds), in a fresh interpreter."""
    code = SENSOR_EVAL.format(name=SOURCE_SENSOR)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"sensor evaluation failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed_sites_add(env: dict[str, str], sites: list[str], log: Path) -> tuple[float, str]:
    from radar_assets_tests.deployment.processes import BIN

    started = time.perf_counter()
    out = subprocess.run(
        [str(BIN / "radar-assets"), "sites", "add", *sites],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    log.write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        sys.exit(f"radar-assets sites add failed:\n{out.stderr[-3000:]}")
    return elapsed, out.stdout.strip()


def status_query_times(port: int, repeats: int) -> tuple[list[float], int]:
    from radar_assets_tests.deployment.processes import graphql

    times, keys = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        answer = graphql(port, PARTITION_HEALTH_QUERY, {"assetKey": {"path": [ASSET]}})
        times.append(time.perf_counter() - started)
        node = answer.get("data", {}).get("assetNodeOrError") or {}
        if "partitionKeysByDimension" not in node:
            raise RuntimeError(f"PartitionHealthQuery failed: {json.dumps(answer)[:2000]}")
        keys = 1
        for dim in node["partitionKeysByDimension"]:
            keys *= len(dim["partitionKeys"])
    return times, keys


def dialog_seconds(port: int, n_sites: int, shots: Path | None = None) -> dict:
    """Open the asset page in headless Chromium, click Materialize…, select every site and the latest day (the
    dialog's own All / Latest buttons), time until the dialog counts ``n_sites`` partitions and enables its launch
    button. The community sign-up dialog of a local webserver is dismissed first (``setNuxSeen``, its Skip)."""
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            graphql_times: list[tuple[str, float]] = []

            def on_finished(request):
                if "/graphql" in request.url:
                    body = request.post_data_json if request.method == "POST" else None
                    name = (body or {}).get("operationName") or request.url.rsplit("op=", 1)[-1]
                    graphql_times.append((name, request.timing["responseEnd"] / 1000))

            page.on("requestfinished", on_finished)
            page.goto(f"{base}/assets/{ASSET}", wait_until="networkidle", timeout=180_000)
            button = page.get_by_role("button", name="Materialize…").first
            button.wait_for(state="visible", timeout=120_000)
            page.wait_for_function(
                "b => !b.disabled", arg=button.element_handle(), timeout=120_000
            )  # enabled once the asset's definition loaded
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")

            def main_thread_s() -> float:  # the renderer's main-thread busy time (scripts, layout, paint)
                return next(
                    m["value"]
                    for m in cdp.send("Performance.getMetrics")["metrics"]
                    if m["name"] == "TaskDuration"
                )

            graphql_times.clear()
            busy = main_thread_s()
            started = time.perf_counter()
            try:
                button.click()
                dialog = page.get_by_role("dialog")
                dialog.get_by_text("Partition selection").wait_for(timeout=180_000)
                # Usable: both dimensions' selectors rendered; the user picks every site and the latest day...
                every_site = dialog.get_by_role("button", name="All", exact=True).last
                latest_day = dialog.get_by_role("button", name="Latest", exact=True).first
                every_site.wait_for(state="visible", timeout=180_000)
                opened = time.perf_counter() - started
                every_site.click(timeout=180_000)
                latest_day.click(timeout=180_000)
                # ...and the dialog counts the selection and enables its launch button.
                dialog.get_by_text(f"{n_sites} partitions", exact=True).wait_for(timeout=180_000)
                launch = dialog.get_by_role("button", name="Launch", exact=False).last
                page.wait_for_function("b => !b.disabled", arg=launch.element_handle(), timeout=180_000)
            except Exception:
                if shots:
                    page.screenshot(path=str(shots.with_name("dialog-failed.png")))
                raise
            elapsed = time.perf_counter() - started
            busy = main_thread_s() - busy
            label = launch.inner_text().strip()
            if shots:
                page.screenshot(path=str(shots))
            slowest = sorted(graphql_times, key=lambda t: -t[1])[:3]
            return {
                "dialog_s": elapsed,
                "open_s": opened,
                "browser_busy_s": busy,
                "launch_label": label,
                "slowest_queries": slowest,
            }
        finally:
            browser.close()


def sensor_ticks(port: int, name: str) -> list[dict]:
    from radar_assets_tests.deployment.processes import graphql

    selector = {
        "repositoryLocationName": "radar_assets",
        "repositoryName": "__repository__",
        "sensorName": name,
    }
    answer = graphql(port, SENSOR_TICKS_QUERY, {"selector": selector})
    sensor = answer["data"]["sensorOrError"]
    if sensor["__typename"] != "Sensor":
        raise RuntimeError(f"sensor {name}: {sensor}")
    return [t for t in sensor["sensorState"]["ticks"] if t["endTimestamp"]]


def measure(args, work: Path, n_sites: int, storage: dict | None, *, sensor: bool) -> dict:
    from dagster._grpc.utils import default_sensor_grpc_timeout

    from radar_assets_tests.conftest import free_port
    from radar_assets_tests.deployment.processes import (
        BIN,
        Process,
        base_environment,
        graphql,
        http_ok,
        stop_all,
        wait_until,
    )

    today = datetime.now(UTC).date()
    home, logs, archive = work / "home", work / "logs", work / "archive"
    logs.mkdir(parents=True)
    archive.mkdir()
    instance_dir = home / "dagster"
    write_instance(instance_dir, storage)
    sites = network_sites(n_sites)
    keys = build_archive(archive, sites, args.volumes_per_site, today) if sensor else 0
    env = base_environment(
        RADAR_ASSETS_HOME=str(home),
        DAGSTER_HOME=str(instance_dir),
        RADAR_ASSETS_SOURCE_URL=str(archive),
        RADAR_ASSETS_PARTITIONS_FIRST_DAY=first_day(args.years, today),
        RADAR_ASSETS_AUTOMATION_SOURCE_SENSOR="1" if sensor else "0",
    )
    days = grid_days(env)
    add_s, added = timed_sites_add(env, sites, logs / "sites-add.log")
    again_s, again = timed_sites_add(env, sites, logs / "sites-add-again.log")
    if not added.startswith(f"added {n_sites} site(s)") or not again.startswith("added 0 site(s)"):
        raise RuntimeError(f"sites add: {added[:200]!r} then {again[:200]!r}")

    evaluation = sensor_evaluation(env) if sensor else None
    port = free_port()
    workspace = str(ROOT / "workspace.yaml")
    processes = [
        Process("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", workspace],
                env, logs),
    ]  # fmt: skip
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/server_info"), 300, "the webserver", processes)
        status_query_times(port, 1)  # warm-up: the code location's first answer
        times, listed = status_query_times(port, args.repeats)
        graphql(port, "mutation { setNuxSeen }", {})
        dialog = dialog_seconds(port, n_sites, logs / "dialog.png" if args.screenshots else None)
        result = {
            "sites": n_sites,
            "days": days,
            "partitions": n_sites * days,
            "partition_keys_listed": listed,
            "add_sites_s": round(add_s, 2),
            "add_sites_again_s": round(again_s, 2),
            "status_query_p50_s": round(statistics.median(times), 3),
            "status_query_p95_s": round(
                statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0], 3
            ),
            "dialog_s": round(dialog["dialog_s"], 2),
            "dialog_open_s": round(dialog["open_s"], 2),
            "dialog_browser_busy_s": round(dialog["browser_busy_s"], 2),
            "dialog_launch_label": dialog["launch_label"],
            "dialog_slowest_queries": [[name, round(t, 2)] for name, t in dialog["slowest_queries"]],
        }
        if sensor:
            # The daemon starts only now: its first ticks (listing, run creation, the automation sensors' first
            # evaluation) would otherwise compete with (a) and (b) for the same cores.
            processes.append(
                Process("daemon", [str(BIN / "radar-assets"), "daemon", "run", "-w", workspace], env, logs)
            )
            daemon_started = time.monotonic()
            result["source_keys"] = keys
            limit = float(default_sensor_grpc_timeout())

            def ticked():
                return len(sensor_ticks(port, SOURCE_SENSOR)) >= args.ticks

            wait_until(
                ticked, 600 + 120 * args.ticks, f"{args.ticks} source sensor ticks", processes, every=5
            )
            ticks = sensor_ticks(port, SOURCE_SENSOR)
            durations = [t["endTimestamp"] - t["timestamp"] for t in ticks]
            automation = [
                t["endTimestamp"] - t["timestamp"]
                for name in AUTOMATION_SENSORS
                for t in sensor_ticks(port, name)
            ]
            runs = queued_runs(instance_dir)
            result.update(
                sensor_eval_s=round(evaluation["wall_s"], 2),
                sensor_eval_cpu_s=round(evaluation["cpu_s"], 2),
                sensor_eval_requests=evaluation["requests"],
                sensor_tick_s=round(max(durations), 2),
                sensor_ticks=[round(d, 2) for d in durations],
                sensor_tick_statuses=sorted({t["status"] for t in ticks}),
                sensor_limit_s=limit,
                automation_tick_s=round(max(automation, default=0.0), 2),
                daemon_s=round(time.monotonic() - daemon_started),
            )
            result["queued_runs"] = runs
            result["tick_s_per_run"] = round(max(durations) / max(runs, 1), 2)
    finally:
        stop_all(reversed(processes))
    return result


def queued_runs(instance_dir: Path) -> int:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
        return len(instance.get_run_ids())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=160)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="Postgres instance storage (fresh database)")
    parser.add_argument("--repeats", type=int, default=20, help="status query repetitions")
    parser.add_argument("--ticks", type=int, default=2, help="source sensor ticks to wait for")
    parser.add_argument(
        "--volumes-per-site", type=int, default=12, help="new archive keys per site for the sensor"
    )
    parser.add_argument("--baseline-sites", type=int, default=2)
    parser.add_argument(
        "--screenshots", action="store_true", help="save the open dialog under the work folder"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium (see .ci/run)")

    work = Path(tempfile.mkdtemp(prefix="partition-scale-"))
    try:
        with postgres_storage(args.postgres) as storage:
            baseline = measure(args, work / "baseline", args.baseline_sites, storage, sensor=False)
        with postgres_storage(args.postgres) as storage:
            result = measure(args, work / "scale", args.sites, storage, sensor=True)
    finally:
        if args.keep:
            print(f"work folder: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    result.update(
        storage="postgres" if args.postgres else "sqlite",
        baseline_sites=baseline["sites"],
        baseline_status_query_p50_s=baseline["status_query_p50_s"],
        baseline_dialog_s=baseline["dialog_s"],
        dialog_ratio=round(result["dialog_s"] / baseline["dialog_s"], 2),
        status_query_met=result["status_query_p95_s"] <= STATUS_TARGET_S,
        dialog_met=result["dialog_s"] <= DIALOG_TARGET_S,
        # Within the limit means: one evaluation lists every site (the listing budget stops a pass early and the
        # next pass starts again from the first site, so sites a pass never reaches are never requested).
        sensor_tick_met=result["sensor_eval_s"] <= result["sensor_limit_s"]
        and result["sensor_eval_requests"] == result["sites"],
        load_avg=load_avg(),
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
