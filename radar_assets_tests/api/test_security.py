"""Hostile input: path traversal and SQL injection in every parameter, a hostile catalog row, and writes
through the API's own DuckDB connection."""

from __future__ import annotations

import asyncio
import hashlib
import json
from urllib.parse import quote

import duckdb
import pytest
from fastapi.testclient import TestClient

from radar_assets.api import create_app
from radar_assets.lib.catalog import local_catalog
from radar_assets_tests.api.catalog_data import (
    FILE_SWEEP,
    SCANS_SCHEMA,
    SWEEPS_SCHEMA,
    scan_rows,
    sweep_rows,
    table,
)
from radar_assets_tests.conftest import settings_for

TRAVERSALS = [
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "....//....//etc/passwd",
    "/etc/passwd",
    "..\\..\\..\\windows\\win.ini",
    "KLOT-L2-VOL-20210625T000000Z-REF-00/../../../../etc/passwd",
    "KLOT-L2-VOL-20210625T000000Z-REF-00\x00.png",
    "file:///etc/passwd",
]
INJECTIONS = [
    "' OR '1'='1",
    "KLOT' OR 1=1 --",
    "1; DROP TABLE scans; --",
    "x'); COPY scans TO '/tmp/pwned.csv'; --",
    '" UNION SELECT * FROM duckdb_settings() --',
    "1 OR 1=1",
    "$(id)",
    "KLOT\x00",
    "KLOT-L2-VOL-20210625T000000Z' OR 'a'='a",
    "0x7FFFFFFF" * 50,
]
LEAKS = ("root:", "/bin/", "[fonts]", "Traceback", "duckdb", "Binder Error", "Catalog Error", "Parser Error")


def _app_paths(client) -> dict[str, list[dict]]:
    return {
        p: ops["get"].get("parameters", [])
        for p, ops in client.get("/openapi.json").json()["paths"].items()
        if "get" in ops  # the compute-only POST /timeseries/extract has its own hostile-body tests
    }


def _valid_path_values() -> dict[str, str]:
    return {
        "scan_id": "KLOT-L2-VOL-20210625T000000Z",
        "sweep_id": FILE_SWEEP,
        "site": "KLOT",
        "boundary_id": "IL-17031",
        "moment": "REF",
        "boundary": "IL-17031",
        "day": "2021-06-25",
        "resource_name": "preview",
        "z": "6",
        "x": "16",
        "y": "23",
    }


def _assert_clean(response, catalog_root, payload: str) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    text = response.text
    for leak in LEAKS:
        assert leak not in text, (leak, text[:300])
    assert str(catalog_root) not in text
    if len(payload) > 6:  # nothing the client sent is echoed back
        assert payload not in text


@pytest.mark.parametrize("payload", INJECTIONS + TRAVERSALS)
def test_every_parameter_rejects_hostile_values(client, catalog_root, payload):
    checked = 0
    for path, params in _app_paths(client).items():
        if path == "/events":
            params = [p for p in params if p["name"] != "max_events"] + [
                {"name": "max_events", "in": "query"}
            ]
        for param in params:
            values = _valid_path_values()
            query = {"max_events": "1"} if path == "/events" and param["name"] != "max_events" else {}
            if param["in"] == "path":
                values[param["name"]] = quote(payload, safe="")
            else:
                query[param["name"]] = payload
            url = path.format(**values)
            r = client.get(url, params=query)
            _assert_clean(r, catalog_root, payload)
            checked += 1
    assert checked > 40


async def _raw_asgi_get(app, raw_path: bytes, query: bytes = b"") -> tuple[int, bytes]:
    """Send a request exactly as given (no client-side URL normalisation) straight to the ASGI app."""
    path = raw_path.decode("latin-1")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": raw_path,
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    messages = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        messages.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, body


@pytest.mark.parametrize(
    "raw",
    [
        b"/sweeps/../../../../etc/passwd.png",
        b"/sweeps/..%2f..%2f..%2fetc%2fpasswd.png",
        b"/sweeps/%2e%2e/%2e%2e/etc/passwd.json",
        b"/sweeps/KLOT-L2-VOL-20210625T000000Z-REF-00\x00.png",
        b"/sweeps/KLOT-L2-VOL-20210625T000000Z-REF-00%00.tif",
        b"/tiles/../../../etc/passwd/1/1/1.png",
        b"/tiles/KLOT-L2-VOL-20210625T000000Z-REF-00/6/..%2f..%2f/1.png",
        b"/scans/%2fetc%2fpasswd",
        b"//etc/passwd",
        b"/sweeps/C:\\Windows\\win.ini.png",
    ],
)
def test_raw_traversal_paths(app, catalog_root, raw):
    status, body = asyncio.run(_raw_asgi_get(app, raw))
    assert 400 <= status < 500, (status, body[:200])
    text = body.decode("utf-8", "replace")
    for leak in LEAKS:
        assert leak not in text
    assert str(catalog_root) not in text


def test_hostile_catalog_keys_cannot_escape_the_store(tmp_path):
    """Even a catalog row naming ../../etc/passwd is answered with a 404, not the file."""
    catalog = local_catalog(tmp_path)
    scans = scan_rows(1)
    catalog.write_partition("scans", "p", table(scans, SCANS_SCHEMA))
    sweeps = sweep_rows(scans)[:2]
    sweeps[0].update(
        png_key="../../../../../../etc/passwd", json_key="/etc/passwd", cog_key="a/../../../etc/passwd"
    )
    sweeps[1].update(png_key="sweeps/x\x00.png", json_key="", cog_key="..")
    catalog.write_partition("sweeps", "p", table(sweeps, SWEEPS_SCHEMA))
    catalog.publish()
    with TestClient(create_app(settings_for(tmp_path))) as c:
        for sweep in sweeps:
            for suffix in (".png", ".json", ".tif"):
                r = c.get(f"/sweeps/{sweep['sweep_id']}{suffix}")
                assert r.status_code == 404, (suffix, r.text)
                assert "root:" not in r.text and "passwd" not in r.text
            r = c.get(f"/tiles/{sweep['sweep_id']}/0/0/0.png")
            assert r.status_code == 404 and "passwd" not in r.text


WRITES = [
    "CREATE TABLE pwned (i INTEGER)",
    "INSERT INTO scans (scan_id) VALUES ('x')",
    "UPDATE scans SET site = 'XXXX'",
    "DELETE FROM scans",
    "DROP TABLE scans",
    "ALTER TABLE scans ADD COLUMN pwned INTEGER",
    "CREATE VIEW v AS SELECT 1",
    "COPY scans TO '{tmp}/out.csv'",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "SELECT * FROM read_csv('/etc/passwd')",
    "INSTALL httpfs",
    "SET enable_external_access = true",
    "LOAD httpfs",
    "CREATE SCHEMA pwned",
    "DETACH snapshot",
]


@pytest.mark.parametrize("statement", WRITES)
def test_writes_through_the_api_connection_fail(app, client, catalog_root, tmp_path, statement):
    snapshot = catalog_root / "catalog" / "catalog.duckdb"
    before = hashlib.sha256(snapshot.read_bytes()).hexdigest()
    counts = client.get("/health").json()["snapshot"]["row_counts"]
    with app.state.snapshots.session() as session:
        with pytest.raises(duckdb.Error):
            session.cursor.execute(statement.format(tmp=tmp_path))
        # The same cursor still reads afterwards.
        assert session.cursor.execute("SELECT count(*) FROM scans").fetchone()[0] == counts["scans"]
    assert not list(tmp_path.iterdir())
    assert hashlib.sha256(snapshot.read_bytes()).hexdigest() == before
    assert client.get("/health").json()["snapshot"]["row_counts"] == counts


def test_error_bodies_are_json_and_short(client):
    r = client.get("/scans", params={"site": "x" * 10_000})
    assert r.status_code == 422 and len(r.content) < 2000
    assert json.loads(r.text)["detail"][0]["loc"] == ["query", "site"]


def test_odd_catalog_values_never_break_a_response(tmp_path):
    """NaN, infinities, unparsable corners, far-future and missing times in catalog rows: 200s, with nulls."""
    catalog = local_catalog(tmp_path)
    scans = scan_rows(2)
    sweeps = sweep_rows(scans)[:4]
    scans[0]["elevations"] = [float("nan"), float("inf"), 0.5]
    scans[1]["ingested_at"] = None
    scans[2]["volume_start"] = None  # cannot be paged by time: left out of lists
    catalog.write_partition("scans", "p", table(scans, SCANS_SCHEMA))
    sweeps[0].update(corners="not json", west=float("nan"), vmin=float("inf"), elevation=float("nan"))
    sweeps[1].update(corners="[[NaN, 1], [2, 3], [4, 5]]")
    sweeps[2].update(corners='{"a": 1}', sweep_time=None)
    sweeps[3].update(corners="[[1, 2]]", units=None, moment="REF")
    catalog.write_partition("sweeps", "p", table(sweeps, SWEEPS_SCHEMA))
    catalog.publish()
    with TestClient(create_app(settings_for(tmp_path))) as c:
        items = c.get("/scans").json()["items"]
        assert len(items) == len(scans) - 1
        first = next(i for i in items if i["scan_id"] == scans[0]["scan_id"])
        assert first["elevations"] == [None, None, 0.5]
        assert c.get(f"/scans/{scans[1]['scan_id']}").json()["ingested_at"] is None
        assert c.get(f"/scans/{scans[2]['scan_id']}").status_code == 404  # no volume start: not served
        listed = {s["sweep_id"]: s for s in c.get("/sweeps").json()["items"]}
        odd = listed[sweeps[0]["sweep_id"]]
        assert (
            odd["corners"] is None
            and odd["bounds"] is None
            and odd["vmin"] is None
            and odd["elevation"] is None
        )
        assert listed[sweeps[1]["sweep_id"]]["corners"] is None
        fc = c.get("/sweeps", params={"format": "geojson"}).json()
        geometries = {f["id"]: f["geometry"] for f in fc["features"]}
        assert geometries[sweeps[0]["sweep_id"]] is None  # neither corners nor bounds
        assert geometries[sweeps[1]["sweep_id"]]["type"] == "Polygon"  # falls back to the bounds
        for sweep in sweeps:
            assert c.get(f"/sweeps/{sweep['sweep_id']}").status_code == 200
        assert c.get("/sites").status_code == 200 and c.get("/health").status_code == 200
