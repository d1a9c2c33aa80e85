"""The API reading sweep files and COG tiles from a real S3 store (SeaweedFS)."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from radar_assets.api import create_app
from radar_assets.lib.store import S3Store
from radar_assets.settings import Settings
from radar_assets_tests.api.catalog_data import FILE_SWEEP, KLOT_LAT, KLOT_LON, build_catalog, lonlat_to_tile
from radar_assets_tests.seaweed import ACCESS_KEY, SECRET_KEY, seaweedfs

pytestmark = pytest.mark.integration


def test_sweep_files_and_tiles_from_s3(tmp_path):
    catalog = build_catalog(tmp_path / "local", volumes_per_site=2, echoes=False)
    (tmp_path / "weed").mkdir()
    with seaweedfs(tmp_path / "weed") as endpoint:
        store = S3Store(
            bucket="radar", prefix="platform", endpoint_url=endpoint, access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        )  # fmt: skip
        store.ensure_bucket()
        for key in catalog.store.list_keys("sweeps/"):
            store.put_bytes(key, catalog.store.get_bytes(key))
        settings = Settings(
            catalog={"dir": catalog.snapshot_path.parent},
            store={"url": "s3://radar/platform", "endpoint": endpoint},
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        with TestClient(create_app(settings)) as c:
            png = c.get(f"/sweeps/{FILE_SWEEP}.png")
            assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
            assert png.content == catalog.store.get_bytes(f"sweeps/KLOT/{FILE_SWEEP}.png")
            x, y = lonlat_to_tile(KLOT_LON, KLOT_LAT, 6)
            tile = c.get(f"/tiles/{FILE_SWEEP}/6/{x}/{y}.png")
            assert tile.status_code == 200 and tile.headers["content-type"] == "image/png"
            missing = c.get("/sweeps/KLOT-L2-VOL-20210625T001000Z-REF-00.png")
            assert missing.status_code == 404 and "radar" not in missing.text  # bucket not disclosed
            secret = c.get("/health").text + c.get("/openapi.json").text
            assert SECRET_KEY not in secret
    # The store is gone: a 503 naming neither the endpoint nor the bucket (the COG is cached, PNGs are not).
    with TestClient(create_app(settings)) as c:
        t0 = time.monotonic()
        r = c.get(f"/sweeps/{FILE_SWEEP}.png")
        assert r.status_code == 503, r.text
        assert endpoint not in r.text and "radar" not in r.text
        assert time.monotonic() - t0 < 60
