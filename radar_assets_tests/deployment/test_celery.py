"""Steps of real jobs run on two real ``dagster-celery`` workers over RabbitMQ, on a Postgres instance."""

from __future__ import annotations

import json

import dagster as dg
import pytest
import yaml

from radar_assets.definitions import build_definitions
from radar_assets.defs.executors import BROKER_VARIABLE, executor_for, worker_config
from radar_assets.settings import Settings
from radar_assets_tests.conftest import SAMPLE_FIRST_DAY, shared_path
from radar_assets_tests.deployment.processes import (
    BIN,
    Process,
    base_environment,
    celery_worker,
    celery_workers_ready,
    dagster_home,
    seed_level2,
    stop_all,
    wait_until,
)
from radar_assets_tests.deployment.services import (
    postgres_database,
    postgres_environment,
    rabbitmq_vhost,
    redis_prefix,
)

VOLUMES = [("KCRP", "KCRP20210101_000031_V06"), ("KLOT", "KLOT20220317_000842_V06")]


def test_settings_choose_the_executor(tmp_path, monkeypatch):
    monkeypatch.setenv(BROKER_VARIABLE, "pyamqp://guest:secret@rabbit:5672//")
    settings = Settings(home=tmp_path, execution={"executor": "celery"})
    job = build_definitions(settings).resolve_job_def("raw_scans_job")
    assert job.executor_def.name == "celery"
    config = worker_config(settings)["execution"]["config"]
    # The broker's password stays in the environment; the run config only names the variable.
    assert config["broker"] == {"env": BROKER_VARIABLE}
    assert config["config_source"]["task_acks_late"] is True
    assert config["config_source"]["task_reject_on_worker_lost"] is True
    assert (
        executor_for(Settings(home=tmp_path, execution={"executor": "in_process"})) is dg.in_process_executor
    )
    default = build_definitions(Settings(home=tmp_path)).resolve_job_def("raw_scans_job")
    assert default.executor_def is dg.multi_or_in_process_executor


@pytest.mark.integration
def test_two_celery_workers_run_the_steps_of_concurrent_runs(tmp_path, monkeypatch):
    volumes = [shared_path("level2", site, name) for site, name in VOLUMES]
    with postgres_database() as db, rabbitmq_vhost() as broker:
        for name, value in postgres_environment(db).items():
            monkeypatch.setenv(name, value)
        home = tmp_path / "home"
        partitions = seed_level2(home / "source", volumes)
        instance_dir = dagster_home(tmp_path / "dagster")
        env = base_environment(
            **postgres_environment(db),
            DAGSTER_HOME=str(instance_dir),
            RADAR_ASSETS_HOME=str(home),
            RADAR_ASSETS_EXECUTION_EXECUTOR="celery",
            RADAR_ASSETS_PARTITIONS_FIRST_DAY=SAMPLE_FIRST_DAY,
            **{BROKER_VARIABLE: broker},
        )
        settings = Settings(home=home, execution={"executor": "celery", "broker_url": broker})
        config_yaml = tmp_path / "celery.yaml"
        config_yaml.write_text(yaml.safe_dump(worker_config(settings)))
        logs = tmp_path / "logs"
        logs.mkdir()
        # The first instance creates the schema; processes starting together would race to create it.
        with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
            instance.add_dynamic_partitions("sites", sorted({site for site, _ in partitions}))
        workers = [celery_worker(name, env, config_yaml, logs) for name in ("w1", "w2")]
        runs: list[Process] = []
        try:
            wait_until(lambda: celery_workers_ready(broker, ["w1", "w2"], env), 120, "both workers", workers)
            # Two runs at once, each from its own process, as the run launcher would start them.
            for site, day in partitions:
                tags = json.dumps({"dagster/partition": f"{day}|{site}"})
                args = [str(BIN / "dagster"), "job", "execute", "-m", "radar_assets.definitions",
                        "-j", "raw_scans_job", "--tags", tags]  # fmt: skip
                runs.append(Process(f"run-{site}", args, env, logs))
            for run in runs:
                run.proc.wait(timeout=300)
            assert all(run.proc.returncode == 0 for run in runs), "\n".join(p.tail() for p in runs + workers)

            with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
                records = instance.fetch_materializations(dg.AssetKey("raw_scans"), limit=100).records
                assert sorted(r.partition_key for r in records) == sorted(f"{d}|{s}" for s, d in partitions)
                hosts = set()
                for record in instance.get_run_records():
                    run_id = record.dagster_run.run_id
                    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
                    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
                        data = entry.dagster_event.engine_event_data.metadata or {}
                        if "Celery worker" in data:
                            hosts.add(data["Celery worker"].value.split("@")[0])
            # Each worker runs one step at a time, so the two runs' steps went to both.
            assert hosts == {"w1", "w2"}
        finally:
            stop_all(runs + workers)
    for site, day in partitions:
        stamp = day.replace("-", "/")
        assert any((home / "store" / "raw" / "level2" / site / stamp).iterdir())


def test_redis_broker_keeps_steps_under_its_key_prefix(tmp_path):
    """The executor's Celery app on Redis: a submitted step waits in the broker under this test's prefix."""
    import redis
    from dagster._core.execution.retries import RetryMode
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app

    from radar_assets.defs.executors import CELERY_APP_CONFIG, celery_config

    with redis_prefix() as (url, prefix):
        settings = Settings(
            home=tmp_path, execution={"executor": "celery", "broker_url": url, "backend": url}
        )
        options = {**CELERY_APP_CONFIG["broker_transport_options"], "global_keyprefix": prefix}
        config = celery_config(settings, broker_transport_options=options)
        executor = CeleryExecutor(
            retries=RetryMode.DISABLED,
            broker=config["broker"],
            backend=config["backend"],
            config_source=config["config_source"],
        )
        app = make_app(executor.app_args())
        app.send_task("execute_plan", kwargs={}, queue="dagster", routing_key="dagster.execute_plan")
        client = redis.Redis(host="127.0.0.1", port=6379, db=0)
        queued = [k.decode() for k in client.scan_iter(match=prefix + "dagster*")]
        assert queued, "the step was not queued under the prefix"
        assert sum(client.llen(k) for k in queued if client.type(k) == b"list") == 1
        app.close()
        client.close()
