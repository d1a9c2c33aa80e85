"""Boundary packages against real KLOT volumes and the real Illinois county polygons.

Everything is real: volumes decoded and rendered by the platform's renderer into a LocalStore, the Census
county polygons, frictionless for validation, separate processes for the kill and race tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import shapely

from radar_assets.lib.catalog import Catalog
from radar_assets.lib.packages import (
    PACKAGES_SCHEMA,
    build_package,
    complete_versions,
    current_package,
    publish_package,
    verify_package,
    zip_stream,
)
from radar_assets.lib.packages.clip import clip_cog, polygon_to_mercator
from radar_assets.lib.packages.descriptor import check_resource_path
from radar_assets.lib.store import LocalStore
from radar_assets_tests.conftest import PROJECT_ROOT, shared_path
from radar_assets_tests.packages.support import illinois_counties, render_into_store

DAY = "2021-06-25"
COOK = "17031"
ALEXANDER = "17003"  # the southern tip of Illinois, beyond KLOT's range


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Two real KLOT volumes rendered (REF and VEL of sweeps 0-1) into one store."""
    root = tmp_path_factory.mktemp("rendered")
    store = LocalStore(root / "store")
    a = render_into_store(store, shared_path("level2", "KLOT", "KLOT20210625_075154_V06"))
    b = render_into_store(store, shared_path("level2", "KLOT", "KLOT20210729_123848_V06"))
    counties = illinois_counties(shared_path("boundaries", "derived", "illinois_counties.geojson"))
    return {"root": root, "store": store, "a": a, "b": b, "counties": counties}


def _timeseries(n: int = 6, seed: int = 3) -> pa.Table:
    """A time-series table in the shape the summaries produce (schema owned elsewhere; any schema works)."""
    from datetime import UTC, datetime, timedelta

    rng = np.random.default_rng(seed)
    t0 = datetime(2021, 6, 25, 7, 51, 54, tzinfo=UTC)
    rows = []
    for i in range(n):
        rows.append(
            {
                "boundary": "IL-17031",
                "site": "KLOT",
                "product": "REF",
                "scan_time": t0 + timedelta(minutes=5 * i, microseconds=250 * (i % 2)),
                "count": int(rng.integers(0, 5000)),
                "coverage": float(rng.random()),
                "mean": float(rng.normal(20, 5)) if i != 2 else float("nan"),
                "p90": None if i == 3 else float(rng.normal(40, 5)),
                "elevation": 0.1 * (i + 1),
                "max": float("inf") if i == 4 else 55.0,
            }
        )
    schema = pa.Table.from_pylist(rows).schema.set(8, pa.field("elevation", pa.float32()))
    return pa.Table.from_pylist(rows, schema=schema)


def _store(tmp_path: Path, rendered) -> LocalStore:
    """A fresh store holding a copy of the rendered COGs (tests publish into it independently)."""
    store = LocalStore(tmp_path / "store")
    for key, _size in rendered["store"].list_objects("sweeps/"):
        store.put_bytes(key, rendered["store"].get_bytes(key))
    return store


def _build(store, rendered, fips=COOK, volumes=("a",), timeseries=True, run_id="run-1"):
    scans = [rendered[v][0] for v in volumes]
    sweeps = [row for v in volumes for row in rendered[v][1]]
    return build_package(
        store,
        rendered["counties"][fips],
        DAY,
        sweeps,
        scans,
        _timeseries() if timeseries else None,
        code_version="test",
        run_id=run_id,
        source_urls={2: "s3://unidata-nexrad-level2"},
    )


def _files(store: LocalStore, prefix: str) -> dict[str, bytes]:
    return {k: store.get_bytes(k) for k in store.list_keys(prefix)}


# -- clipping ---------------------------------------------------------------------------------------


def test_every_illinois_county_is_masked_by_its_polygon_not_its_bbox(rendered):
    """Outside the polygon: nodata. Inside with data: the source value, cell for cell."""
    import rasterio
    from rasterio.io import MemoryFile

    store = rendered["store"]
    scan, rows = rendered["a"]
    checked = outside_cells = inside_data_cells = 0
    for row in rows:
        cog = store.get_bytes(row["cog_key"])
        with MemoryFile(cog) as mem, mem.open() as src:
            full = src.read(1)
            scale, offset = src.scales[0], src.offsets[0]
            transform = src.transform
        for county in rendered["counties"].values():
            geom = polygon_to_mercator(county.geometry)
            clipped = clip_cog(cog, geom)
            if clipped is None:
                continue
            g = clipped.grid
            xs = g.west + (np.arange(g.width) + 0.5) * g.pixel
            ys = g.north - (np.arange(g.height) + 0.5) * g.pixel
            xx, yy = np.meshgrid(xs, ys)
            # Independent of the rasteriser: shapely's point-in-polygon on every cell centre.
            inside = shapely.contains_xy(geom, xx, yy)
            col0 = round((g.west - transform.c) / g.pixel)
            row0 = round((transform.f - g.north) / g.pixel)
            source = full[row0 : row0 + g.height, col0 : col0 + g.width]
            assert np.all(clipped.data[~inside] == 0), f"{county.name}: data outside the polygon"
            assert np.array_equal(clipped.data[inside], source[inside]), f"{county.name}: values changed"
            # The window is the bounding box, so a bbox clip would have kept data outside the polygon.
            outside_cells += int((~inside & (source != 0)).sum())
            inside_data_cells += int((inside & (source != 0)).sum())
            checked += 1
            # The encoded COG carries the same cells, scale and offset.
            with rasterio.Env(), MemoryFile(clipped_bytes := _encode(clipped)) as m2, m2.open() as dst:
                assert np.array_equal(dst.read(1), clipped.data)
                assert (dst.scales[0], dst.offsets[0]) == (scale, offset)
                assert dst.nodata == 0 and dst.crs.to_epsg() == 3857
                assert dst.transform == g.transform()
            assert clipped_bytes == _encode(clipped)  # deterministic encoding
    assert checked > 2 * 40, "KLOT should cover most northern Illinois counties on both sweeps"
    assert outside_cells > 0 and inside_data_cells > 0, "the polygons must cut through echoes"


def _encode(clipped):
    from radar_assets.lib.packages.clip import encode_clipped

    return encode_clipped(clipped, {"boundary": "x"})


# -- package contents -------------------------------------------------------------------------------


def test_package_validates_with_frictionless_and_every_hash_matches(tmp_path, rendered):
    store = _store(tmp_path, rendered)
    catalog = Catalog(store, tmp_path / "snap")
    built = _build(store, rendered, volumes=("a", "b"))
    result = publish_package(
        store, catalog, built, boundary=built.boundary, day=DAY, lock_dir=tmp_path / "locks"
    )
    assert result.status == "written"
    row = current_package(catalog, built.boundary, DAY)
    assert row["version"] == built.version and row["resource_count"] == len(built.files)

    check = verify_package(store, row["datapackage_key"])
    assert check.ok, check.problems
    assert check.validation.valid and check.validation.resources == len(built.files)

    descriptor = json.loads(store.get_bytes(row["datapackage_key"]))
    assert descriptor["$schema"] == "https://datapackage.org/profiles/2.0/datapackage.json"
    assert hashlib.sha256(store.get_bytes(row["datapackage_key"])).hexdigest() == row["datapackage_sha256"]
    names = [r["name"] for r in descriptor["resources"]]
    assert len(set(names)) == len(names)
    rasters = [r for r in descriptor["resources"] if r["path"].startswith("rasters/")]
    assert len(rasters) == 4  # two volumes x (REF sweep 0, VEL sweep 1)
    total = len(store.get_bytes(row["datapackage_key"]))
    for res in descriptor["resources"]:
        data = store.get_bytes(row["prefix"] + res["path"])
        total += len(data)
        # Hashes recomputed here from the stored bytes, independently of the library.
        assert res["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert res["bytes"] == len(data)
        assert {"name", "path", "format", "mediatype", "licenses", "sources"} <= res.keys()
        assert "public domain" in res["licenses"][0]["title"].lower()
        assert "U.S. Government" in res["licenses"][0]["title"]
    assert total == row["total_bytes"]
    keys = {r["sources"][0]["path"] for r in rasters}
    assert keys == {f"s3://unidata-nexrad-level2/{rendered[v][0]['source_key']}" for v in ("a", "b")}
    prov = descriptor["provenance"]
    assert prov["partition"] == {"boundary": "IL-17031", "day": DAY, "key": f"IL-17031|{DAY}"}
    assert prov["dagster_run_id"] == "run-1" and prov["code_version"] == "test"
    input_keys = {i["key"]: i["sha256"] for i in prov["inputs"]}
    for v in ("a", "b"):
        assert input_keys[rendered[v][0]["source_key"]] == rendered[v][0]["sha256"]
    packaged = {r["path"].removeprefix("rasters/").removesuffix(".tif") for r in rasters}
    for v in ("a", "b"):
        for sweep in rendered[v][1]:
            if sweep["sweep_id"] in packaged:  # the lowest sweep of each moment
                cog = store.get_bytes(sweep["cog_key"])
                assert input_keys[sweep["cog_key"]] == hashlib.sha256(cog).hexdigest()
    assert len(packaged) == 4
    # The catalog row round-trips its schema.
    assert pa.Table.from_pylist([row], schema=PACKAGES_SCHEMA).num_rows == 1
    preview = store.get_bytes(row["prefix"] + "preview.png")
    assert preview.startswith(b"\x89PNG") and b"tIME" not in preview and b"tEXt" not in preview


def test_timeseries_csv_is_deterministic_and_checked_against_its_schema(tmp_path, rendered):
    from radar_assets.lib.packages.descriptor import validate_files
    from radar_assets.lib.packages.tabular import timeseries_csv

    table = _timeseries()
    shuffled = table.take(pa.array(np.random.default_rng(1).permutation(table.num_rows)))
    text = timeseries_csv(table)
    assert timeseries_csv(shuffled) == text
    lines = text.decode().splitlines()
    assert lines[0] == ",".join(table.schema.names)
    assert lines[1].split(",")[3] == "2021-06-25T07:51:54Z"
    assert lines[2].split(",")[3] == "2021-06-25T07:56:54.000250Z"
    assert ",," in text.decode()  # NaN and null are empty cells
    assert [line.split(",")[8] for line in lines[1:4]] == ["0.1", "0.2", "0.3"]  # float32 at its precision
    assert lines[5].split(",")[9] == "INF"

    store = _store(tmp_path, rendered)
    built = _build(store, rendered)
    files = {f.path: f.data for f in built.files}
    assert validate_files(built.datapackage, files).valid
    # A cell that breaks the schema is reported by frictionless.
    files["timeseries.csv"] = files["timeseries.csv"].replace(b"KLOT,REF,2021", b"KLOT,REF,notatime", 1)
    descriptor = json.loads(built.datapackage)
    res = next(r for r in descriptor["resources"] if r["name"] == "timeseries")
    res["bytes"] = len(files["timeseries.csv"])
    res["hash"] = "sha256:" + hashlib.sha256(files["timeseries.csv"]).hexdigest()
    report = validate_files(json.dumps(descriptor).encode(), files)
    assert not report.valid and any("timeseries" in e for e in report.errors)


def test_preview_paints_nothing_outside_the_boundary(tmp_path, rendered):
    from PIL import Image

    from radar_assets.lib.packages.preview import BACKGROUND, canvas_grid

    store = _store(tmp_path, rendered)
    built = _build(store, rendered)
    image = np.asarray(Image.open(io.BytesIO(built.preview)).convert("RGB"))
    county = rendered["counties"][COOK]
    geom = polygon_to_mercator(county.geometry)
    canvas = canvas_grid(geom.bounds, 512)
    assert image.shape[:2] == (canvas.height, canvas.width)
    xs = canvas.west + (np.arange(canvas.width) + 0.5) * canvas.pixel
    ys = canvas.north - (np.arange(canvas.height) + 0.5) * canvas.pixel
    xx, yy = np.meshgrid(xs, ys)
    # Away from the outline (3 px), outside pixels are background and inside ones show the echoes.
    band = geom.boundary.buffer(3 * canvas.pixel)
    far = ~shapely.contains_xy(band, xx, yy)
    inside = shapely.contains_xy(geom, xx, yy)
    assert np.all(image[far & ~inside] == BACKGROUND)
    coloured = np.any(image[far & inside] != np.array([228, 228, 232]), axis=-1)
    assert coloured.mean() > 0.3, "the stormy KLOT volume paints much of Cook County"


# -- publication ------------------------------------------------------------------------------------


def test_second_run_yields_identical_files_and_writes_nothing(tmp_path, rendered):
    store = _store(tmp_path, rendered)
    catalog = Catalog(store, tmp_path / "snap")
    first = _build(store, rendered, run_id="run-1")
    r1 = publish_package(store, catalog, first, boundary=first.boundary, day=DAY, lock_dir=tmp_path / "l")
    files1 = _files(store, "packages/")
    versions1 = dict(store.list_versions("packages/"))
    catalog_key = catalog.partition_key("packages", f"{first.boundary}|{DAY}")
    catalog_version = dict(store.list_versions(catalog_key))

    second = _build(store, rendered, run_id="run-2")  # a new run builds everything again from the inputs
    assert second.version == first.version
    assert [(f.path, f.data) for f in second.files] == [(f.path, f.data) for f in first.files]
    r2 = publish_package(store, catalog, second, boundary=first.boundary, day=DAY, lock_dir=tmp_path / "l")
    assert (r1.status, r2.status) == ("written", "unchanged")
    assert r2.written == [] and r2.deleted == []
    assert _files(store, "packages/") == files1
    assert dict(store.list_versions("packages/")) == versions1  # not even rewritten
    assert dict(store.list_versions(catalog_key)) == catalog_version
    # The recorded run is the one that produced the bytes.
    assert current_package(catalog, first.boundary, DAY)["run_id"] == "run-1"


def test_changed_inputs_replace_the_package_and_remove_the_old_version_after_the_switch(tmp_path, rendered):
    store = _store(tmp_path, rendered)
    catalog = Catalog(store, tmp_path / "snap")
    old = _build(store, rendered, volumes=("a",))
    new = _build(store, rendered, volumes=("a", "b"))
    assert new.version != old.version
    publish_package(store, catalog, old, boundary=old.boundary, day=DAY)
    seen: list[tuple[str, str]] = []

    def on_write(key):  # while the new version is written, the old one is still current and whole
        seen.append((key, current_package(catalog, old.boundary, DAY)["version"]))
        assert verify_package(store, old.prefix + "datapackage.json", frictionless=False).ok

    result = publish_package(store, catalog, new, boundary=new.boundary, day=DAY, on_write=on_write)
    assert result.status == "written"
    assert seen[-1][0].endswith("datapackage.json") and all(v == old.version for _, v in seen)
    assert current_package(catalog, new.boundary, DAY)["version"] == new.version
    assert complete_versions(store, new.boundary, DAY) == [new.version]
    assert not list(store.list_keys(old.prefix))
    assert set(result.deleted) == {old.prefix + f.path for f in old.files} | {old.prefix + "datapackage.json"}


def test_boundary_outside_every_sites_coverage_yields_no_package_and_no_error(tmp_path, rendered):
    store = _store(tmp_path, rendered)
    catalog = Catalog(store, tmp_path / "snap")
    far = rendered["counties"][ALEXANDER]
    sweeps = rendered["a"][1] + rendered["b"][1]
    assert build_package(store, far, DAY, sweeps, [rendered["a"][0]], _timeseries()) is None
    result = publish_package(store, catalog, None, boundary=far.id, day=DAY)
    assert result.status == "no-package" and result.version is None
    assert current_package(catalog, far.id, DAY) is None
    assert not list(store.list_keys("packages/"))
    # A day without any scan is the same case.
    assert build_package(store, rendered["counties"][COOK], DAY, [], [], None) is None
    # A package that loses its coverage is withdrawn: catalog row emptied, then its files deleted.
    cook = _build(store, rendered)
    publish_package(store, catalog, cook, boundary=cook.boundary, day=DAY)
    gone = publish_package(store, catalog, None, boundary=cook.boundary, day=DAY)
    assert gone.status == "no-package" and current_package(catalog, cook.boundary, DAY) is None
    assert not list(store.list_keys("packages/"))


def test_verification_catches_a_tampered_or_missing_file(tmp_path, rendered):
    store = _store(tmp_path, rendered)
    catalog = Catalog(store, tmp_path / "snap")
    built = _build(store, rendered)
    publish_package(store, catalog, built, boundary=built.boundary, day=DAY)
    key = built.prefix + built.files[0].path
    data = bytearray(store.get_bytes(key))
    data[-1] ^= 0xFF
    store.put_bytes(key, bytes(data))
    check = verify_package(store, built.prefix + "datapackage.json")
    assert not check.ok and any(built.files[0].name in p and "sha256" in p for p in check.problems)
    assert not check.validation.valid
    # A re-publication heals it (the damaged version is not taken as complete).
    assert publish_package(store, catalog, built, boundary=built.boundary, day=DAY).status == "written"
    assert verify_package(store, built.prefix + "datapackage.json").ok
    store.delete(built.prefix + "preview.png")
    check = verify_package(store, built.prefix + "datapackage.json")
    assert not check.ok and any("preview" in p and "missing" in p for p in check.problems)


def test_zip_stream_holds_the_package_byte_for_byte(tmp_path, rendered):
    store = _store(tmp_path, rendered)
    catalog = Catalog(store, tmp_path / "snap")
    built = _build(store, rendered)
    publish_package(store, catalog, built, boundary=built.boundary, day=DAY)
    dp_key = built.prefix + "datapackage.json"
    chunks = list(zip_stream(store, dp_key, folder="IL-17031_2021-06-25", chunk_size=4096))
    assert len(chunks) > 1  # streamed, not one blob
    blob = b"".join(chunks)
    assert blob == b"".join(zip_stream(store, dp_key, folder="IL-17031_2021-06-25"))  # deterministic
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert names[0] == "IL-17031_2021-06-25/datapackage.json"
        for f in built.files:
            assert zf.read(f"IL-17031_2021-06-25/{f.path}") == store.get_bytes(built.prefix + f.path)


@pytest.mark.parametrize("path", ["../x.tif", "/etc/passwd", "a/../../b", "a\x00b", "a\\b", ""])
def test_unsafe_resource_paths_are_refused(path):
    with pytest.raises(ValueError):
        check_resource_path(path)


# -- failures and concurrency (real processes) ---------------------------------------------------


def _publisher(tmp_path: Path, built, *extra: str) -> subprocess.Popen:
    pkl = tmp_path / f"built-{built.version}-{time.monotonic_ns()}.pkl"
    pkl.write_bytes(pickle.dumps(built))
    cmd = [
        sys.executable, "-m", "radar_assets_tests.packages.support", "publish", "--built", str(pkl),
        "--store", str(tmp_path / "store"), "--snapshots", str(tmp_path / "snap"), *extra,
    ]  # fmt: skip
    return subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_while_writing_leaves_the_previous_version_readable_and_no_partial_one_visible(
    tmp_path, rendered
):
    store = _store(tmp_path, rendered)
    catalog = Catalog(store, tmp_path / "snap")
    old = _build(store, rendered, volumes=("a",))
    new = _build(store, rendered, volumes=("a", "b"))
    publish_package(store, catalog, old, boundary=old.boundary, day=DAY, lock_dir=tmp_path / "locks")
    marker = tmp_path / "marker"
    proc = _publisher(
        tmp_path, new, "--lock-dir", str(tmp_path / "locks"), "--hang-after", "2", "--marker", str(marker)
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the publisher never reached its second file"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    written = list(store.list_keys(new.prefix))
    assert len(written) == 2 and not any(k.endswith("datapackage.json") for k in written)  # really mid-write
    row = current_package(catalog, old.boundary, DAY)
    assert row["version"] == old.version
    assert verify_package(store, row["datapackage_key"]).ok
    assert complete_versions(store, old.boundary, DAY) == [old.version]
    for res in row["resources"]:
        assert hashlib.sha256(store.get_bytes(res["key"])).hexdigest() == res["sha256"]

    # The lock died with the process: the next run publishes and clears the partial leftovers.
    result = publish_package(store, catalog, new, boundary=new.boundary, day=DAY, lock_dir=tmp_path / "locks")
    assert result.status == "written"
    assert complete_versions(store, new.boundary, DAY) == [new.version]
    assert {k for k in store.list_keys("packages/")} == {new.prefix + f.path for f in new.files} | {
        new.prefix + "datapackage.json"
    }


@pytest.mark.integration
def test_two_processes_publishing_one_partition_at_once_never_corrupt_it(tmp_path, rendered):
    store = _store(tmp_path, rendered)
    catalog = Catalog(store, tmp_path / "snap")
    one = _build(store, rendered, volumes=("a",), run_id="one")
    two = _build(store, rendered, volumes=("a", "b"), run_id="two")
    same = _build(store, rendered, volumes=("a", "b"), run_id="same")
    for rivals in ([one, two], [two, one], [two, same], [one, two]):
        start_at = time.time() + 2.0  # both interpreters are up and waiting by then
        procs = [
            _publisher(tmp_path, b, "--lock-dir", str(tmp_path / "locks"), "--start-at", str(start_at))
            for b in rivals
        ]
        for p, b in zip(procs, rivals, strict=True):
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            status, version = out.split()
            assert status in ("written", "switched", "unchanged") and version == b.version
        row = current_package(catalog, one.boundary, DAY)
        assert row["version"] in {one.version, two.version}
        check = verify_package(store, row["datapackage_key"])
        assert check.ok, check.problems
        # Exactly the current version is left, whole.
        assert complete_versions(store, one.boundary, DAY) == [row["version"]]
        assert all(k.startswith(row["prefix"]) for k in store.list_keys("packages/"))


def test_a_polygon_in_the_grid_corner_but_beyond_the_radar_range_gets_no_package(tmp_path, rendered):
    """The grid is the square around the range disc: its corners are not coverage."""
    from shapely.geometry import box

    from radar_assets.lib.packages import Boundary

    store = _store(tmp_path, rendered)
    scan, rows = rendered["a"]
    row = rows[0]
    corner = box(row["east"] - 0.4, row["north"] - 0.3, row["east"] - 0.2, row["north"] - 0.1)
    far = Boundary(id="corner", name="grid corner", geometry=corner)
    assert build_package(store, far, DAY, rows, [scan]) is None
    # Without the radar location (no bounds JSON) only the grid is known, and the corner is inside it.
    blind = [{k: v for k, v in r.items() if k != "json_key"} for r in rows]
    assert build_package(store, far, DAY, blind, [scan]) is not None


@pytest.mark.integration
def test_publication_on_real_s3(tmp_path, rendered):
    """The same protocol on SeaweedFS: versions, unchanged re-run, replacement, verification, zip."""
    from radar_assets.lib.store import S3Store
    from radar_assets_tests.seaweed import ACCESS_KEY, SECRET_KEY, seaweedfs

    (tmp_path / "weed").mkdir()
    with seaweedfs(tmp_path / "weed") as endpoint:
        store = S3Store(
            bucket="radar", prefix="platform", endpoint_url=endpoint, access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        )  # fmt: skip
        store.ensure_bucket()
        for key, _size in rendered["store"].list_objects("sweeps/"):
            store.put_bytes(key, rendered["store"].get_bytes(key))
        catalog = Catalog(store, tmp_path / "snap")
        old = _build(store, rendered, volumes=("a",))
        new = _build(store, rendered, volumes=("a", "b"))
        locks = tmp_path / "locks"
        assert (
            publish_package(store, catalog, old, boundary=old.boundary, day=DAY, lock_dir=locks).status
            == "written"
        )
        again = publish_package(store, catalog, old, boundary=old.boundary, day=DAY, lock_dir=locks)
        assert again.status == "unchanged" and again.written == []
        replaced = publish_package(store, catalog, new, boundary=new.boundary, day=DAY, lock_dir=locks)
        assert replaced.status == "written" and len(replaced.deleted) == len(old.files) + 1
        assert complete_versions(store, new.boundary, DAY) == [new.version]
        row = current_package(catalog, new.boundary, DAY)
        assert row["version"] == new.version and verify_package(store, row["datapackage_key"]).ok
        with zipfile.ZipFile(io.BytesIO(b"".join(zip_stream(store, row["datapackage_key"])))) as zf:
            assert sorted(zf.namelist()) == sorted(["datapackage.json", *(f.path for f in new.files)])
