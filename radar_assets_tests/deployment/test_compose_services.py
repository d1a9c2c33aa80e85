"""docker/: every production service is in the compose file, health-checked, with every variable it reads."""

from __future__ import annotations

import re

import pytest
import yaml

from radar_assets.defs.executors import BROKER_VARIABLE, CELERY_APP_CONFIG
from radar_assets.settings import PRODUCTION_REQUIRED, environment_variables, load_settings
from radar_assets_tests.deployment.processes import DOCKER

SERVICES = {"postgres", "rabbitmq", "s3", "code", "webserver", "daemon", "worker", "listener", "api"}
OUR_IMAGE = {"code", "webserver", "daemon", "worker", "listener", "api"}


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _env_references(node) -> set[str]:
    """Every ``{env: NAME}`` in a Dagster YAML file."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_references(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_references(v) for v in node)) if node else set()
    return set()


def _interpolate(value) -> str:
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))


def test_every_service_is_present_and_health_checked():
    services = _compose()["services"]
    assert SERVICES <= set(services)
    for name in SERVICES:
        check = services[name].get("healthcheck") or {}
        assert check.get("test"), f"{name} has no healthcheck"
    commands = {name: " ".join(str(services[name]["command"]).split()) for name in OUR_IMAGE}
    assert (
        commands["code"].startswith("dagster api grpc") and "-m radar_assets.definitions" in commands["code"]
    )
    assert commands["daemon"].startswith("radar-assets daemon run")
    assert commands["webserver"].startswith("dagster-webserver")
    assert commands["worker"].startswith("dagster-celery worker start -A dagster_celery.app")
    assert "-y /opt/dagster/celery.yaml" in commands["worker"]
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_every_variable_the_code_reads_is_provided_the_same_everywhere():
    services = _compose()["services"]
    blocks = [services[name]["environment"] for name in OUR_IMAGE]
    assert all(block == blocks[0] for block in blocks), "every radar-assets container gets the same settings"
    env = {name: _interpolate(value) for name, value in blocks[0].items()}

    instance = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    celery = yaml.safe_load((DOCKER / "celery.yaml").read_text())
    required = {name for name, _ in PRODUCTION_REQUIRED} | _env_references(instance) | _env_references(celery)
    assert required >= {"DAGSTER_POSTGRES_HOST", "DAGSTER_POSTGRES_DB", BROKER_VARIABLE}
    missing = sorted(name for name in required if not env.get(name))
    assert not missing, f"compose does not provide {missing}"

    # No variable the code does not know (a typo would silently leave a setting at its default).
    known = {name for name, _, _ in environment_variables()} | _env_references(instance)
    assert set(env) <= known, sorted(set(env) - known)


def test_compose_settings_are_valid_production_settings_with_celery(monkeypatch):
    env = {k: _interpolate(v) for k, v in _compose()["services"]["daemon"]["environment"].items()}
    for name in [n for n in __import__("os").environ if n.startswith("RADAR_ASSETS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.env == "production"
    assert settings.execution.executor == "celery"
    assert settings.execution.broker_url.get_secret_value().startswith("pyamqp://")


def test_workers_read_the_executor_celery_configuration():
    config = yaml.safe_load((DOCKER / "celery.yaml").read_text())["execution"]["config"]
    assert config["broker"] == {"env": BROKER_VARIABLE}
    assert config["config_source"] == CELERY_APP_CONFIG


@pytest.mark.parametrize("line_kind", ["stages", "user", "layers"])
def test_dockerfile_is_multi_stage_non_root_with_a_dependency_layer(line_kind):
    lines = [line.strip() for line in (DOCKER / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    if line_kind == "stages":
        stages = [line for line in instructions if line.startswith("FROM ")]
        assert len(stages) >= 2 and any("COPY --from=builder" in line for line in instructions)
    elif line_kind == "user":
        users = [line.split()[1] for line in instructions if line.startswith("USER ")]
        assert users and users[-1] not in ("root", "0")
    else:
        deps = next(i for i, line in enumerate(instructions) if line.startswith("COPY pyproject.toml"))
        code = next(i for i, line in enumerate(instructions) if line.startswith("COPY radar_assets"))
        install = next(i for i, line in enumerate(instructions) if "pip install ." in line)
        assert deps < install < code
