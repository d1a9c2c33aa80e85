"""The production ``docker/dagster.yaml`` is a working Dagster instance on the real PostgreSQL."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest
import yaml
from dagster._config import validate_config

from radar_assets_tests.deployment.services import (
    ROOT,
    postgres_database,
    postgres_environment,
    postgres_tables,
)

DOCKER = ROOT / "docker"


@pytest.fixture
def production_home(tmp_path, monkeypatch):
    with postgres_database() as db:
        for name, value in postgres_environment(db).items():
            monkeypatch.setenv(name, value)
        home = tmp_path / "dagster"
        home.mkdir()
        shutil.copy(DOCKER / "dagster.yaml", home / "dagster.yaml")
        yield home, db


def test_production_yaml_is_a_postgres_instance_with_queues_and_pools(production_home):
    from dagster._core.launcher import DefaultRunLauncher
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    home, db = production_home
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert isinstance(instance.run_launcher, DefaultRunLauncher)

        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 8
        limits = {limit["key"]: limit for limit in queue.tag_concurrency_limits}
        assert limits["dagster/partition/site"]["value"] == {"applyLimitPerUniqueValue": True}
        assert "radar_assets/family" in limits
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1

        # A real round trip through Postgres: a run and a pool slot written by one instance object...
        run = instance.create_run_for_job(dg.GraphDefinition("noop").to_job(), run_id=None)
        instance.event_log_storage.set_concurrency_slots("duckdb_writer", 1)

    # ...are read back by another one (what the daemon, the webserver and the workers share).
    with dg.DagsterInstance.from_config(str(home)) as other:
        assert other.get_run_by_id(run.run_id).job_name == "noop"
        assert other.event_log_storage.get_concurrency_info("duckdb_writer").slot_count == 1
    assert {"runs", "event_logs", "jobs", "instigators", "concurrency_limits"} <= postgres_tables(db)


def test_docker_variant_differs_only_by_its_run_launcher():
    from dagster_docker import DockerRunLauncher

    production = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    docker = yaml.safe_load((DOCKER / "dagster.docker.yaml").read_text())
    launcher = docker.pop("run_launcher")
    production.pop("run_launcher")
    assert docker == production
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    result = validate_config(DockerRunLauncher.config_type(), launcher["config"])
    assert result.success, [e.message for e in result.errors]
    # Runs in their own containers need every variable the code location and the instance read.
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    code_env = set(compose["services"]["code"]["environment"])
    assert set(launcher["config"]["env_vars"]) <= code_env
