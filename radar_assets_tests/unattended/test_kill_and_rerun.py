"""SIGKILL the run worker of a running rendered_sweeps partition: a re-execution completes it, and no partial
artifact is ever visible (every catalogued file is whole; leftovers of the killed process are not listed)."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import time

import pytest
from PIL import Image

from radar_assets.lib.catalog import local_catalog
from radar_assets_tests.conftest import SAMPLE_FIRST_DAY, shared_path
from radar_assets_tests.deployment.processes import BIN, ROOT, base_environment

pytestmark = pytest.mark.integration

PARTITION = "2021-06-25|KLOT"


def test_killed_render_is_completed_by_a_rerun_with_no_partial_artifact(tmp_path):
    home = tmp_path / "home"
    source = home / "source" / "2021" / "06" / "25" / "KLOT"
    source.mkdir(parents=True)
    shutil.copy(shared_path("level2", "KLOT", "KLOT20210625_075154_V06"), source)
    (home / "dagster").mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    env = base_environment(
        RADAR_ASSETS_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        RADAR_ASSETS_RENDER_SIZE="1024",
        RADAR_ASSETS_PARTITIONS_FIRST_DAY=SAMPLE_FIRST_DAY,
    )

    def materialize(asset: str) -> subprocess.Popen:
        args = [str(BIN / "dagster"), "asset", "materialize", "-m", "radar_assets.definitions",
                "--select", asset, "--partition", PARTITION]  # fmt: skip
        return subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )

    sites = subprocess.run(
        [str(BIN / "radar-assets"), "sites", "add", "KLOT"], env=env, cwd=ROOT, timeout=300
    )
    assert sites.returncode == 0
    raw = materialize("raw_scans")
    out, _ = raw.communicate(timeout=600)
    assert raw.returncode == 0, out[-3000:]

    store_root = home / "store"
    render = materialize("rendered_sweeps")
    deadline = time.monotonic() + 600
    # Kill the run's process group as soon as the first image exists: mid-partition, mid-volume.
    while not list(store_root.glob("sweeps/**/*.png")):
        assert render.poll() is None, render.stdout.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(render.pid, signal.SIGKILL)
    render.wait(timeout=60)
    catalog = local_catalog(home)
    assert catalog.read_partition("sweeps", PARTITION) is None, "nothing catalogued by the killed run"

    rerun = materialize("rendered_sweeps")
    out, _ = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, out[-3000:]
    rows = catalog.read_partition("sweeps", PARTITION).to_pylist()
    assert rows
    store = catalog.store
    for row in rows:
        png = store.get_bytes(row["png_key"])
        Image.open(io.BytesIO(png)).load()  # a whole PNG decodes
        assert store.exists(row["json_key"])
    # What the store lists under sweeps/ is exactly what the catalog points at (temp files are never listed).
    listed = {k for k in store.list_keys("sweeps/") if k.endswith(".png")}
    assert listed == {row["png_key"] for row in rows}
