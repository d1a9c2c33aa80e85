"""Each endpoint against the published test catalog: contents, filters, formats, files, tiles, headers."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from radar_assets.api import create_app
from radar_assets.api.dependencies import get_snapshots
from radar_assets.api.errors import CatalogUnavailableError
from radar_assets.lib.catalog import local_catalog
from radar_assets_tests.api.catalog_data import (
    ECHO_SCANS_SCHEMA,
    FILE_SWEEP,
    KLOT_LAT,
    KLOT_LON,
    SCANS_SCHEMA,
    cog_bytes,
    echo_rows,
    lonlat_to_tile,
    png_bytes,
    scan_rows,
    sweep_rows,
    table,
)
from radar_assets_tests.conftest import settings_for

SCANS = scan_rows()
SWEEPS = sweep_rows(SCANS)


def test_health_reports_snapshot_and_counts(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    counts = body["snapshot"]["row_counts"]
    assert counts["scans"] == len(SCANS) and counts["sweeps"] == len(SWEEPS)
    assert counts["echoes"] == len(echo_rows()[0])
    assert 0 <= body["snapshot"]["age_seconds"] < 3600
    assert set(body["tables"]) == {"scans", "sweeps", "echoes", "echo_scans"}
    assert r.headers["cache-control"] == "no-store"


def test_health_without_snapshot_is_503_without_leaking_the_path(tmp_path):
    app = create_app(settings_for(tmp_path / "nothing-here"))
    with TestClient(app) as c:
        for url in ("/health", "/scans", "/sites", "/sweeps/" + FILE_SWEEP + ".png"):
            r = c.get(url)
            assert r.status_code == 503, url
            assert "publish" in r.json()["detail"]
            assert str(tmp_path) not in r.text


def test_dependency_override_swaps_the_catalog(app):
    class Unavailable:
        def current(self):
            raise CatalogUnavailableError("maintenance")

    app.dependency_overrides[get_snapshots] = lambda: Unavailable()
    try:
        with TestClient(app) as c:
            r = c.get("/health")
        assert r.status_code == 503 and r.json() == {"detail": "maintenance"}
    finally:
        app.dependency_overrides.clear()


def test_sites_counts_and_latest_scan(client):
    items = {s["site"]: s for s in client.get("/sites").json()["items"]}
    assert set(items) == {"KLOT", "KDMX", "KTLX"}
    klot = [s for s in SCANS if s["site"] == "KLOT"]
    latest = max(klot, key=lambda s: s["volume_start"])
    assert items["KLOT"]["scans"] == len(klot)
    assert items["KLOT"]["level3_scans"] == sum(s["level"] == 3 for s in klot)
    assert items["KLOT"]["latest_scan_id"] == latest["scan_id"]
    assert items["KLOT"]["products"] == ["N0Q", "N0U", "NST", "VOL"]
    # location from the NEXRAD site table, for map markers
    assert (items["KLOT"]["latitude"], items["KLOT"]["longitude"]) == (41.60444, -88.08472)
    assert items["KTLX"]["elevation_m"] == round(1213 * 0.3048, 1)
    assert client.get("/sites?level=3").json()["items"][0]["site"] == "KLOT"
    assert {s["site"] for s in client.get("/sites?level=3").json()["items"]} == {"KLOT", "KTLX"}
    assert client.get("/sites/klot").json()["site"] == "KLOT"
    assert client.get("/sites/KXXX").status_code == 404


def test_scans_filters(client):
    r = client.get("/scans", params={"site": "KTLX", "level": 3, "product": "n0q", "limit": 1000})
    assert r.status_code == 200
    got = [s["scan_id"] for s in r.json()["items"]]
    want = sorted(
        (s for s in SCANS if s["site"] == "KTLX" and s["level"] == 3 and s["product"] == "N0Q"),
        key=lambda s: (s["volume_start"], s["scan_id"]),
    )
    assert got == [s["scan_id"] for s in want] and got
    assert r.json()["next_cursor"] is None

    start, end = "2021-06-25T01:00:00Z", "2021-06-25T02:00:00+00:00"
    items = client.get("/scans", params={"site": "KLOT", "start": start, "end": end, "limit": 1000}).json()[
        "items"
    ]
    times = {i["volume_start"] for i in items}
    assert min(times) == "2021-06-25T01:00:00Z"  # start inclusive
    assert "2021-06-25T02:00:00Z" not in times  # end exclusive
    assert len(items) == sum(
        1 for s in SCANS if s["site"] == "KLOT" and "01:00" <= s["volume_start"].strftime("%H:%M") < "02:00"
    )
    # Naive times are UTC; other offsets are converted.
    naive = client.get(
        "/scans", params={"site": "KLOT", "start": "2021-06-25T01:00:00", "end": "2021-06-25T02:00"}
    )
    offset = client.get(
        "/scans",
        params={"site": "KLOT", "start": "2021-06-24T20:00:00-05:00", "end": "2021-06-24T21:00:00-05:00"},
    )
    assert naive.json()["items"] == offset.json()["items"] == items[:100]


def test_scan_detail_and_404(client):
    sid = "KLOT-L2-VOL-20210625T001000Z"
    r = client.get(f"/scans/{sid}")
    assert r.status_code == 200
    body = r.json()
    assert body["scan_id"] == sid and body["vcp"] == 212 and body["elevations"] == [0.5, 0.9, 1.3]
    assert body["sweeps_url"] == f"/sweeps?scan_id={sid}"
    assert "store_key" not in body
    missing = client.get("/scans/KLOT-L2-VOL-20300101T000000Z")
    assert missing.status_code == 404 and "KLOT-L2-VOL-20300101T000000Z" in missing.json()["detail"]
    assert client.get("/scans/klot-l2-vol").status_code == 422


def test_sweeps_by_scan_moment_elevation(client):
    scan = "KLOT-L2-VOL-20210625T000000Z"
    items = client.get("/sweeps", params={"scan_id": scan}).json()["items"]
    assert sorted(i["sweep_id"] for i in items) == sorted(
        s["sweep_id"] for s in SWEEPS if s["scan_id"] == scan
    )
    ref = client.get("/sweeps", params={"scan_id": scan, "moment": "ref", "elevation": 0.9}).json()["items"]
    assert [i["sweep_id"] for i in ref] == [f"{scan}-REF-01"]
    assert ref[0]["tif_url"] is None and ref[0]["tiles_url"] is None  # no COG for index 1
    first = client.get(f"/sweeps/{FILE_SWEEP}").json()
    assert first["tiles_url"] == f"/tiles/{FILE_SWEEP}/{{z}}/{{x}}/{{y}}.png"
    assert first["bounds"][0] == pytest.approx(KLOT_LON - 2)
    assert "png_key" not in first and "cog_key" not in first
    assert client.get("/sweeps", params={"scan_id": scan, "site": "KTLX"}).json()["items"] == []
    assert client.get("/sweeps/KLOT-L2-VOL-20210625T000000Z-REF-09").status_code == 404


def test_sweeps_geojson(client):
    r = client.get("/sweeps", params={"site": "KLOT", "format": "geojson", "limit": 3})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["etag"]
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 3 and fc["next_cursor"]
    feature = fc["features"][0]
    ring = feature["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5
    lons = [p[0] for p in ring]
    assert min(lons) == pytest.approx(KLOT_LON - 2) and max(lons) == pytest.approx(KLOT_LON + 2)
    assert feature["id"] == feature["properties"]["sweep_id"]


def test_sweep_files_are_served_from_the_store(client, catalog_root):
    png = client.get(f"/sweeps/{FILE_SWEEP}.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content == png_bytes()
    assert "immutable" in png.headers["cache-control"] and png.headers["etag"]
    assert (
        client.get(f"/sweeps/{FILE_SWEEP}.png", headers={"If-None-Match": png.headers["etag"]}).status_code
        == 304
    )
    bounds = client.get(f"/sweeps/{FILE_SWEEP}.json").json()
    assert bounds["bounds"][0] == pytest.approx(KLOT_LON - 2)
    tif = client.get(f"/sweeps/{FILE_SWEEP}.tif")
    assert tif.status_code == 200 and tif.headers["content-type"].startswith("image/tiff")
    row = next(s for s in SWEEPS if s["sweep_id"] == FILE_SWEEP)
    assert tif.content == local_catalog(catalog_root).store.get_bytes(row["cog_key"])
    # Catalog row present but object missing from the store; and no key at all.
    other = "KLOT-L2-VOL-20210625T001000Z-REF-00"
    r = client.get(f"/sweeps/{other}.png")
    assert r.status_code == 404 and "missing from the store" in r.json()["detail"]
    assert "sweeps/" not in r.text  # the store key is not disclosed
    assert client.get(f"/sweeps/{other[:-2]}01.tif").status_code == 404


def test_tiles_render_the_cog(client):
    z = 6
    x, y = lonlat_to_tile(KLOT_LON, KLOT_LAT, z)
    r = client.get(f"/tiles/{FILE_SWEEP}/{z}/{x}/{y}.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))
    assert img.shape == (256, 256, 4)
    alpha = img[..., 3]
    assert (alpha == 255).sum() > 1000  # data inside the disc
    assert (alpha == 0).sum() > 0  # NaN outside the disc / outside the COG is transparent
    assert len(np.unique(img[alpha == 255][:, :3], axis=0)) > 10  # a colour ramp, not one colour
    big = client.get(f"/tiles/{FILE_SWEEP}/{z}/{x}/{y}.png", params={"tilesize": 512, "colormap": "viridis"})
    assert Image.open(io.BytesIO(big.content)).size == (512, 512)
    assert (
        r.headers["etag"]
        and client.get(
            f"/tiles/{FILE_SWEEP}/{z}/{x}/{y}.png", headers={"If-None-Match": r.headers["etag"]}
        ).status_code
        == 304
    )
    # Outside the COG: an empty transparent tile; outside the zoom level's grid: 422; unknown colormap: 422.
    outside = client.get(f"/tiles/{FILE_SWEEP}/{z}/0/0.png")
    assert outside.status_code == 200 and outside.headers["content-type"] == "image/png"
    assert not np.asarray(Image.open(io.BytesIO(outside.content)).convert("RGBA"))[..., 3].any()
    bad = client.get(f"/tiles/{FILE_SWEEP}/2/4/0.png")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "x"]
    assert client.get(f"/tiles/{FILE_SWEEP}/{z}/{x}/{y}.png", params={"colormap": "nope"}).status_code == 422
    assert client.get(f"/tiles/{FILE_SWEEP}/25/0/0.png").status_code == 422
    # A sweep without a COG.
    assert client.get(f"/tiles/{FILE_SWEEP[:-2]}01/{z}/{x}/{y}.png").status_code == 404


def test_products_level3_codes(client):
    items = client.get("/products").json()["items"]
    assert [(p["product"], p["product_code"], p["scans"], p["sites"]) for p in items] == [
        ("N0Q", 94, 60, 2),
        ("N0U", 99, 60, 2),
        ("NST", 58, 30, 1),
    ]
    klot = client.get("/products", params={"site": "KLOT"}).json()["items"]
    assert [(p["product"], p["sites"], p["scans"]) for p in klot] == [
        ("N0Q", 1, 30),
        ("N0U", 1, 30),
        ("NST", 1, 30),
    ]
    assert client.get("/products", params={"site": "KDMX"}).json()["items"] == []


def test_echoes_json_and_csv(client):
    echoes, echo_scans = echo_rows()
    r = client.get("/echoes", params={"station": "sas", "limit": 1000})
    items = r.json()["items"]
    assert len(items) == sum(e["station"] == "sas" for e in echoes)
    assert items[3]["velocity"] is None  # NaN in the catalog -> null in JSON
    start, end = "2021-06-25T00:00:03Z", "2021-06-25T00:00:09Z"
    c = client.get("/echoes", params={"station": "sas", "start": start, "end": end, "format": "csv"})
    assert c.status_code == 200 and c.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(c.text)))
    assert len(rows) == 2 * 5 and {r["record_time"] for r in rows} == {
        "2021-06-25T00:00:03Z",
        "2021-06-25T00:00:06Z",
    }
    assert rows[3]["velocity"] == "" and rows[0]["power"] == "12.5"
    paged = client.get("/echoes", params={"format": "csv", "limit": 7})
    assert len(list(csv.DictReader(io.StringIO(paged.text)))) == 7 and paged.headers["x-next-cursor"]
    scans = client.get("/echoes/scans", params={"station": "rkn"}).json()["items"]
    assert [s["scan_start"] for s in scans] == sorted(
        s["scan_start"].strftime("%Y-%m-%dT%H:%M:%SZ") for s in echo_scans if s["station"] == "rkn"
    )


def test_missing_tables_read_as_empty(tmp_path):
    catalog = local_catalog(tmp_path)
    catalog.write_partition("echo_scans", "2021-06-25-00", table(echo_rows()[1], ECHO_SCANS_SCHEMA))
    catalog.publish()
    with TestClient(create_app(settings_for(tmp_path))) as c:
        for url in ("/scans", "/sweeps", "/echoes"):
            r = c.get(url)
            assert r.status_code == 200 and r.json()["items"] == [] and r.json()["next_cursor"] is None
        assert c.get("/sites").json()["items"] == [] and c.get("/products").json()["items"] == []
        assert c.get("/scans/KLOT-L2-VOL-20210625T000000Z").status_code == 404
        assert c.get(f"/tiles/{FILE_SWEEP}/0/0/0.png").status_code == 404
        assert len(c.get("/echoes/scans").json()["items"]) == 9
        assert c.get("/health").json()["snapshot"]["row_counts"] == {"echo_scans": 9}


def test_missing_columns_read_as_null(tmp_path):
    """An older scans partition without some columns: they read as null, nothing fails."""
    catalog = local_catalog(tmp_path)
    rows = scan_rows(2)
    old = table(rows, SCANS_SCHEMA).drop_columns(["vcp", "elevations", "ingested_at"])
    catalog.write_partition("scans", "2021-06-25|KLOT", old)
    catalog.publish()
    with TestClient(create_app(settings_for(tmp_path))) as c:
        item = c.get("/scans", params={"limit": 1}).json()["items"][0]
        assert item["vcp"] is None and item["elevations"] is None and item["ingested_at"] is None
        assert c.get("/sites").json()["items"]


def test_list_etag_and_304(client):
    r = client.get("/scans", params={"site": "KLOT"})
    etag = r.headers["etag"]
    assert r.headers["cache-control"] == "public, max-age=30"
    assert etag.strip('"') == client.get("/health").json()["snapshot"]["version"]
    again = client.get("/scans", params={"site": "KLOT"}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert client.get("/scans", headers={"If-None-Match": '"other"'}).status_code == 200


def test_read_only_methods_head_and_cors(client):
    for method in ("POST", "PUT", "PATCH", "DELETE", "TRACE"):
        for url in ("/scans", "/health", "/does-not-exist", f"/sweeps/{FILE_SWEEP}.png"):
            r = client.request(method, url)
            assert r.status_code == 405, (method, url)
            assert r.headers["allow"] == "GET, HEAD"
    get = client.get(f"/sweeps/{FILE_SWEEP}.png")
    head = client.head(f"/sweeps/{FILE_SWEEP}.png")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(get.content))
    assert client.head("/scans").status_code == 200
    assert client.head("/scans/KLOT-L2-VOL-20300101T000000Z").status_code == 404
    pre = client.options(
        "/scans", headers={"Origin": "https://maps.example.org", "Access-Control-Request-Method": "GET"}
    )
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://maps.example.org"
    denied = client.options(
        "/scans", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in denied.headers
    cors = client.get("/scans", headers={"Origin": "https://maps.example.org"})
    assert cors.headers["access-control-allow-origin"] == "https://maps.example.org"
    assert "etag" in cors.headers["access-control-expose-headers"].lower()
    assert client.options("/scans").status_code == 405  # not a preflight


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {
        "/health",
        "/sites",
        "/scans",
        "/scans/{scan_id}",
        "/sweeps",
        "/products",
        "/echoes",
        "/echoes/scans",
    } <= set(spec["paths"])
    # Read-only: every operation is a GET, except the one POST that computes without writing.
    methods = {path: set(ops) for path, ops in spec["paths"].items()}
    assert methods.pop("/timeseries/extract") == {"post"}
    assert all(ops == {"get"} for ops in methods.values()), methods


@pytest.mark.parametrize(
    "url",
    [
        "/scans?limit=0",
        "/scans?limit=1001",
        "/scans?limit=abc",
        "/scans?level=4",
        "/scans?site=KLOTX",
        "/scans?start=yesterday",
        "/scans?start=2021-06-26T00:00:00Z&end=2021-06-25T00:00:00Z",
        "/scans?start=9999-12-31T23:00:00-05:00",
        "/scans?unknown=1",
        "/sweeps?elevation=nan",
        "/sweeps?elevation=91",
        "/sweeps?format=kml",
        "/echoes?format=xml",
        "/echoes?station=s%20as",
        "/health?x=1",
        "/events?max_events=0",
    ],
)
def test_bad_parameters_are_422_with_a_message(client, url):
    r = client.get(url)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail[0]["msg"]


def test_float32_columns_print_short(client):
    assert json.loads(client.get("/scans?limit=1").text)["items"][0]["elevations"] == [0.5, 0.9, 1.3]


def test_cog_fixture_is_a_real_cog():
    from rasterio.io import MemoryFile

    with MemoryFile(cog_bytes((-90, 40, -86, 43))) as mem, mem.open() as src:
        assert src.crs.to_epsg() == 3857 and src.count == 1 and src.dtypes[0] == "float32"
        assert src.profile["tiled"]


@pytest.mark.parametrize(
    ("url", "model"),
    [
        ("/scans?limit=1000", "ScanPage"),
        ("/sweeps?limit=1000", "SweepPage"),
        ("/echoes?limit=1000", "EchoPage"),
        ("/echoes/scans?limit=1000", "EchoScanPage"),
    ],
)
def test_list_pages_match_their_response_models(client, url, model):
    """List pages are serialised without a validation pass: check every row against the model here."""
    from radar_assets.api import models

    body = client.get(url).json()
    page = getattr(models, model).model_validate(body)
    assert len(page.items) == len(body["items"]) > 0
    # The serialised text is what the model itself would write (times, floats, nulls).
    assert json.loads(page.model_dump_json()) == body
