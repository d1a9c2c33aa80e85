"""The production compose file gives the API and the Dagster services the same settings, so the same store."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import yaml
from click.testing import CliRunner

from radar_assets.settings import PREFIX, load_settings, open_store

COMPOSE = Path(__file__).resolve().parents[2] / "docker" / "compose.yaml"


def _interpolate(value) -> str:
    """Compose's ``${VAR:-default}`` with nothing exported: the default."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))


def _service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: _interpolate(v) for k, v in env.items()}


def _use_environment(monkeypatch, service: dict) -> None:
    """This process's environment becomes exactly the service's (for the settings variables)."""
    for name in [n for n in os.environ if n.startswith(PREFIX) or n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for key, value in _service_env(service).items():
        monkeypatch.setenv(key, value)


def test_api_and_dagster_open_the_same_store(monkeypatch):
    import uvicorn

    import radar_assets.api
    from radar_assets.cli.api import api as api_command
    from radar_assets.definitions import build_definitions

    services = yaml.safe_load(COMPOSE.read_text())["services"]
    api, daemon = services["api"], services["daemon"]

    # The code location (loaded by the daemon) builds its store resource from the daemon's environment.
    _use_environment(monkeypatch, daemon)
    dagster_settings = load_settings()
    assert dagster_settings.env == "production"
    dagster_store = build_definitions(dagster_settings).resources["store"].get_store()

    # The API container runs compose's command line through the real click command, in its own environment.
    _use_environment(monkeypatch, api)
    command = api["command"]
    args = shlex.split(command) if isinstance(command, str) else list(command)
    assert args[:2] == ["radar-assets", "api"]
    built = {}
    monkeypatch.setattr(radar_assets.api, "create_app", lambda s: built.setdefault("settings", s))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)  # only the settings are under test
    result = CliRunner().invoke(api_command, args[2:])
    assert result.exit_code == 0, result.output
    api_settings = built["settings"]
    api_store = open_store(api_settings)
    assert (api_store.url, api_store.endpoint_url) == (dagster_store.url, dagster_store.endpoint_url)
    assert api_settings.snapshot_path == dagster_settings.snapshot_path
