"""``rendered_sweeps`` on real Level 2 (Message 31 and Message 1) and Level 3 files, through Dagster."""

import hashlib
import io
import json
import shutil

import dagster as dg
import numpy as np
import pytest
from PIL import Image

from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
from radar_assets.defs.partitions import sites_partitions
from radar_assets.defs.resources import RenderResource
from radar_assets.defs.scans.assets import build_raw_scans
from radar_assets.defs.scans.resources import RadarSourceResource
from radar_assets.defs.sweeps.assets import build_rendered_sweeps
from radar_assets.lib.render.grid import lookup_cache_dir
from radar_assets.lib.seed import seed
from radar_assets.lib.sites import site
from radar_assets.lib.store import LocalStore
from radar_assets.lib.sweeps import distance_km
from radar_assets_tests.conftest import sample_partitions, shared_path

raw_scans = build_raw_scans(sample_partitions())
rendered_sweeps = build_rendered_sweeps(sample_partitions())

PARTITIONS = ["2019-06-17|KLOT", "2005-08-28|KLIX", "2021-01-31|KLOT"]
RUN_CONFIG = dg.RunConfig(ops={"rendered_sweeps": {"config": {"size": 512}}})


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweeps")
    loose = tmp / "loose"
    loose.mkdir()
    for rel in ["level2/KLOT/KLOT20190617_181704_V06", "level2/msg1/KLIX20050828_180149.gz"]:
        shutil.copy(shared_path(*rel.split("/")), loose)
    for path in shared_path("level3", "KLOT").iterdir():
        if "2021_01_31" in path.name:
            shutil.copy(path, loose)
    seed(loose, LocalStore(tmp / "source"), log=lambda _m: None)
    store = StoreResource(url=str(tmp / "store"))
    resources = {
        "source": RadarSourceResource(url=str(tmp / "source")),
        "store": store,
        "catalog": CatalogResource(store=store, snapshot_dir=str(tmp / "catalog")),
        "render": RenderResource(cache_dir=str(lookup_cache_dir())),
    }
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(sites_partitions.name, ["KLOT", "KLIX"])
    results = {
        p: dg.materialize([raw_scans, rendered_sweeps], partition_key=p, instance=instance, resources=resources,
                          run_config=RUN_CONFIG)
        for p in PARTITIONS
    }  # fmt: skip
    return {
        "resources": resources,
        "instance": instance,
        "results": results,
        "store": LocalStore(tmp / "store"),
        "root": tmp,
    }


def _meta(result):
    (mat,) = result.asset_materializations_for_node("rendered_sweeps")
    return {k: v.value for k, v in mat.metadata.items()}


def _sweeps(env, partition):
    return env["resources"]["catalog"].get_catalog().read_partition("sweeps", partition).to_pylist()


@pytest.mark.parametrize("partition", PARTITIONS)
def test_every_sweep_rendered_with_bounds_near_the_site(env, partition):
    result = env["results"][partition]
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["every_sweep_rendered"].passed, checks["every_sweep_rendered"].metadata
    assert checks["bounds_within_500_km"].passed
    meta = _meta(result)
    assert "thumbnail" in meta and "data:image/png;base64," in meta["thumbnail"]
    rows = _sweeps(env, partition)
    assert rows and meta["images_rendered"] == len(rows)
    where = site(partition.split("|")[1])
    for row in rows:
        png = Image.open(io.BytesIO(env["store"].get_bytes(row["png_key"])))
        assert png.format == "PNG" and max(png.size) == 512 and png.mode in ("P", "RGBA")
        bounds = json.loads(env["store"].get_bytes(row["json_key"]))
        west, south, east, north = bounds["west"], bounds["south"], bounds["east"], bounds["north"]
        # MapLibre image-source order: top-left, top-right, bottom-right, bottom-left
        assert bounds["coordinates"] == [[west, north], [east, north], [east, south], [west, south]]
        assert west < where.lon < east and south < where.lat < north
        assert distance_km(where.lat, where.lon, (south + north) / 2, (west + east) / 2) < 5
        assert env["store"].get_bytes(row["cog_key"])[:4] in (b"II*\x00", b"MM\x00*")


def test_level2_images_cover_reflectivity_on_every_sweep(env):
    scans = env["resources"]["catalog"].get_catalog().read_partition("scans", "2019-06-17|KLOT").to_pylist()
    (scan,) = [s for s in scans if s["level"] == 2]
    ref = sorted(r["sweep_index"] for r in _sweeps(env, "2019-06-17|KLOT") if r["moment"] == "REF")
    assert ref == list(range(scan["sweep_count"]))
    assert any(r["moment"] == "VEL" for r in _sweeps(env, "2019-06-17|KLOT"))


def test_each_level2_volume_is_decompressed_once(env):
    # raw_scans left the stream it decompressed beside the lookup cache; rendered_sweeps took it.
    for partition, level2 in (("2019-06-17|KLOT", 1), ("2005-08-28|KLIX", 1), ("2021-01-31|KLOT", 0)):
        assert _meta(env["results"][partition])["decompressed_streams_reused"] == level2, partition
    for rel in ("level2/KLOT/KLOT20190617_181704_V06", "level2/msg1/KLIX20050828_180149.gz"):
        digest = hashlib.sha256(shared_path(*rel.split("/")).read_bytes()).hexdigest()
        assert not (lookup_cache_dir().parent / "level2-streams" / f"stream-{digest}.lz4").exists()


def test_message1_location_comes_from_the_site_table(env):
    meta = _meta(env["results"]["2005-08-28|KLIX"])
    assert "KLIX-L2-VOL-20050828T180149Z" in meta["location_from_site_table"]
    row = _sweeps(env, "2005-08-28|KLIX")[0]
    bounds = json.loads(env["store"].get_bytes(row["json_key"]))
    assert bounds["location_from_site_table"] is True
    assert np.isclose(bounds["radar_lat"], site("KLIX").lat) and np.isclose(
        bounds["radar_lon"], site("KLIX").lon
    )


def test_level3_products_render_their_single_moment(env):
    rows = _sweeps(env, "2021-01-31|KLOT")
    assert {r["product"] for r in rows} == {
        "N0H",
        "HHC",
        "N1P",
        "NTP",
    }  # N0S (velocity) is not an imagery product
    assert all(r["level"] == 3 and r["sweep_index"] == 0 for r in rows)


def test_rerun_changes_nothing(env):
    before = list(env["store"].list_objects(""))
    mtimes = {k: (env["store"].root / k).stat().st_mtime_ns for k, _ in before}
    for partition in PARTITIONS:
        result = dg.materialize([rendered_sweeps], partition_key=partition, instance=env["instance"],
                                resources=env["resources"], run_config=RUN_CONFIG)  # fmt: skip
        meta = _meta(result)
        assert meta["images_rendered"] == 0 and meta["catalog_files_written"] == []
    after = list(env["store"].list_objects(""))
    assert after == before
    assert {k: (env["store"].root / k).stat().st_mtime_ns for k, _ in after} == mtimes


def test_corrupt_stored_volume_is_rejected_and_the_rest_lands(env):
    partition = "2021-01-31|KLOT"
    cat = env["resources"]["catalog"].get_catalog()
    scans = {s["product"]: s for s in cat.read_partition("scans", partition).to_pylist()}
    victim = scans["HHC"]
    # Corrupt the platform's own copy and forget its images, so the next run must decode it again.
    data = env["store"].get_bytes(victim["store_key"])
    env["store"].put_bytes(victim["store_key"], data[: len(data) // 3])
    kept = [r for r in _sweeps(env, partition) if r["scan_id"] != victim["scan_id"]]
    import pyarrow as pa

    cat.write_partition(
        "sweeps", partition, pa.Table.from_pylist(kept, schema=cat.read_partition("sweeps", partition).schema)
    )
    result = dg.materialize([rendered_sweeps], partition_key=partition, instance=env["instance"],
                            resources=env["resources"], run_config=RUN_CONFIG)  # fmt: skip
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["every_sweep_rendered"].passed is False
    rejects = cat.read_partition("rejects", f"rendered_sweeps|{partition}").to_pylist()
    assert [r["source_key"] for r in rejects] == [victim["source_key"]]
    assert victim["store_key"] in rejects[0]["reason"]
    assert {r["product"] for r in _sweeps(env, partition)} == {"N0H", "N1P", "NTP"}
    env["store"].put_bytes(victim["store_key"], data)  # restore for other tests


def test_api_serves_the_rendered_files_and_tiles(env):
    """The real pipeline's outputs through the API: sweep list, PNG, bounds JSON, COG and a map tile."""
    import morecantile
    from fastapi.testclient import TestClient

    from radar_assets.api import create_app
    from radar_assets_tests.conftest import settings_for

    env["resources"]["catalog"].get_catalog().publish()
    rows = [r for r in _sweeps(env, "2019-06-17|KLOT") if r["moment"] == "REF" and r["sweep_index"] == 0]
    (row,) = rows
    with TestClient(create_app(settings_for(env["root"]))) as client:
        listed = client.get("/sweeps", params={"scan_id": row["scan_id"], "moment": "REF"}).json()["items"]
        assert row["sweep_id"] in {s["sweep_id"] for s in listed}
        for ext, key in (("png", "png_key"), ("json", "json_key"), ("tif", "cog_key")):
            r = client.get(f"/sweeps/{row['sweep_id']}.{ext}")
            assert r.status_code == 200 and r.content == env["store"].get_bytes(row[key])
        where = site("KLOT")
        tile = morecantile.tms.get("WebMercatorQuad").tile(where.lon + 0.5, where.lat + 0.3, 7)
        r = client.get(f"/tiles/{row['sweep_id']}/{tile.z}/{tile.x}/{tile.y}.png")
        assert r.status_code == 200, r.text
        rgba = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
        assert rgba.shape == (256, 256, 4) and (rgba[..., 3] > 0).any()
