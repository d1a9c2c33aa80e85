"""The API features the map viewer relies on: offline docs, CORS, legends, table-coloured tiles with empty
tiles outside coverage, the latest sweeps per site (split cuts resolved), change-only events listing new
sweeps, and station locations on echo rows."""

from __future__ import annotations

import io
import json
import re
import threading
import time

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from radar_assets.api import create_app
from radar_assets.api.static import VENDOR, vendor_installed
from radar_assets.lib.catalog import local_catalog
from radar_assets.lib.feed.stations import STATIONS
from radar_assets.lib.render.colors import REFLECTIVITY, table_for
from radar_assets.lib.sweeps import SWEEPS_SCHEMA
from radar_assets_tests.api.catalog_data import (
    FILE_SWEEP,
    KLOT_LAT,
    KLOT_LON,
    lonlat_to_tile,
    scan_rows,
    sweep_rows,
    table,
)
from radar_assets_tests.api.conftest import serve
from radar_assets_tests.api.test_live import read_events
from radar_assets_tests.conftest import settings_for

needs_npm = pytest.mark.skipif(
    not all(vendor_installed(n) for n in VENDOR),
    reason="npm packages not installed (make install runs npm ci)",
)


def _css(rgb) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb[:3])


def _rgba(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGBA"))


@needs_npm
@pytest.mark.parametrize(
    ("page", "script"),
    [("/docs", "/vendor/swagger-ui/swagger-ui-bundle.js"), ("/redoc", "/vendor/redoc/redoc.standalone.js")],
)
def test_docs_pages_load_their_assets_from_this_server(client, page, script):
    html = client.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
    assert script in urls
    assert all(u.startswith("/") for u in urls), urls  # no CDN, no Google Fonts
    assert "validatorUrl" not in html.text or '"validatorUrl": null' in html.text
    for url in urls:
        r = client.get(url)
        assert r.status_code == 200 and len(r.content) > 500, url
    assert "/docs" not in client.get("/openapi.json").json()["paths"]


def test_viewer_page_and_vendor_folders_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # Only the listed distribution folders are exposed, not node_modules or package.json.
    assert client.get("/viewer/../package.json").status_code == 404
    assert client.get("/vendor/maplibre-gl/../package.json").status_code == 404
    assert client.get("/vendor/lodash/index.js").status_code == 404


def test_cors_is_off_by_default(tmp_path, catalog_root):
    with TestClient(create_app(settings_for(catalog_root))) as c:
        pre = c.options(
            "/scans", headers={"Origin": "https://maps.example.org", "Access-Control-Request-Method": "GET"}
        )
        assert pre.status_code == 405 and "access-control-allow-origin" not in pre.headers
        assert (
            "access-control-allow-origin"
            not in c.get("/scans", headers={"Origin": "https://x.example"}).headers
        )


def test_cors_preflight_answered_and_writes_still_refused(client):
    headers = {"Origin": "https://maps.example.org", "Access-Control-Request-Method": "GET"}
    pre = client.options("/sweeps/latest", headers=headers)
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://maps.example.org"
    assert "GET" in pre.headers["access-control-allow-methods"]
    r = client.delete("/sweeps/latest", headers={"Origin": "https://maps.example.org"})
    assert r.status_code == 405


@pytest.mark.parametrize("moment", ["REF", "VEL", "HCA", "ZDR", "ref"])
def test_legend_json_matches_the_rendering_table(client, moment):
    r = client.get(f"/legend/{moment}")
    assert r.status_code == 200
    body = r.json()
    t = table_for(moment)
    values = [a[0] for a in t.anchors]
    assert [s["value"] for s in body["stops"]] == values
    colours = t.rgba(np.array(values))
    assert [s["color"] for s in body["stops"]] == [_css(c) for c in colours]
    assert body["units"] == {"REF": "dBZ", "VEL": "m/s", "HCA": "class", "ZDR": "dB"}[moment.upper()]
    assert body["units"] in body["text"] or body["kind"] == "categorical"
    assert body["moment"] == moment.upper() and r.headers["etag"]


def test_legend_png_is_the_colour_bar(client):
    r = client.get("/legend/REF", params={"format": "png", "width": 320, "height": 10})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = _rgba(r.content)
    assert img.shape == (10, 320, 4)
    stops = client.get("/legend/REF").json()["stops"]
    # Left end is the first stop's colour, right end the last's; the bar walks through every stop.
    assert _css(img[0, 0]) == stops[0]["color"]
    assert _css(img[0, -1]) == stops[-1]["color"]
    seen = {_css(p) for p in img[0]}
    assert {s["color"] for s in stops} <= seen
    assert client.get("/legend/NOPE").status_code == 404
    assert client.get("/legend/REF", params={"format": "gif"}).status_code == 422


def test_tiles_default_to_the_moment_colour_table(client):
    z = 6
    x, y = lonlat_to_tile(KLOT_LON, KLOT_LAT, z)
    img = _rgba(client.get(f"/tiles/{FILE_SWEEP}/{z}/{x}/{y}.png").content)
    painted = img[img[..., 3] > 0]
    assert len(painted) > 1000
    allowed = {tuple(c) for c in REFLECTIVITY.rgba(np.array([a[0] for a in REFLECTIVITY.anchors]))}
    used = {tuple(p) for p in painted}
    assert used <= allowed, used - allowed  # every pixel is one of the NWS steps, alpha included
    assert len(used) >= 8
    # An explicit colormap still stretches over vmin..vmax (colours outside the table).
    viridis = _rgba(
        client.get(f"/tiles/{FILE_SWEEP}/{z}/{x}/{y}.png", params={"colormap": "viridis"}).content
    )
    assert {tuple(p) for p in viridis[viridis[..., 3] > 0]} - allowed
    assert client.get("/openapi.json").json()["paths"]["/tiles/{sweep_id}/{z}/{x}/{y}.png"]


@pytest.mark.parametrize("tilesize", [256, 512])
def test_tile_outside_coverage_is_empty_and_transparent(client, tilesize):
    x, y = lonlat_to_tile(10.0, 50.0, 6)  # Europe: far from KLOT
    r = client.get(f"/tiles/{FILE_SWEEP}/6/{x}/{y}.png", params={"tilesize": tilesize})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.headers["etag"]
    img = _rgba(r.content)
    assert img.shape == (tilesize, tilesize, 4) and not img[..., 3].any()


def _split_cut_catalog(root):
    """KLOT volumes whose 0.5 degree tilt is scanned twice (surveillance cut with REF only, Doppler cut with
    REF and VEL), as VCP 212 does."""
    catalog = local_catalog(root)
    scans = [s for s in scan_rows(6) if s["site"] == "KLOT" and s["level"] == 2]
    rows = []
    for base in sweep_rows(scans, per_scan=1):
        if base["site"] != "KLOT":
            continue
        for index, elevation, moments in ((0, 0.48, "REF"), (1, 0.53, "REF VEL"), (2, 0.88, "REF VEL")):
            if base["moment"] not in moments.split():
                continue
            row = dict(base)
            row.update(
                sweep_id=f"{base['scan_id']}-{base['moment']}-{index:02d}",
                sweep_index=index,
                elevation=elevation,
                sweep_time=base["sweep_time"] + (index * 20) * (base["sweep_time"] - base["sweep_time"]),
            )
            rows.append(row)
    parts: dict[str, list] = {}
    for r in rows:
        parts.setdefault(r["partition"], []).append(r)
    for p, part in parts.items():
        catalog.write_partition("sweeps", p, table(part, SWEEPS_SCHEMA))
    catalog.publish()
    return catalog, scans, rows


def test_latest_sweeps_resolve_split_cuts(tmp_path):
    _catalog, scans, rows = _split_cut_catalog(tmp_path)
    newest = max(scans, key=lambda s: s["volume_start"])
    with TestClient(create_app(settings_for(tmp_path))) as c:
        r = c.get("/sweeps/latest", params={"site": "klot", "moment": "REF"})
        assert r.status_code == 200
        body = r.json()
        items = body["items"]
        assert body["site"] == "KLOT" and body["moment"] == "REF"
        # One scan, two elevations (0.5 from the surveillance cut, index 0), lowest tilt first.
        assert {i["scan_id"] for i in items} == {newest["scan_id"]}
        assert [(i["sweep_index"], i["elevation"]) for i in items] == [(0, 0.48), (2, 0.88)]
        assert all(i["png_url"] and i["corners"] for i in items)
        vel = c.get("/sweeps/latest", params={"site": "KLOT", "moment": "VEL", "elevation": 0.5}).json()[
            "items"
        ]
        assert [(i["sweep_index"], i["moment"]) for i in vel] == [(1, "VEL")]
        frames = c.get(
            "/sweeps/latest", params={"site": "KLOT", "moment": "REF", "elevation": 0.5, "scans": 10}
        ).json()["items"]
        times = [i["sweep_time"] for i in frames]
        assert len(frames) == len({s["scan_id"] for s in scans}) and times == sorted(times, reverse=True)
        assert all(i["sweep_index"] == 0 for i in frames)
        assert c.get("/sweeps/latest", params={"site": "KTLX"}).json()["items"] == []
        assert c.get("/sweeps/latest").status_code == 422
        assert c.get("/sweeps/latest", params={"site": "KLOT", "scans": 0}).status_code == 422


def test_events_only_on_change_and_list_new_sweeps(tmp_path):
    catalog, scans, rows = _split_cut_catalog(tmp_path)
    settings = settings_for(tmp_path, snapshot_check_interval=0.0, events_poll_interval=0.05)
    with serve(create_app(settings)) as base:
        with httpx.Client(base_url=base, timeout=httpx.Timeout(10, read=15)) as c:
            with c.stream("GET", "/events") as stream:
                lines = stream.iter_lines()
                [(_, first)] = read_events(lines, 1)
                assert first["new_sweeps"] is None  # the state on connect, not news
                catalog.publish()  # same files again: a new snapshot file, nothing new in it
                time.sleep(0.5)
                later = dict(
                    rows[-1], sweep_id=rows[-1]["sweep_id"][:-2] + "07", sweep_index=7, elevation=1.3
                )
                part = [r for r in rows if r["partition"] == later["partition"]] + [later]
                catalog.write_partition("sweeps", later["partition"], table(part, SWEEPS_SCHEMA))
                catalog.publish()
                [(name, second)] = read_events(lines, 1)
                assert name == "catalog"
                assert second["new_sweeps"] == [later["sweep_id"]] and second["new_rows"]["sweeps"] == 1
                # Relative to what the client saw: the silent re-publish is skipped over.
                assert second["previous_version"] == first["version"]
            # Resuming from the first version lists what was added since.
            box: dict = {}

            def listen():
                with c.stream(
                    "GET", "/events", params={"max_events": 1}, headers={"Last-Event-ID": first["version"]}
                ) as s:
                    box["events"] = read_events(s.iter_lines(), 1)

            t = threading.Thread(target=listen)
            t.start()
            t.join(15)
            assert box["events"][0][1]["new_sweeps"] == [later["sweep_id"]]


def test_echo_rows_carry_station_locations(client):
    for url in ("/echoes", "/echoes/scans"):
        items = client.get(url, params={"limit": 50}).json()["items"]
        assert items
        for row in items:
            st = STATIONS[row["station"]]
            assert (row["station_lat"], row["station_lon"]) == (st.lat, st.lon)
        csv = client.get(url, params={"limit": 5, "format": "csv"}).text.splitlines()
        assert csv[0].endswith("station_lat,station_lon")
        assert csv[1].endswith(f"{STATIONS[items[0]['station']].lat},{STATIONS[items[0]['station']].lon}")


def test_station_table_is_plausible():
    assert STATIONS["sas"].lat == pytest.approx(52.16) and STATIONS["sas"].lon == pytest.approx(-106.53)
    for st in STATIONS.values():
        assert -90 <= st.lat <= 90 and -180 <= st.lon <= 180
    assert json.dumps(STATIONS)  # plain values
