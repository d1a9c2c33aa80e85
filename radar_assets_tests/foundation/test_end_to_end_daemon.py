"""End to end on a real SQLite Dagster instance: CLI materialisation, then the daemon publishes the catalog.

`dagster asset materialize` runs ``raw_scans`` for a site-day in its own process; the daemon's automation
sensor sees the new partition and launches ``catalog_snapshot`` (pool ``duckdb_writer``) by itself.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from radar_assets.lib.catalog import query_readonly
from radar_assets_tests.conftest import SAMPLE_FIRST_DAY, shared_path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.integration


def test_cli_materialise_then_daemon_publishes(tmp_path):
    volume = shared_path("level2", "KCRP", "KCRP20210101_000031_V06")
    home = tmp_path / "home"
    source = home / "source" / "2021" / "01" / "01" / "KCRP"
    source.mkdir(parents=True)
    shutil.copy(volume, source / volume.name)
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "RADAR_ASSETS_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "RADAR_ASSETS_PARTITIONS_FIRST_DAY": SAMPLE_FIRST_DAY,
    }

    def run(*args, timeout=300):
        return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)

    added = run(str(BIN / "radar-assets"), "sites", "add", "KCRP")
    assert added.returncode == 0, added.stderr
    mat = run(
        str(BIN / "dagster"), "asset", "materialize", "-m", "radar_assets.definitions",
        "--select", "raw_scans", "--partition", "2021-01-01|KCRP",
    )  # fmt: skip
    assert mat.returncode == 0, mat.stdout[-3000:] + mat.stderr[-3000:]
    assert (
        home / "store" / "raw" / "level2" / "KCRP" / "2021" / "01" / "01" / volume.name
    ).read_bytes() == volume.read_bytes()

    daemon_log = open(tmp_path / "daemon.log", "wb")  # noqa: SIM115 - closed below
    daemon = subprocess.Popen(
        [str(BIN / "radar-assets"), "daemon", "run", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, env=env, stdout=daemon_log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    snapshot = home / "catalog" / "catalog.duckdb"
    try:
        deadline = time.monotonic() + 150
        while not snapshot.exists() and time.monotonic() < deadline:
            time.sleep(2)
        assert snapshot.exists(), (tmp_path / "daemon.log").read_text()[-3000:]
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        daemon_log.close()
    _, rows = query_readonly(snapshot, "select scan_id, vcp, sweep_count from scans")
    assert rows == [("KCRP-L2-VOL-20210101T000031Z", 35, 12)]
