"""The last run of a raw_scans + rendered_sweeps backfill publishes the catalog snapshot itself."""

import shutil

import dagster as dg
import pytest

from radar_assets.defs.catalog.assets import ROWS_WRITTEN_TAG
from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
from radar_assets.defs.partitions import sites_partitions
from radar_assets.defs.resources import RenderResource
from radar_assets.defs.scans.assets import build_raw_scans
from radar_assets.defs.scans.resources import RadarSourceResource
from radar_assets.defs.sweeps.assets import build_rendered_sweeps
from radar_assets.lib.catalog import query_readonly
from radar_assets.lib.seed import seed
from radar_assets.lib.store import LocalStore
from radar_assets_tests.conftest import sample_partitions, shared_path

raw_scans = build_raw_scans(sample_partitions())
rendered_sweeps = build_rendered_sweeps(sample_partitions())
PARTITION = "2019-06-17|KLOT"
RUN_CONFIG = dg.RunConfig(ops={"rendered_sweeps": {"config": {"size": 256}}})
BACKFILL = "dagster/backfill"


@pytest.fixture
def env(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(shared_path("level2", "KLOT", "KLOT20190617_181704_V06"), loose)
    seed(loose, LocalStore(tmp_path / "source"), log=lambda _m: None)
    store = StoreResource(url=str(tmp_path / "store"))
    resources = {
        "source": RadarSourceResource(url=str(tmp_path / "source"), level3_products=[]),
        "store": store,
        "catalog": CatalogResource(store=store, snapshot_dir=str(tmp_path / "catalog")),
        "render": RenderResource(cache_dir=str(tmp_path / "lookups")),
    }
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(sites_partitions.name, ["KLOT"])
    return {"resources": resources, "instance": instance, "snapshot": tmp_path / "catalog" / "catalog.duckdb"}


def _other_run(instance, tags: dict) -> dg.DagsterRun:
    """Another run of the backfill, still running (as the daemon would have created it)."""
    run = dg.DagsterRun(job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED, tags=tags)
    return instance.add_run(run)


def _materialize(env, tags=None):
    return dg.materialize(
        [raw_scans, rendered_sweeps],
        partition_key=PARTITION,
        instance=env["instance"],
        resources=env["resources"],
        run_config=RUN_CONFIG,
        tags=tags,
    )


def _published(result):
    (mat,) = result.asset_materializations_for_node("rendered_sweeps")
    return mat.metadata.get("catalog_published")


def test_only_the_last_run_of_a_backfill_publishes(env):
    other = _other_run(env["instance"], {BACKFILL: "b1"})
    first = _materialize(env, {BACKFILL: "b1"})
    assert first.success
    # Another run of the backfill is still writing its rows: this one leaves the publish to it.
    assert _published(first) is None
    assert not env["snapshot"].exists()
    assert env["instance"].get_run_by_id(first.run_id).tags[ROWS_WRITTEN_TAG] == "true"

    # The other run has written its rows (tagged, not yet finished), and an unrelated backfill runs: publish.
    env["instance"].add_run_tags(other.run_id, {ROWS_WRITTEN_TAG: "true"})
    _other_run(env["instance"], {BACKFILL: "b2"})
    last = _materialize(env, {BACKFILL: "b1"})
    assert last.success
    counts = _published(last).value
    assert counts["sweeps"] > 0
    _, [(n,)] = query_readonly(env["snapshot"], "select count(*) from sweeps")
    assert n == counts["sweeps"]


def test_runs_outside_backfills_leave_the_publish_to_the_sensor(env):
    result = _materialize(env)
    assert result.success
    assert _published(result) is None
    assert not env["snapshot"].exists()
    assert ROWS_WRITTEN_TAG not in env["instance"].get_run_by_id(result.run_id).tags
