"""The production topology as separate processes, surviving a daemon kill and a Celery worker kill.

PostgreSQL (Dagster instance, its own database), RabbitMQ (its own virtual host), SeaweedFS (the S3 store),
``dagster api grpc`` (code location), ``dagster-webserver``, ``dagster-daemon run``, two
``dagster-celery`` workers and the API, all configured by the production files (docker/dagster.yaml,
docker/celery.yaml's configuration) and one Settings environment. A backfill of eight real Level 2
site-days (raw_scans + rendered_sweeps at a small render size) is launched through GraphQL; the daemon
is SIGKILLed mid-backfill and started again; one worker is SIGKILLed in the middle of a step (its task is
requeued to the other worker). The backfill must complete with every partition materialised exactly once,
every artifact whole, and the API serving the result.
"""

from __future__ import annotations

import collections
import io
import json
import time
import urllib.request

import dagster as dg
import pytest
import yaml
from dagster._core.execution.backfill import BulkActionStatus

from radar_assets.defs.executors import BROKER_VARIABLE, worker_config
from radar_assets.settings import Settings
from radar_assets_tests.conftest import SAMPLE_FIRST_DAY, free_port, shared_path
from radar_assets_tests.deployment.processes import (
    BIN,
    DOCKER,
    LAUNCH_BACKFILL,
    Process,
    base_environment,
    celery_worker,
    celery_workers_ready,
    dagster_home,
    graphql,
    http_ok,
    seed_level2,
    stop_all,
    wait_until,
)
from radar_assets_tests.deployment.services import postgres_database, postgres_environment, rabbitmq_vhost
from radar_assets_tests.seaweed import ACCESS_KEY, SECRET_KEY, seaweedfs

pytestmark = pytest.mark.integration

#: Eight site-days over four sites, one real (small) volume each.
VOLUMES = [
    ("KTLX", "KTLX20140101_000624_V06.gz", "other"),
    ("KCRP", "KCRP20210101_000031_V06", "KCRP"),
    ("KLOT", "KLOT20220317_000842_V06", "KLOT"),
    ("KLOT", "KLOT20190617_181704_V06", "KLOT"),
    ("KCRP", "KCRP20200101_000431_V06", "KCRP"),
    ("KLOT", "KLOT20260328_201457_V06", "KLOT"),
    ("KTLX", "KTLX20190715_120037_V06", "other"),
    ("KLBB", "KLBB20160601_150025_V06", "other"),
]
ASSETS = ("raw_scans", "rendered_sweeps")
RENDER = {"ops": {"rendered_sweeps": {"config": {"size": 96, "moments": ["REF"]}}}}
BUCKET = "radar"
UNFINISHED = (BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING, BulkActionStatus.FAILING)


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


#: Events after which killing the step's worker is no longer a kill mid-work: its materialisation is recorded
#: (a redelivered task then records a second one, which is at-least-once, not what this test is about).
_PAST_THE_WORK = (
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
)


def _celery_worker(event: dg.DagsterEvent) -> str | None:
    """The worker named by a step's "executing in a Celery worker" engine event (None for other events)."""
    data = event.engine_event_data.metadata if event.is_engine_event else None
    return data["Celery worker"].value.split("@")[0] if data and "Celery worker" in data else None


def _running_step(instance: dg.DagsterInstance) -> tuple[str, str] | None:
    """(worker name, run id) of a rendered_sweeps step a worker has started and not finished, if any."""
    for record in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        run_id = record.dagster_run.run_id
        started: dict[str, str] = {}
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None or event.step_key != "rendered_sweeps":
                continue
            if worker := _celery_worker(event):
                started[event.step_key] = worker
            elif event.event_type in _PAST_THE_WORK:
                started.pop(event.step_key, None)
        for worker in started.values():
            return worker, run_id
    return None


def _worked_before(instance: dg.DagsterInstance, run_id: str, moment: float) -> bool:
    """Whether the run has recorded its rendered_sweeps step's work (materialised, succeeded or failed) from
    before ``moment`` (a Celery step's events reach the run only with the task's result)."""
    return any(
        e.step_key == "rendered_sweeps" and e.timestamp < moment
        for e in instance.all_logs(run_id, of_type=set(_PAST_THE_WORK))
    )


def _ran_on(instance: dg.DagsterInstance, worker_names: set[str]) -> set[str]:
    """Partitions with a step (either asset's: a killed worker may also hold the other asset's finished but
    unacknowledged task) executed at least once by one of these Celery workers."""
    out = set()
    for record in instance.get_run_records():
        for entry in instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            if entry.dagster_event.step_key in ASSETS and _celery_worker(entry.dagster_event) in worker_names:
                out.add(record.dagster_run.tags.get("dagster/partition"))
    return out


def _run_origin(instance: dg.DagsterInstance, run_id: str) -> str:
    """Who launched a run (backfill, sensor, re-execution), for an assertion message."""
    tags = instance.get_run_by_id(run_id).tags
    keys = ("dagster/backfill", "dagster/sensor_name", "dagster/parent_run_id", "dagster/retry_number")
    return ", ".join(f"{k.split('/')[-1]}={tags[k]}" for k in keys if k in tags) or "by hand"


def _failures(instance: dg.DagsterInstance) -> list[str]:
    """What each failed run said about its failure (for an assertion message)."""
    failed = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    kinds = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    return [
        f"{r.dagster_run.tags.get('dagster/partition')}: {e.message}"
        for r in failed
        for e in instance.all_logs(r.dagster_run.run_id, of_type=kinds)
    ]


def test_backfill_survives_daemon_and_worker_kills(tmp_path, monkeypatch):
    volumes = [shared_path("level2", folder, name) for _, name, folder in VOLUMES]
    logs = tmp_path / "logs"
    logs.mkdir()
    processes: list[Process] = []
    (tmp_path / "seaweed").mkdir()
    with (
        postgres_database() as db,
        rabbitmq_vhost() as broker,
        seaweedfs(tmp_path / "seaweed") as endpoint,
    ):
        import boto3

        s3 = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )  # fmt: skip
        s3.create_bucket(Bucket=BUCKET)
        assert http_ok(f"{endpoint}/healthz")  # the path compose's s3 health check probes
        partitions = seed_level2(tmp_path / "source", volumes)
        assert len(partitions) == 8
        keys = sorted(f"{day}|{site}" for site, day in partitions)

        for name, value in postgres_environment(db).items():
            monkeypatch.setenv(name, value)
        # The production instance file; four runs at a time (orchestrators) on this two-core machine, and automation
        # sensors are off so that only the backfill materialises these assets.
        production = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
        production["concurrency"]["runs"]["max_concurrent_runs"] = 4
        instance_dir = dagster_home(
            tmp_path / "dagster",
            concurrency=production["concurrency"],
            auto_materialize={"enabled": False, "use_sensors": False},
        )
        grpc_port, web_port, api_port = free_port(), free_port(), free_port()
        (tmp_path / "workspace.yaml").write_text(
            yaml.safe_dump(
                {"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": grpc_port, "location_name": "radar_assets"}}]}
            )
        )  # fmt: skip
        settings_env = {
            "RADAR_ASSETS_ENV": "production",
            "RADAR_ASSETS_HOME": str(tmp_path / "home"),
            "RADAR_ASSETS_STORE_URL": f"s3://{BUCKET}/platform",
            "RADAR_ASSETS_STORE_ENDPOINT": endpoint,
            "RADAR_ASSETS_SOURCE_URL": str(tmp_path / "source"),
            "RADAR_ASSETS_CATALOG_DIR": str(tmp_path / "catalog"),
            "RADAR_ASSETS_EXECUTION_EXECUTOR": "celery",
            "RADAR_ASSETS_PARTITIONS_FIRST_DAY": SAMPLE_FIRST_DAY,
            BROKER_VARIABLE: broker,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }
        env = base_environment(**postgres_environment(db), DAGSTER_HOME=str(instance_dir), **settings_env)
        settings = Settings(home=tmp_path / "home", execution={"executor": "celery", "broker_url": broker})
        celery_yaml = tmp_path / "celery.yaml"
        celery_yaml.write_text(yaml.safe_dump(worker_config(settings)))

        # The first instance creates the schema (processes starting together would race for it).
        with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
            instance.add_dynamic_partitions("sites", sorted({site for site, _ in partitions}))

        workspace = str(tmp_path / "workspace.yaml")
        daemon_args = [str(BIN / "radar-assets"), "daemon", "run", "-w", workspace]
        try:
            code = Process("code", [str(BIN / "dagster"), "api", "grpc", "-h", "127.0.0.1", "-p", str(grpc_port),
                                    "-m", "radar_assets.definitions"], env, logs)  # fmt: skip
            processes.append(code)
            workers = {name: celery_worker(name, env, celery_yaml, logs) for name in ("w1", "w2")}
            processes += workers.values()
            api = Process("api", [str(BIN / "radar-assets"), "api", "--host", "127.0.0.1", "--port", str(api_port)],
                          env, logs)  # fmt: skip
            processes.append(api)
            wait_until(
                lambda: Process(
                    "grpc-check", [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(grpc_port)], env, logs
                ).proc.wait() == 0,
                180, "the code server", [code],
            )  # fmt: skip
            web = Process("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port),
                                        "-w", workspace], env, logs)  # fmt: skip
            daemon = Process("daemon", daemon_args, env, logs)
            processes += [web, daemon]
            wait_until(
                lambda: http_ok(f"http://127.0.0.1:{web_port}/server_info"), 180, "the webserver", [web]
            )
            wait_until(
                lambda: celery_workers_ready(broker, ["w1", "w2"], env), 120, "both workers", workers.values()
            )

            params = {
                "partitionNames": keys,
                "assetSelection": [{"path": [name]} for name in ASSETS],
                "runConfigData": RENDER,
                "title": "topology test",
            }
            launched = graphql(web_port, LAUNCH_BACKFILL, {"params": params})
            result = launched["data"]["launchPartitionBackfill"]
            assert result["__typename"] == "LaunchBackfillSuccess", result
            backfill_id = result["backfillId"]

            with dg.DagsterInstance.from_config(str(instance_dir)) as instance:

                def successes() -> int:
                    return len(
                        instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
                    )

                # SIGKILL the daemon once the backfill is under way, then start it again.
                wait_until(lambda: successes() >= 1, 420, "the first finished run", processes)
                daemon.kill()
                assert successes() < len(keys), "the backfill finished before the daemon could be killed"
                time.sleep(3)
                daemon.start()

                # SIGKILL a worker in the middle of a rendered_sweeps step; a supervisor restarts it.
                # (If the step happened to finish just before the kill, try the next one.)
                redone: set[str] = set()
                kills: list[tuple[str, str]] = []
                killed_run = None
                for _attempt in range(4):
                    worker_name, run_id = wait_until(
                        lambda: _running_step(instance), 420, "a running step", processes
                    )
                    workers[worker_name].kill()
                    killed_at = time.time()
                    kills.append((run_id, worker_name))
                    workers[worker_name].start()
                    if not _worked_before(instance, run_id, killed_at):
                        killed_run = run_id
                        break
                    # Killed after its work: the redelivered task may record the partition a second time.
                    redone.add(instance.get_run_by_id(run_id).tags["dagster/partition"])
                assert killed_run, (
                    f"every worker kill came after its step's work (partitions {sorted(redone)})"
                )

                def done():
                    backfill = instance.get_backfill(backfill_id)
                    return backfill.status not in UNFINISHED and backfill

                backfill = wait_until(done, 900, "the backfill to complete", processes, every=2)
                assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, (
                    backfill.status,
                    _failures(instance),
                )

                # Exactly one materialisation per asset and partition, except at most two for a partition whose
                # step a killed worker ran: at-least-once, never a lost or partial partition. A Celery worker
                # acknowledges a task after it, so its finished-but-unacknowledged task (and the one it was
                # running) is redelivered when it is killed, and the step then records the partition again.
                killed_workers = {name for _, name in kills}
                redone |= {instance.get_run_by_id(run_id).tags["dagster/partition"] for run_id, _ in kills}
                redone |= _ran_on(instance, killed_workers)
                for asset in ASSETS:
                    records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
                    counts = collections.Counter(r.partition_key for r in records)
                    assert set(counts) == set(keys), (asset, counts)
                    twice = {k for k, n in counts.items() if n > 1}
                    by_run = [
                        (r.partition_key, r.run_id[:8], _run_origin(instance, r.run_id))
                        for r in records
                        if r.partition_key in twice
                    ]
                    assert all(n == 1 or (n == 2 and k in redone) for k, n in counts.items()), (
                        asset,
                        counts,
                        f"killed mid-step: {instance.get_run_by_id(killed_run).tags.get('dagster/partition')}",
                        f"killed: {sorted(redone)}",
                        by_run,
                    )
                # The killed worker's task was redelivered (acks late) and its step ran again to success.
                executions = [
                    e for e in instance.all_logs(killed_run, of_type=dg.DagsterEventType.ENGINE_EVENT)
                    if e.dagster_event.step_key == "rendered_sweeps" and _celery_worker(e.dagster_event)
                ]  # fmt: skip
                assert len(executions) >= 2, [e.message for e in executions]
                assert instance.get_run_by_id(killed_run).status == dg.DagsterRunStatus.SUCCESS

            # Publish the catalog (what catalog_snapshot does); the API, running all along, follows it.
            publish = Process("publish", [str(BIN / "radar-assets"), "catalog", "publish"], env, logs)
            assert publish.proc.wait(timeout=300) == 0, publish.tail()
            wait_until(lambda: _scan_count(api_port) == len(keys), 60, "the API to serve the snapshot", [api])
            _check_catalog_and_store(s3, api_port, keys)
        finally:
            stop_all(reversed(processes))


def _scan_count(api_port: int) -> int:
    try:
        return len(json.loads(_get(f"http://127.0.0.1:{api_port}/scans?limit=100")[1])["items"])
    except Exception:
        return -1


def _check_catalog_and_store(s3, api_port: int, keys: list[str]) -> None:
    """Every catalogued artifact is whole; the API serves the scans and sweeps; nothing is left over."""
    from PIL import Image

    status, body = _get(f"http://127.0.0.1:{api_port}/scans?limit=100")
    scans = json.loads(body)["items"]
    assert status == 200 and len(scans) == len(keys)
    assert len({s["scan_id"] for s in scans}) == len(keys)
    sweeps, cursor = [], None
    while True:
        url = f"http://127.0.0.1:{api_port}/sweeps?limit=500" + (f"&cursor={cursor}" if cursor else "")
        page = json.loads(_get(url)[1])
        sweeps += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    ids = [s["sweep_id"] for s in sweeps]
    assert ids and len(ids) == len(set(ids)), "a sweep catalogued twice"
    assert {s["scan_id"] for s in sweeps} == {s["scan_id"] for s in scans}
    for sweep in sweeps[:: max(1, len(sweeps) // 12)]:
        status, png = _get(f"http://127.0.0.1:{api_port}/sweeps/{sweep['sweep_id']}.png")
        assert status == 200
        Image.open(io.BytesIO(png)).verify()
        status, bounds = _get(f"http://127.0.0.1:{api_port}/sweeps/{sweep['sweep_id']}.json")
        assert status == 200 and json.loads(bounds)

    # No partial or orphaned object in the store: every object is a catalog Parquet file or an artifact
    # the catalog names, and every PNG in the store is a whole image.
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        objects += [o["Key"] for o in page.get("Contents", [])]
    pngs = [k for k in objects if k.endswith(".png")]
    assert len(pngs) == len(ids), (len(pngs), len(ids))
    for key in pngs[:: max(1, len(pngs) // 12)]:
        Image.open(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())).verify()
    assert not [k for k in objects if ".tmp" in k or k.endswith(".partial")]
