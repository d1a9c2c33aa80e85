"""The production compose file gives the API and the Dagster services the same settings, so the same store."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml
from click.testing import CliRunner

from radar_assets.settings import load_settings, open_store

COMPOSE = Path(__file__).resolve().parents[2] / "docker" / "compose.yaml"


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with nothing exported: the default."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))


def _service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: _interpolate(v) for k, v in env.items()}


def test_api_and_dagster_open_the_same_store(monkeypatch):
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    api, daemon = services["api"], services["daemon"]
    for env in (_service_env(api), _service_env(daemon)):
        assert env["RADAR_ASSETS_ENV"] == "production"

    def settings_of(service: dict):
        for name in [n for n in list(__import__("os").environ) if n.startswith("RADAR_ASSETS_")]:
            monkeypatch.delenv(name)
        for key, value in _service_env(service).items():
            monkeypatch.setenv(key, value)
        return load_settings()

    # The daemon's code location builds its resources from Settings; the API command builds its own from
    # its options on top of the same environment: run the command's own option parsing.
    from radar_assets.cli import api as api_module
    from radar_assets.definitions import build_definitions

    dagster_settings = settings_of(daemon)
    store_resource = build_definitions(dagster_settings).resources["store"]
    args = shlex.split(api["command"] if isinstance(api["command"], str) else " ".join(api["command"]))
    assert args[:2] == ["radar-assets", "api"]
    seen = {}
    monkeypatch.setattr(api_module, "create_app", lambda s: seen.setdefault("settings", s), raising=False)
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    settings_of(api)
    import radar_assets.api

    monkeypatch.setattr(radar_assets.api, "create_app", lambda s: seen.setdefault("settings", s))
    result = CliRunner().invoke(api_module.api, args[2:])
    assert result.exit_code == 0, result.output
    api_settings = seen["settings"]
    api_store, dagster_store = open_store(api_settings), store_resource.get_store()
    assert (api_store.url, api_store.endpoint_url) == (dagster_store.url, dagster_store.endpoint_url)
    assert api_settings.snapshot_path == dagster_settings.snapshot_path
