"""``/boundaries`` and ``/timeseries`` on the catalog the real pipeline published (KLOT, shipped counties)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from radar_assets.api import create_app
from radar_assets.lib.catalog import local_catalog
from radar_assets.lib.geo.boundaries import registered, shipped_boundaries
from radar_assets.lib.timeseries import transforms as tf
from radar_assets.lib.timeseries.summaries import TIMESERIES_SCHEMA
from radar_assets_tests.conftest import settings_for
from radar_assets_tests.timeseries.conftest import PARTITION

WINDOW = {"start": "2019-06-17T00:00:00Z", "end": "2019-06-18T00:00:00Z"}


@pytest.fixture(scope="module")
def client(pipeline):
    with TestClient(create_app(pipeline["settings"])) as c:
        yield c


def _cook():
    import geopandas as gpd

    frame = gpd.read_file(shipped_boundaries()[0].path)
    return frame[frame["NAME"] == "Cook"].geometry.iloc[0]


def test_boundaries_are_geojson_pages(client):
    first = client.get("/boundaries", params={"limit": 100})
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/geo+json")
    page = first.json()
    assert page["type"] == "FeatureCollection" and len(page["features"]) == 100 and page["next_cursor"]
    rest = client.get("/boundaries", params={"limit": 100, "cursor": page["next_cursor"]}).json()
    ids = [f["id"] for f in page["features"] + rest["features"]]
    assert len(ids) == 179 and ids == sorted(ids) and rest["next_cursor"] is None
    bare = client.get("/boundaries", params={"geometry": "false", "bbox": "-87.75,41.85,-87.7,41.9"}).json()
    assert [f["id"] for f in bare["features"]] == ["IL-17031"] and bare["features"][0]["geometry"] is None
    cook = client.get("/boundaries/IL-17031").json()
    assert cook["type"] == "Feature" and cook["properties"]["name"] == "Cook"
    assert cook["geometry"]["type"] == "Polygon" and cook["bbox"][0] < -87.9
    assert client.get("/boundaries/IL-99999").status_code == 404
    assert client.get("/boundaries", params={"cursor": "bm90LWEtY3Vyc29y"}).status_code == 422
    assert client.get("/boundaries", params={"bbox": "1,2,3"}).status_code == 422
    assert client.get("/boundaries/..%2Fetc").status_code in (404, 422)


def test_timeseries_of_a_boundary_json_and_csv(client, pipeline):
    rows = pipeline["catalog"].read_partition("timeseries", PARTITION).to_pylist()
    cook = [r for r in rows if r["boundary"] == "IL-17031"]
    got = client.get("/timeseries", params={"boundary": "IL-17031", **WINDOW})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["site"] == "KLOT" and body["product"] == "REF"
    assert body["raw"] == [r["mean"] for r in cook] and body["value"] == body["raw"]
    assert body["scan_id"] == [r["scan_id"] for r in cook] and len(body["time"]) == len(cook)
    median = client.get("/timeseries", params={"boundary": "IL-17031", "statistic": "median"}).json()
    assert median["raw"] == [r["p50"] for r in cook]
    csv = client.get("/timeseries", params={"boundary": "IL-17031", "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "time,scan_id,value,raw,count,coverage_fraction"
    assert len(csv.text.splitlines()) == 1 + len(cook)
    uncovered = client.get("/timeseries", params={"boundary": "OK-40109"}).json()  # registered, not covered
    assert uncovered["value"] == []
    assert client.get("/timeseries", params={"boundary": "XX-1"}).status_code == 404
    even = client.get("/timeseries", params={"boundary": "IL-17031", "smoother": "centred", "width": 4})
    assert even.status_code == 422 and "odd width" in even.text
    assert client.get("/timeseries", params={"boundary": "IL-17031", "width": 201}).status_code == 422
    fixed = client.get("/timeseries", params={"boundary": "IL-17031", "transform": "zscore_fixed"})
    assert fixed.status_code == 422 and "reference_start" in fixed.text


@pytest.fixture(scope="module")
def series_client(tmp_path_factory):
    """A catalog with one boundary's long series (values, gaps, a constant stretch) for the transforms."""
    home = tmp_path_factory.mktemp("series")
    catalog = local_catalog(home)
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    values = [
        None if i % 17 == 5 else (7.0 if 60 <= i < 70 else 10 + 8 * math.sin(i / 5) + i / 30)
        for i in range(120)
    ]
    rows = [
        {"boundary": "B-1", "site": "KLOT", "scan_id": f"S{i:03d}", "sweep_id": f"S{i:03d}-REF-00", "product": "REF",
         "level": 2, "time": t0 + timedelta(minutes=5 * i), "units": "dBZ", "elevation": 0.5,
         "count": None if v is None else 10.0, "cells": 0 if v is None else 12, "coverage_fraction": 0.5,
         "mean": v, "min": v, "max": v, "p50": None if v is None else v - 1, "p90": v, "frac_ge_20dbz": 0.0,
         "sweep_fingerprint": "x", "boundary_hash": "y", "partition": "2024-05-01|KLOT"}
        for i, v in enumerate(values)
    ]  # fmt: skip
    catalog.write_partition(
        "timeseries", "2024-05-01|KLOT", pa.Table.from_pylist(rows, schema=TIMESERIES_SCHEMA)
    )
    catalog.publish()
    with TestClient(create_app(settings_for(home))) as c:
        yield c, values, t0


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"transform": "zscore_selected"},
        {"transform": "zscore_selected", "smoother": "trailing", "width": 5},
        {"smoother": "centred", "width": 3},
        {"smoother": "centered", "width": 199},
        {"smoother": "trailing", "width": 1},
        {"statistic": "median", "smoother": "trailing", "width": 200},
        {
            "transform": "zscore_fixed",
            "reference_start": "2024-05-01T05:00:00Z",
            "reference_end": "2024-05-01T05:50:00Z",
        },
    ],
)
def test_api_transforms_agree_with_the_lib(series_client, params):
    client, values, t0 = series_client
    got = client.get("/timeseries", params={"boundary": "B-1", **params})
    assert got.status_code == 200, got.text
    assert "NaN" not in got.text
    raw = values if params.get("statistic") != "median" else [None if v is None else v - 1 for v in values]
    reference = None
    if params.get("transform") == "zscore_fixed":
        reference = raw[60:70]  # 05:00 to 05:50: the constant stretch, so every z-score is missing
    expected = tf.apply(
        raw,
        params.get("transform", "none"),
        reference,
        params.get("smoother", "none"),
        params.get("width", 1),
    )
    assert got.json()["value"] == expected
    if params.get("transform") == "zscore_fixed":
        assert expected == [None] * len(values)


def test_extract_matches_the_asset_for_the_same_polygon(client, pipeline):
    cook = json.loads(__import__("shapely").to_geojson(_cook()))
    feature = {"type": "Feature", "properties": {}, "geometry": cook}
    got = client.post("/timeseries/extract", json={"geometry": feature, "site": "KLOT", **WINDOW})
    assert got.status_code == 200, got.text
    points = got.json()["points"]
    stored = [
        r
        for r in pipeline["catalog"].read_partition("timeseries", PARTITION).to_pylist()
        if r["boundary"] == "IL-17031"
    ]
    assert len(points) == len(stored) >= 1
    for p, r in zip(points, stored, strict=True):
        assert p["count"] == pytest.approx(r["count"], rel=1e-12) and p["cells"] == r["cells"]
        assert p["mean"] == pytest.approx(r["mean"], rel=1e-12)
    point = client.post(
        "/timeseries/extract",
        json={"geometry": {"type": "Point", "coordinates": [-87.8, 41.85]}, "site": "KLOT", **WINDOW},
    )
    assert point.status_code == 200 and point.json()["points"][0]["cells"] <= 1


HOSTILE = {
    "self-intersecting": {"type": "Polygon", "coordinates": [[[-88, 41], [-87, 42], [-87, 41], [-88, 42], [-88, 41]]]},
    "empty": {"type": "Polygon", "coordinates": []},
    "wrong crs": {"type": "Polygon", "coordinates": [[[400000, 4600000], [410000, 4600000], [410000, 4610000], [400000, 4600000]]]},
    "line": {"type": "LineString", "coordinates": [[-88, 41], [-87, 42]]},
    "garbage": {"type": "Polygon", "coordinates": "nope"},
    "open ring": {"type": "Polygon", "coordinates": [[[-88, 41], [-87, 42]]]},
    "empty collection": {"type": "FeatureCollection", "features": []},
    "huge": {"type": "Polygon", "coordinates": [[[-88 + i * 1e-6, 41 + (i % 2) * 1e-3] for i in range(150_001)] + [[-88, 41]]]},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_geometries_are_4xx(client, name):
    got = client.post("/timeseries/extract", json={"geometry": HOSTILE[name], "site": "KLOT", **WINDOW})
    assert 400 <= got.status_code < 500, (name, got.status_code, got.text[:300])
    assert got.json()["detail"]
    if name == "huge":
        assert got.status_code == 413


def test_nan_coordinates_and_cell_limit_and_capacity(client, pipeline):
    text = '{"geometry": {"type": "Polygon", "coordinates": [[[-88, 41], [NaN, 41], [-87, 42], [-88, 41]]]}, "site": "KLOT", "start": "2019-06-17T00:00:00Z", "end": "2019-06-18T00:00:00Z"}'
    got = client.post("/timeseries/extract", content=text, headers={"content-type": "application/json"})
    assert 400 <= got.status_code < 500
    from radar_assets.api.routers import timeseries as route

    world = {
        "type": "Polygon",
        "coordinates": [[[-179, -80], [179, -80], [179, 80], [-179, 80], [-179, -80]]],
    }
    settings = pipeline["settings"]
    limited = settings.model_copy(
        update={
            "api": settings.api.model_copy(update={"extract_max_cells": 1000, "extract_max_concurrent": 1})
        }
    )
    with TestClient(create_app(limited)) as small:
        big = small.post("/timeseries/extract", json={"geometry": world, "site": "KLOT", **WINDOW})
        assert big.status_code == 413 and "more than the limit of 1000" in big.json()["detail"]
        slots = route.extract_slots(small.app, 1)
        assert slots.acquire(blocking=False)  # the only slot
        try:
            busy = small.post("/timeseries/extract", json={"geometry": world, "site": "KLOT", **WINDOW})
            assert busy.status_code == 503 and busy.headers["retry-after"] == str(route.RETRY_AFTER_S)
        finally:
            slots.release()


def test_other_write_methods_stay_405(client):
    assert client.put("/timeseries/extract", json={}).status_code == 405
    assert client.delete("/boundaries/IL-17031").status_code == 405
    assert client.post("/boundaries", json={}).status_code == 405
    assert client.post("/timeseries", json={}).status_code == 405


def test_registry_and_snapshot_agree(pipeline, client):
    assert registered(pipeline["catalog"]).num_rows == len(
        client.get("/boundaries", params={"limit": 1000, "geometry": "false"}).json()["features"]
    )


def _write_constant_series(catalog, t0: datetime, value: float) -> None:
    """Three 5-minute scans of boundary B-1 at KLOT, every statistic ``value``."""
    rows = [
        {"boundary": "B-1", "site": "KLOT", "scan_id": f"S{i}", "sweep_id": f"S{i}-REF-00", "product": "REF",
         "level": 2, "time": t0 + timedelta(minutes=5 * i), "units": "dBZ", "elevation": 0.5, "count": 1.0,
         "cells": 1, "coverage_fraction": 1.0, "mean": value, "min": value, "max": value, "p50": value,
         "p90": value, "frac_ge_20dbz": 0.0, "sweep_fingerprint": "x", "boundary_hash": "y",
         "partition": "2024-05-01|KLOT"}
        for i in range(3)
    ]  # fmt: skip
    catalog.write_partition(
        "timeseries", "2024-05-01|KLOT", pa.Table.from_pylist(rows, schema=TIMESERIES_SCHEMA)
    )


def test_a_new_snapshot_is_never_answered_from_the_series_cache(tmp_path):
    catalog = local_catalog(tmp_path)
    t0 = datetime(2024, 5, 1, tzinfo=UTC)

    def publish(value: float) -> None:
        _write_constant_series(catalog, t0, value)
        catalog.publish()

    publish(1.0)
    with TestClient(create_app(settings_for(tmp_path, snapshot_check_interval=0))) as c:
        assert c.get("/timeseries", params={"boundary": "B-1"}).json()["raw"] == [1.0] * 3
        assert c.get("/timeseries", params={"boundary": "B-1"}).json()["raw"] == [1.0] * 3  # cached
        publish(2.0)
        assert c.get("/timeseries", params={"boundary": "B-1"}).json()["raw"] == [2.0] * 3


def test_a_cached_answer_is_the_same_bytes_as_the_computed_one(series_client):
    client, values, t0 = series_client
    params = {"boundary": "B-1", "transform": "zscore_selected", "smoother": "trailing", "width": 9}
    first = client.get("/timeseries", params=params)  # computed in a worker thread (or cached by now)
    values_cache = client.app.state.timeseries_value_cache
    hits = values_cache.hits
    second = client.get("/timeseries", params=params)  # written from the cache on the event loop
    assert values_cache.hits == hits + 1
    assert second.status_code == first.status_code == 200
    assert second.content == first.content
    assert int(second.headers["content-length"]) == len(second.content)
    assert second.headers["etag"] == first.headers["etag"]
    head = client.head("/timeseries", params=params)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == second.headers["content-length"]
    not_modified = client.get("/timeseries", params=params, headers={"If-None-Match": second.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.content == b""
    # Another width is other values, computed, not the cached ones.
    other = client.get("/timeseries", params={**params, "width": 11}).json()["value"]
    assert other == tf.apply(values, "zscore_selected", None, "trailing", 11) != second.json()["value"]


def test_series_outlive_publications_that_leave_the_timeseries_table_alone(tmp_path):
    catalog = local_catalog(tmp_path)
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    _write_constant_series(catalog, t0, 3.0)
    catalog.publish()
    with TestClient(create_app(settings_for(tmp_path, snapshot_check_interval=0))) as c:
        first = c.get("/timeseries", params={"boundary": "B-1"})
        cache = c.app.state.timeseries_cache
        misses = cache.misses
        catalog.write_partition("unrelated", "p1", pa.table({"x": [1, 2, 3]}))
        catalog.publish()
        again = c.get("/timeseries", params={"boundary": "B-1"})
        assert again.headers["etag"] != first.headers["etag"]  # a new snapshot ...
        assert again.content == first.content
        assert cache.misses == misses  # ... whose series were not read again
