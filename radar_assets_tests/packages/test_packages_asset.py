"""``clipped_packages`` through Dagster and the ``/packages`` API, on a real KLOT volume and Illinois counties."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from radar_assets.api import create_app
from radar_assets.defs.packages.assets import PACKAGE_VERIFIED, build_clipped_packages, packages_resource
from radar_assets.defs.partitions import boundaries_partitions, sites_partitions
from radar_assets.defs.resources import shared_resources
from radar_assets.defs.scans.assets import build_raw_scans
from radar_assets.defs.sweeps.assets import build_rendered_sweeps
from radar_assets.defs.timeseries.assets import ZonalResource, build_timeseries_summaries
from radar_assets.lib.geo.boundaries import read_boundaries, register
from radar_assets.lib.packages import current_package, verify_package
from radar_assets.lib.seed import seed
from radar_assets.lib.store import LocalStore
from radar_assets.settings import open_catalog
from radar_assets_tests.conftest import sample_partitions, settings_for, shared_path

GRID = sample_partitions()
raw_scans, rendered_sweeps = build_raw_scans(GRID), build_rendered_sweeps(GRID)
timeseries_summaries, clipped_packages = build_timeseries_summaries(GRID), build_clipped_packages(GRID)

DAY = "2019-06-17"
COOK, DUPAGE, ALEXANDER = "IL-17031", "IL-17043", "IL-17003"


def _key(boundary: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"boundary": boundary, "day": DAY})


def _meta(result) -> dict:
    (mat,) = result.asset_materializations_for_node("clipped_packages")
    return {k: v.value for k, v in mat.metadata.items()}


def _check(result):
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("packages-home")
    settings = settings_for(home)
    loose = home / "loose"
    loose.mkdir()
    shutil.copy(shared_path("level2", "KLOT", "KLOT20190617_181704_V06"), loose)
    seed(loose, LocalStore(settings.source.url), log=lambda _m: None)
    resources = {**shared_resources(settings), "packages": packages_resource(settings)}
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(sites_partitions.name, ["KLOT"])
    run_config = dg.RunConfig(ops={"rendered_sweeps": {"config": {"size": 512}}})
    dg.materialize(
        [raw_scans, rendered_sweeps], partition_key=f"{DAY}|KLOT", instance=instance, resources=resources,
        run_config=run_config,
    )  # fmt: skip
    catalog = open_catalog(settings)
    load = read_boundaries(
        shared_path("boundaries", "derived", "illinois_counties.geojson"), "FIPS", "NAME", prefix="IL-"
    )
    register(catalog, load)
    instance.add_dynamic_partitions(boundaries_partitions.name, [COOK, DUPAGE, ALEXANDER])
    zonal = {"zonal": ZonalResource(cache_dir=None)}
    dg.materialize(
        [timeseries_summaries],
        partition_key=f"{DAY}|KLOT",
        instance=instance,
        resources={**resources, **zonal},
    )

    def run(boundary):
        return dg.materialize(
            [clipped_packages], partition_key=_key(boundary), instance=instance, resources=resources
        )

    results = {b: run(b) for b in (COOK, DUPAGE, ALEXANDER)}
    rerun = run(COOK)
    catalog.publish()
    return {"settings": settings, "catalog": catalog, "results": results, "rerun": rerun, "run": run}


def test_materialisation_publishes_a_verified_package_with_preview_and_summary(env):
    result = env["results"][COOK]
    meta = _meta(result)
    assert meta["status"] == "written" and meta["resource_count"] >= 3  # rasters + preview (+ csv)
    assert meta["frictionless"]["valid"] is True and meta["frictionless"]["errors"] == []
    assert "data:image/png;base64," in meta["preview"]
    check = _check(result)
    assert check.check_name == PACKAGE_VERIFIED and check.passed
    row = current_package(env["catalog"], COOK, DAY)
    assert row["version"] == meta["version"] and row["total_bytes"] == meta["total_bytes"]
    store = env["catalog"].store
    assert verify_package(store, row["datapackage_key"]).ok
    descriptor = json.loads(store.get_bytes(row["datapackage_key"]))
    assert descriptor["provenance"]["dagster_run_id"] == result.run_id
    assert descriptor["provenance"]["partition"]["key"] == f"{COOK}|{DAY}"
    # The boundary's time series from timeseries_summaries, one row per summarised scan, checked by frictionless.
    series = next(r for r in descriptor["resources"] if r["name"] == "timeseries")
    text = store.get_bytes(row["prefix"] + series["path"]).decode()
    header, *lines = text.splitlines()
    assert "boundary" in header.split(",") and "sweep_fingerprint" not in header
    assert lines and all(line.startswith(f"{COOK},KLOT,") for line in lines)
    assert [f["name"] for f in series["schema"]["fields"]] == header.split(",")
    raster = next(r for r in descriptor["resources"] if r["path"].startswith("rasters/"))
    # The archive key, not a machine path: the demo's local archive folder is not published.
    assert raster["sources"][0]["path"] == "2019/06/17/KLOT/KLOT20190617_181704_V06"


def test_rematerialising_unchanged_inputs_writes_nothing(env):
    meta = _meta(env["rerun"])
    assert meta["status"] == "unchanged" and meta["files_written"] == 0 and meta["files_deleted"] == 0
    assert meta["version"] == _meta(env["results"][COOK])["version"]
    assert _check(env["rerun"]).passed


def test_boundary_outside_coverage_materialises_without_a_package(env):
    result = env["results"][ALEXANDER]
    assert result.success
    meta = _meta(result)
    assert meta["status"] == "no-package" and meta["resource_count"] == 0
    assert current_package(env["catalog"], ALEXANDER, DAY) is None
    assert not list(env["catalog"].store.list_keys(f"packages/{ALEXANDER}/"))


# -- API --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(env):
    with TestClient(create_app(env["settings"])) as c:
        yield c


def test_list_filters_and_paginates(client):
    body = client.get("/packages").json()
    assert [(i["boundary"], i["day"]) for i in body["items"]] == [(COOK, DAY), (DUPAGE, DAY)]
    assert body["items"][0]["url"] == f"/packages/{COOK}/{DAY}"
    assert client.get("/packages", params={"boundary": DUPAGE}).json()["items"][0]["boundary"] == DUPAGE
    assert client.get("/packages", params={"start": "2019-06-18"}).json()["items"] == []
    assert len(client.get("/packages", params={"start": DAY, "end": DAY}).json()["items"]) == 2
    first = client.get("/packages", params={"limit": 1}).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = client.get("/packages", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert second["items"][0]["boundary"] == DUPAGE and second["next_cursor"] is None
    for bad in ({"start": "2019-06-18", "end": DAY}, {"cursor": "garbage!"}, {"cursor": "abcdefgh"},
                {"limit": 0}, {"boundary": "../x"}, {"nope": 1}):  # fmt: skip
        assert client.get("/packages", params=bad).status_code == 422, bad


def test_descriptor_resources_and_zip_are_the_stored_bytes(client, env):
    row = current_package(env["catalog"], COOK, DAY)
    store = env["catalog"].store
    r = client.get(f"/packages/{COOK}/{DAY}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert hashlib.sha256(r.content).hexdigest() == row["datapackage_sha256"]
    assert (
        client.get(f"/packages/{COOK}/{DAY}", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    )
    for res in json.loads(r.content)["resources"]:
        f = client.get(f"/packages/{COOK}/{DAY}/{res['name']}")
        assert f.status_code == 200, res["name"]
        assert "sha256:" + hashlib.sha256(f.content).hexdigest() == res["hash"]
        assert f.headers["content-type"].split(";")[0] == res["mediatype"].split(";")[0]
    z = client.get(f"/packages/{COOK}/{DAY}.zip")
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        folder = f"{COOK}_{DAY}"
        assert zf.read(f"{folder}/datapackage.json") == store.get_bytes(row["datapackage_key"])
        for res in row["resources"]:
            assert zf.read(f"{folder}/{res['path']}") == store.get_bytes(res["key"])


@pytest.mark.parametrize(
    "suffix",
    [
        "..%2F..%2Fcatalog%2Fcatalog.duckdb",
        "../datapackage.json",
        "..",
        "%2E%2E",
        "preview%00",
        "%00",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "rasters%2Fx.tif",
        "datapackage.json",  # a file of the package, but not a resource name
        "unknown",
    ],
)
def test_resource_names_never_reach_the_store_as_paths(client, suffix):
    r = client.get(f"/packages/{COOK}/{DAY}/{suffix}")
    assert r.status_code in (404, 422), (suffix, r.status_code)


def test_unknown_or_malformed_packages(client):
    assert client.get(f"/packages/{ALEXANDER}/{DAY}").status_code == 404  # no coverage, no package
    assert client.get(f"/packages/{COOK}/2019-06-18").status_code == 404
    assert client.get(f"/packages/{COOK}/2019-06-18.zip").status_code == 404
    assert client.get(f"/packages/{COOK}/2019-13-45").status_code == 422
    assert client.get(f"/packages/{COOK}/{DAY}", params={"x": 1}).status_code == 422
    assert client.get("/packages/..%2Fx/2019-06-17").status_code in (404, 422)
    assert client.post("/packages").status_code == 405
    assert client.delete(f"/packages/{COOK}/{DAY}").status_code == 405
