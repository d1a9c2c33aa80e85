import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from radar_assets.definitions import build_definitions

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


def test_catalog_writer_is_in_a_single_writer_pool():
    defs = build_definitions("local")
    snapshot = defs.resolve_assets_def("catalog_snapshot")
    (spec,) = snapshot.specs
    assert snapshot.op.pool == "duckdb_writer"
    assert dg.AssetKey("raw_scans") in {d.asset_key for d in spec.deps}
    import yaml

    conf = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert conf["concurrency"]["pools"]["default_limit"] == 1


def test_production_requires_its_locations(monkeypatch):
    for name in ("RADAR_ASSETS_STORE_URL", "RADAR_ASSETS_SOURCE_URL", "RADAR_ASSETS_CATALOG_DIR"):
        monkeypatch.delenv(name, raising=False)
    import pytest

    with pytest.raises(RuntimeError, match="RADAR_ASSETS_STORE_URL"):
        build_definitions("production")
