"""Keyset pagination: walking ``next_cursor`` returns every row exactly once, in order, under any filter;
forged or foreign cursors are a 422."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from radar_assets.api.models import encode_cursor
from radar_assets_tests.api.catalog_data import echo_rows, scan_rows, sweep_rows

SCANS = scan_rows()
SWEEPS = sweep_rows(SCANS)
ECHOES, ECHO_SCANS = echo_rows()


def walk(client, url: str, params: dict, key: str) -> list:
    out, cursor, pages = [], None, 0
    while True:
        r = client.get(url, params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= params["limit"]
        out.extend(tuple(i[k] for k in key.split(",")) for i in body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return out
        assert len(body["items"]) == params["limit"]  # only full pages have a next page
        assert pages < 500


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"site": "KLOT"},
        {"level": 3},
        {"product": "N0U"},
        {"site": "KTLX", "start": "2021-06-25T01:00:00Z", "end": "2021-06-25T03:30:00Z"},
        {"start": "2021-06-25T04:00:00Z"},
        {"end": "2021-06-25T00:30:00Z"},
        {"site": "KDMX", "level": 3},
    ],
)
@pytest.mark.parametrize("limit", [1, 7, 1000])
def test_scans_walk_returns_every_row_once(client, params, limit):
    got = walk(client, "/scans", {**params, "limit": limit}, "scan_id")
    start = datetime.fromisoformat(params["start"]) if "start" in params else None
    end = datetime.fromisoformat(params["end"]) if "end" in params else None
    want = sorted(
        (
            s
            for s in SCANS
            if params.get("site", s["site"]) == s["site"]
            and params.get("level", s["level"]) == s["level"]
            and params.get("product", s["product"]) == s["product"]
            and (start is None or s["volume_start"] >= start)
            and (end is None or s["volume_start"] < end)
        ),
        key=lambda s: (s["volume_start"], s["scan_id"]),
    )
    assert [g[0] for g in got] == [s["scan_id"] for s in want]
    assert len(set(got)) == len(got)


def test_scans_walk_with_ties_on_time(client):
    # Every site scans at the same times: ties on volume_start are broken by scan_id.
    got = [g[0] for g in walk(client, "/scans", {"level": 2, "limit": 2}, "scan_id")]
    first = min(s["volume_start"] for s in SCANS)
    assert got[:3] == sorted(s["scan_id"] for s in SCANS if s["level"] == 2 and s["volume_start"] == first)
    assert len(got) == len(set(got)) == sum(s["level"] == 2 for s in SCANS)


@pytest.mark.parametrize("params", [{}, {"site": "KLOT"}, {"moment": "VEL"}, {"elevation": 0.5}])
def test_sweeps_walk_returns_every_row_once(client, params):
    got = [g[0] for g in walk(client, "/sweeps", {**params, "limit": 5}, "sweep_id")]
    want = sorted(
        s["sweep_id"]
        for s in SWEEPS
        if params.get("site", s["site"]) == s["site"]
        and params.get("moment", s["moment"]) == s["moment"]
        and abs(params.get("elevation", s["elevation"]) - s["elevation"]) <= 0.1
    )
    assert got == want


def test_sweeps_geojson_pages(client):
    ids, cursor = [], None
    while True:
        fc = client.get(
            "/sweeps", params={"format": "geojson", "limit": 9, **({"cursor": cursor} if cursor else {})}
        )
        ids += [f["id"] for f in fc.json()["features"]]
        cursor = fc.json()["next_cursor"]
        if not cursor:
            break
    assert ids == sorted(s["sweep_id"] for s in SWEEPS)


@pytest.mark.parametrize("params", [{}, {"station": "sas"}, {"start": "2021-06-25T00:00:30Z"}])
def test_echoes_walk_returns_every_row_once(client, params):
    got = walk(client, "/echoes", {**params, "limit": 11}, "record_time,record_id,range_gate")
    start = datetime.fromisoformat(params["start"]) if "start" in params else None
    want = sorted(
        (iso(e["record_time"]), e["record_id"], e["range_gate"])
        for e in ECHOES
        if params.get("station", e["station"]) == e["station"]
        and (start is None or e["record_time"] >= start)
    )
    assert got == want


def test_echo_scans_walk(client):
    got = walk(client, "/echoes/scans", {"limit": 2}, "scan_start,station")
    assert got == sorted((iso(s["scan_start"]), s["station"]) for s in ECHO_SCANS)


def test_csv_pages_follow_the_header_cursor(client):
    lines, cursor = [], None
    while True:
        r = client.get(
            "/echoes/scans", params={"format": "csv", "limit": 4, **({"cursor": cursor} if cursor else {})}
        )
        lines += r.text.splitlines()[1:]
        cursor = r.headers.get("x-next-cursor")
        if not cursor:
            break
    assert len(lines) == len(set(lines)) == len(ECHO_SCANS)


def _b64(obj) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("url", "cursor"),
    [
        ("/scans", "not-a-cursor"),
        ("/scans", "!!!!"),
        ("/scans", "a" * 2000),
        ("/scans", _b64(b"\xff\xfe\x00")),
        ("/scans", _b64({"k": "scans"})),
        ("/scans", _b64(["scans", "2021-06-25T00:00:00+00:00"])),
        ("/scans", _b64(["scans", "yesterday", "KLOT-L2-VOL-20210625T000000Z"])),
        ("/scans", _b64(["scans", "2021-06-25T00:00:00", "KLOT-L2-VOL-20210625T000000Z"])),  # naive
        ("/scans", _b64(["scans", "2021-06-25T00:00:00+00:00", "KLOT' OR '1'='1"])),
        ("/scans", _b64(["scans", 12, "KLOT-L2-VOL-20210625T000000Z"])),
        ("/scans", encode_cursor("sweeps", ("KLOT-L2-VOL-20210625T000000Z-REF-00",))),  # another list's
        (
            "/sweeps",
            encode_cursor("scans", (datetime(2021, 6, 25, tzinfo=UTC), "KLOT-L2-VOL-20210625T000000Z")),
        ),
        ("/echoes", _b64(["echoes", "2021-06-25T00:00:00+00:00", "x", True])),
        ("/echoes", _b64(["echoes", "2021-06-25T00:00:00+00:00", "x", 2**40])),
        ("/echoes", _b64(["echoes", "2021-06-25T00:00:00+00:00", "bad\x00id", 1])),
        ("/echoes/scans", _b64(["echo_scans", "2021-06-25T00:00:00+00:00", "sas; DROP TABLE echoes"])),
    ],
)
def test_bad_cursor_is_422(client, url, cursor):
    r = client.get(url, params={"cursor": cursor})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] == "query"
    assert "cursor" in r.text


def test_cursor_values_are_bound_not_formatted(client):
    """An echoes cursor carries a free-text record id: quotes in it are data, not SQL."""
    cursor = encode_cursor("echoes", (datetime(2021, 6, 25, 0, 1, 0, tzinfo=UTC), "x' OR 1=1 --", 0))
    r = client.get("/echoes", params={"cursor": cursor, "limit": 1000})
    assert r.status_code == 200
    after = datetime(2021, 6, 25, 0, 1, 0, tzinfo=UTC)
    want = sorted(
        (iso(e["record_time"]), e["record_id"], e["range_gate"])
        for e in ECHOES
        if e["record_time"] > after or (e["record_time"] == after and e["record_id"] > "x' OR 1=1 --")
    )
    got = [(i["record_time"], i["record_id"], i["range_gate"]) for i in r.json()["items"]]
    assert got == want and 0 < len(got) < len(ECHOES)
