import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from radar_assets.definitions import build_definitions
from radar_assets.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_dagster_definitions_validate(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "RADAR_ASSETS_HOME": str(tmp_path / "home")}
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_catalog_writer_is_in_a_single_writer_pool(tmp_path):
    defs = build_definitions(Settings(home=tmp_path))
    snapshot = defs.resolve_assets_def("catalog_snapshot")
    (spec,) = snapshot.specs
    assert snapshot.op.pool == "duckdb_writer"
    assert dg.AssetKey("raw_scans") in {d.asset_key for d in spec.deps}
    import yaml

    conf = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert conf["concurrency"]["pools"]["default_limit"] == 1


def _hostile_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADAR_ASSETS_")}
    env["RADAR_ASSETS_ENV"] = "production"
    return env


def test_import_reads_nothing_but_building_names_the_missing_variables():
    """Importing the code location never fails; building it in production names every missing location."""
    code = (
        "import radar_assets.definitions as d\n"
        "print('imported')\n"
        "try:\n"
        "    d.defs()\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_hostile_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "imported"
    assert lines[-1].startswith("SettingsError")
    for name in ("RADAR_ASSETS_STORE_URL", "RADAR_ASSETS_SOURCE_URL", "RADAR_ASSETS_CATALOG_DIR"):
        assert name in lines[-1]


def test_production_requires_its_locations(monkeypatch):
    for name in ("RADAR_ASSETS_STORE_URL", "RADAR_ASSETS_SOURCE_URL", "RADAR_ASSETS_CATALOG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RADAR_ASSETS_ENV", "production")
    monkeypatch.setenv("RADAR_ASSETS_STORE_URL", "s3://bucket/platform")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-print-me")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "RADAR_ASSETS_SOURCE_URL" in message and "RADAR_ASSETS_CATALOG_DIR" in message
    assert "RADAR_ASSETS_STORE_URL" not in message  # it is set
    assert "do-not-print-me" not in message


def test_secrets_reach_dagster_as_env_vars(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key-from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    defs = build_definitions(Settings(home=tmp_path))
    store = defs.resources["store"]
    assert store.access_key_id == dg.EnvVar("AWS_ACCESS_KEY_ID")
    assert store.secret_access_key == dg.EnvVar("AWS_SECRET_ACCESS_KEY")
