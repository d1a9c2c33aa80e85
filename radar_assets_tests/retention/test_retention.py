"""Retention on a real catalog, store and API: expired files are gone, and no API response points at them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from radar_assets.api.app import create_app
from radar_assets.lib.catalog import local_catalog
from radar_assets.lib.retention import SWEEPS, cutoff_day, expire
from radar_assets.lib.sweeps import SWEEPS_SCHEMA
from radar_assets_tests.api.catalog_data import (
    cog_bytes,
    png_bytes,
    scan_rows,
    sweep_rows,
    write_by_partition,
)
from radar_assets_tests.conftest import settings_for

NOW = datetime.now(UTC)
DAYS = 30


@pytest.fixture
def published(tmp_path):
    """Sweeps of 2021 (KLOT, KDMX) and of yesterday (KTLX), every file in the store, published."""
    catalog = local_catalog(tmp_path)
    rows = sweep_rows(scan_rows(6))
    recent_day = (NOW - timedelta(days=1)).date()
    for row in rows:
        if row["site"] == "KTLX":
            t = row["sweep_time"]
            row["sweep_time"] = datetime.combine(recent_day, t.timetz())
            row["partition"] = f"{recent_day.isoformat()}|KTLX"
    write_by_partition(catalog, "sweeps", rows, SWEEPS_SCHEMA)
    png = png_bytes()
    for row in rows:
        bounds = (row["west"], row["south"], row["east"], row["north"])
        catalog.store.put_bytes(row["png_key"], png)
        catalog.store.put_bytes(row["json_key"], json.dumps({"bounds": bounds}).encode())
        if row["cog_key"]:
            catalog.store.put_bytes(row["cog_key"], cog_bytes(bounds, size=64))
    catalog.publish()
    return tmp_path, catalog, rows


def _all_sweeps(client: TestClient) -> list[dict]:
    items, cursor = [], None
    while True:
        page = client.get("/sweeps", params={"limit": 20, **({"cursor": cursor} if cursor else {})}).json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def test_expired_files_are_deleted_and_no_response_points_at_them(published):
    root, catalog, rows = published
    old = [r for r in rows if r["site"] != "KTLX"]
    recent = [r for r in rows if r["site"] == "KTLX"]
    assert old and recent

    report = expire(catalog, SWEEPS, DAYS, NOW, publish=catalog.publish)
    assert report.rows_expired == len(old) and report.published
    assert report.files_deleted == sum(len(SWEEPS.keys_of(r)) for r in old)

    store = catalog.store
    assert not any(store.exists(k) for r in old for k in SWEEPS.keys_of(r))
    assert all(store.exists(k) for r in recent for k in SWEEPS.keys_of(r)), "nothing younger than N days"
    # History is kept, marked expired.
    expired = [
        r
        for p in {r["partition"] for r in old}
        for r in catalog.read_partition("expired_sweeps", p).to_pylist()
    ]
    assert sorted(r["sweep_id"] for r in expired) == sorted(r["sweep_id"] for r in old)
    assert all(r["expired_at"] is not None for r in expired)

    with TestClient(create_app(settings_for(root))) as client:
        listed = _all_sweeps(client)
        assert sorted(s["sweep_id"] for s in listed) == sorted(r["sweep_id"] for r in recent)
        urls = [s[f] for s in listed for f in ("png_url", "json_url", "tif_url") if s.get(f)]
        assert urls
        for url in urls:
            assert client.get(url).status_code == 200, url
        for row in old[:4]:
            assert client.get(f"/sweeps/{row['sweep_id']}").status_code == 404
            assert client.get(f"/sweeps/{row['sweep_id']}.png").status_code == 404
        latest = client.get("/sweeps/latest").json()
        assert "KLOT" not in json.dumps(latest) and "KDMX" not in json.dumps(latest)

    # A second pass changes nothing.
    again = expire(catalog, SWEEPS, DAYS, NOW, publish=catalog.publish)
    assert (again.rows_expired, again.files_deleted, again.published) == (0, 0, False)


def test_cutoff_keeps_whole_days():
    now = datetime(2024, 5, 31, 12, tzinfo=UTC)
    assert cutoff_day(1, now).isoformat() == "2024-05-31"  # one day kept: today
    assert cutoff_day(30, now).isoformat() == "2024-05-02"
    with pytest.raises(ValueError):
        cutoff_day(0, now)


def test_retention_job_and_compaction_run_through_dagster(published):
    from radar_assets.definitions import build_definitions
    from radar_assets.settings import Settings

    root, catalog, rows = published
    settings = Settings(home=root, retention={"sweeps_days": DAYS})
    defs = build_definitions(settings)
    assert defs.resolve_job_def("retention_job").execute_in_process().success
    old = [r for r in rows if r["site"] != "KTLX"]
    assert not any(catalog.store.exists(k) for r in old for k in SWEEPS.keys_of(r))
    assert defs.resolve_job_def("catalog_compaction_job").execute_in_process().success
    from radar_assets.lib.catalog import query_readonly

    _, [(n,)] = query_readonly(catalog.snapshot_path, "select count(*) from sweeps")
    assert n == len(rows) - len(old)


def test_a_pass_that_fails_to_publish_deletes_nothing_and_the_next_pass_cleans_up(published):
    root, catalog, rows = published
    old = [r for r in rows if r["site"] != "KTLX"]

    def broken_publish():
        raise OSError("disk full")

    with pytest.raises(OSError):
        expire(catalog, SWEEPS, DAYS, NOW, publish=broken_publish)
    # Rows moved, but the published snapshot still lists them: their files must still be there.
    assert all(catalog.store.exists(k) for r in old for k in SWEEPS.keys_of(r))

    # Old partitions are RECOVERY_DAYS-old only relative to a cutoff near them: use a "now" just after them.
    later = datetime(2021, 6, 25, tzinfo=UTC) + timedelta(days=DAYS + 1)
    report = expire(catalog, SWEEPS, DAYS, later, publish=catalog.publish)
    assert report.rows_expired == 0 and report.published, "published before deleting the leftovers"
    assert not any(catalog.store.exists(k) for r in old for k in SWEEPS.keys_of(r))
    from radar_assets.lib.catalog import query_readonly

    _, listed = query_readonly(catalog.snapshot_path, "select sweep_id from sweeps")
    assert not {r["sweep_id"] for r in old} & {sid for (sid,) in listed}
