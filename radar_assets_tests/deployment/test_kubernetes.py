"""docker/k8s/: the Kubernetes run launcher and step executor configs validate against dagster-k8s's schema."""

from __future__ import annotations

import re

import pytest
import yaml
from dagster._config import validate_config

from radar_assets.definitions import build_definitions
from radar_assets.settings import Settings
from radar_assets_tests.deployment.processes import DOCKER

K8S = DOCKER / "k8s"


def _load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


def _errors(result) -> list[str]:
    return [error.message for error in result.errors or []]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(node):
    """The chart turns the camelCase keys of ``runK8sConfig`` into the snake_case the launcher reads."""
    if isinstance(node, dict):
        return {_snake(k): _snake_keys(v) for k, v in node.items()}
    return node


def test_run_launcher_validates_against_k8s_run_launcher_schema():
    from dagster_k8s import K8sRunLauncher

    block = _load("run_launcher.yaml")["run_launcher"]
    assert (block["module"], block["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = validate_config(K8sRunLauncher.config_type(), block["config"])
    assert result.success, _errors(result)
    # A wrong key is caught by the same schema (the check is not vacuous).
    assert not validate_config(
        K8sRunLauncher.config_type(), {**block["config"], "job_namespaces": "x"}
    ).success


def test_helm_values_render_the_same_run_launcher():
    values = _load("values.yaml")
    launcher = _load("run_launcher.yaml")["run_launcher"]["config"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    helm = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert helm["jobNamespace"] == launcher["job_namespace"]
    assert helm["imagePullPolicy"] == launcher["image_pull_policy"]
    assert helm["loadInclusterConfig"] == launcher["load_incluster_config"]
    assert [s["name"] for s in helm["envSecrets"]] == launcher["env_secrets"]
    assert (
        _snake_keys(helm["runK8sConfig"])["container_config"]
        == launcher["run_k8s_config"]["container_config"]
    )
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "radar_assets.definitions"]
    assert {"name": "radar-assets-env"} in deployment["envSecrets"]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert env["RADAR_ASSETS_EXECUTION_EXECUTOR"] == "k8s"


def test_step_run_config_validates_against_k8s_job_executor_schema(tmp_path):
    from dagster_k8s import k8s_job_executor

    config = _load("run_config.yaml")["execution"]["config"]
    schema = k8s_job_executor.config_schema.config_type
    result = validate_config(schema, config)
    assert result.success, _errors(result)
    assert not validate_config(schema, {**config, "max_concurrent": "many"}).success
    job = build_definitions(Settings(home=tmp_path, execution={"executor": "k8s"})).resolve_job_def(
        "raw_scans_job"
    )
    assert job.executor_def is k8s_job_executor


@pytest.mark.parametrize("key", ["maxConcurrentRuns", "tagConcurrencyLimits"])
def test_helm_run_queue_matches_the_production_instance(key):
    queue = _load("values.yaml")["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    production = yaml.safe_load((DOCKER / "dagster.yaml").read_text())["concurrency"]["runs"]
    if key == "maxConcurrentRuns":
        assert queue[key] >= production["max_concurrent_runs"]
    else:
        site_and_family = [t for t in production["tag_concurrency_limits"] if t["key"] != "dagster/backfill"]
        assert queue[key] == site_and_family
