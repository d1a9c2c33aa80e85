"""Retention of clipped-package versions: old versions' files go, recent ones stay, the API lists neither gone."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from fastapi.testclient import TestClient

from radar_assets.api.app import create_app
from radar_assets.lib.catalog import local_catalog
from radar_assets.lib.packages.build import package_prefix
from radar_assets.lib.packages.publish import PACKAGES_SCHEMA, PACKAGES_TABLE
from radar_assets.lib.partitions import boundary_day
from radar_assets.lib.retention import PACKAGES, expire
from radar_assets_tests.conftest import settings_for

NOW = datetime.now(UTC)


def _publish(catalog, boundary: str, day: str) -> dict:
    prefix = package_prefix(boundary, day) + "v1/"
    files = {"timeseries.csv": b"time,mean\n", "preview.png": b"\x89PNG fake", "datapackage.json": b"{}"}
    for path, data in files.items():
        catalog.store.put_bytes(prefix + path, data)
    row = {
        "boundary": boundary,
        "boundary_name": boundary,
        "day": day,
        "version": "v1",
        "resource_count": 2,
        "total_bytes": sum(map(len, files.values())),
        "prefix": prefix,
        "datapackage_key": prefix + "datapackage.json",
        "datapackage_sha256": hashlib.sha256(b"{}").hexdigest(),
        "resources": [
            {
                "name": p.split(".")[0],
                "path": p,
                "key": prefix + p,
                "format": p.split(".")[1],
                "mediatype": "text/csv",
                "bytes": len(files[p]),
                "sha256": hashlib.sha256(files[p]).hexdigest(),
            }
            for p in ("timeseries.csv", "preview.png")
        ],  # fmt: skip
        "run_id": "r1",
        "published_at": NOW,
        "partition": boundary_day(boundary, day),
    }
    catalog.write_partition(
        PACKAGES_TABLE, row["partition"], pa.Table.from_pylist([row], schema=PACKAGES_SCHEMA)
    )
    return row


def test_old_package_versions_expire_and_recent_ones_stay(tmp_path):
    catalog = local_catalog(tmp_path)
    recent_day = (NOW - timedelta(days=2)).date().isoformat()
    old = _publish(catalog, "cook-il", "2021-06-25")
    recent = _publish(catalog, "cook-il", recent_day)
    catalog.publish()

    report = expire(catalog, PACKAGES, 7, NOW, publish=catalog.publish)
    assert report.rows_expired == 1 and report.files_deleted == 3
    assert not list(catalog.store.list_keys(old["prefix"]))
    assert len(list(catalog.store.list_keys(recent["prefix"]))) == 3
    (history,) = catalog.read_partition("expired_packages", old["partition"]).to_pylist()
    assert history["version"] == "v1" and history["expired_at"] is not None

    with TestClient(create_app(settings_for(tmp_path))) as client:
        days = [p["day"] for p in client.get("/packages").json()["items"]]
        assert days == [recent_day]
        assert client.get("/packages/cook-il/2021-06-25").status_code == 404
        assert client.get("/packages/cook-il/2021-06-25.zip").status_code == 404
        assert client.get(f"/packages/cook-il/{recent_day}").status_code == 200
