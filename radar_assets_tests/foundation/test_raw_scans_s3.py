"""``raw_scans`` against a real S3 server (SeaweedFS) seeded with the real Level 2 and Level 3 files."""

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pyart
import pytest

from radar_assets.defs.catalog.assets import build_catalog_snapshot
from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
from radar_assets.defs.partitions import sites_partitions
from radar_assets.defs.resources import RenderResource
from radar_assets.defs.scans.assets import build_raw_scans
from radar_assets.defs.scans.resources import RadarSourceResource
from radar_assets.lib.seed import seed
from radar_assets.lib.store import store_from_url
from radar_assets_tests.conftest import sample_partitions, shared_path
from radar_assets_tests.seaweed import ACCESS_KEY, SECRET_KEY, seaweedfs

raw_scans = build_raw_scans(sample_partitions())

pytestmark = pytest.mark.integration

PARTITIONS = ["2021-06-25|KLOT", "2020-01-01|KCRP", "2013-05-20|KTLX"]
TRUNCATED_KEY = "2021/06/25/KLOT/KLOT20210625_080311_V06"
CORRUPT_KEY = "2021/06/25/KLOT/KLOT20210625_081000_V06"


def _s3(url, endpoint):
    return store_from_url(url, endpoint_url=endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    level2_dir, level3_dir = shared_path("level2"), shared_path("level3")
    tmp = tmp_path_factory.mktemp("raw_scans")
    (tmp / "weed").mkdir()
    with seaweedfs(tmp / "weed") as endpoint:
        l2, l3 = _s3("s3://nexrad-level2", endpoint), _s3("s3://nexrad-level3", endpoint)
        for store in (l2, l3):
            store.ensure_bucket()
        seed(level2_dir, l2, log=lambda _m: None)
        # Level 3 goes in through the command line, as a user would seed a bucket.
        import os

        cli_env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                   "AWS_SECRET_ACCESS_KEY": SECRET_KEY}  # fmt: skip
        seeded = subprocess.run(
            [sys.executable, "-m", "radar_assets.cli", "source", "seed", "--from", str(level3_dir), "--to", "s3://nexrad-level3"],
            env=cli_env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "seeded 22 file(s) into s3://nexrad-level3 (0 skipped)" in seeded.stdout
        assert sorted(l3.list_keys("TLX_N0Q_")) == ["TLX_N0Q_2013_05_20_20_16_00"]
        volume = (level2_dir / "KLOT" / "KLOT20210625_075154_V06").read_bytes()
        l2.put_bytes(TRUNCATED_KEY, volume[: len(volume) // 2])
        corrupt = bytearray(volume)
        corrupt[200_000:200_400] = bytes(400)  # zeros inside a bzip2 record
        l2.put_bytes(CORRUPT_KEY, bytes(corrupt))
        l2.put_bytes("2021/06/25/KLOT/KLOT20210625_075154_V06_MDM", b"model data, never a volume")
        store = StoreResource(
            url="s3://radar-store/platform",
            endpoint_url=endpoint,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        )
        _s3("s3://radar-store", endpoint).ensure_bucket()
        resources = {
            "source": RadarSourceResource(
                url="s3://nexrad-level2", level3_url="s3://nexrad-level3", endpoint_url=endpoint,
                access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
            ),
            "store": store,
            "catalog": CatalogResource(store=store, snapshot_dir=str(tmp / "catalog")),
            "render": RenderResource(cache_dir=str(tmp / "lookups")),
        }  # fmt: skip
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(sites_partitions.name, ["KLOT", "KCRP", "KTLX"])
        results = {
            p: dg.materialize([raw_scans], partition_key=p, instance=instance, resources=resources)
            for p in PARTITIONS
        }
        yield {"endpoint": endpoint, "resources": resources, "instance": instance, "first": results, "tmp": tmp,
               "level2": level2_dir, "level3": level3_dir}  # fmt: skip


def _materialization(result):
    (mat,) = result.asset_materializations_for_node("raw_scans")
    return {k: v.value for k, v in mat.metadata.items()}


def _rows(env, table, partition):
    got = env["resources"]["catalog"].get_catalog().read_partition(table, partition)
    return got.to_pylist() if got is not None else []


def _local_files(env, partition):
    day, site = partition.split("|")
    l2 = (
        [p for p in (env["level2"] / site).glob(f"{site}{day.replace('-', '')}_*")]
        if (env["level2"] / site).exists()
        else []
    )
    l3 = [
        p
        for p in env["level3"].rglob("*")
        if p.is_file() and site[1:] in p.name and day.replace("-", "") in p.name
    ]
    return l2, l3


@pytest.mark.parametrize("partition", PARTITIONS)
def test_rows_match_the_files_as_pyart_reads_them(env, partition):
    assert env["first"][partition].success
    rows = {r["source_key"].rsplit("/", 1)[-1]: r for r in _rows(env, "scans", partition)}
    l2, l3 = _local_files(env, partition)
    assert len(rows) == len(l2) + len(l3) > 0
    for path in l2:
        row = rows[path.name]
        radar = pyart.io.read_nexrad_archive(str(path))
        start = datetime.strptime(radar.time["units"][-20:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        start = start.timestamp() + float(radar.time["data"][0])
        assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert row["bytes"] == path.stat().st_size
        assert row["site"] == radar.metadata["instrument_name"] == partition.split("|")[1]
        assert row["level"] == 2 and row["product"] == "VOL"
        assert abs(row["volume_start"].timestamp() - start) < 1.0
        assert row["vcp"] == radar.metadata["vcp_pattern"]
        assert row["sweep_count"] == radar.nsweeps
        np.testing.assert_allclose(row["elevations"], radar.fixed_angle["data"], atol=1e-3)
    for path in l3:
        row = next(
            r
            for name, r in rows.items()
            if r["level"] == 3 and r["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        )
        radar = pyart.io.read_nexrad_level3(str(path))
        start = datetime.strptime(radar.time["units"][-20:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert abs(row["volume_start"].timestamp() - start.timestamp() - float(radar.time["data"][0])) < 1.0
        assert row["product"] in path.name
        assert row["sweep_count"] == 1


def test_truncated_and_corrupt_volumes_are_rejected_and_the_rest_lands(env):
    partition = "2021-06-25|KLOT"
    meta = _materialization(env["first"][partition])
    rejects = {r["source_key"]: r for r in _rows(env, "rejects", partition)}
    assert set(rejects) == {TRUNCATED_KEY, CORRUPT_KEY}
    for key, row in rejects.items():
        assert row["reason"].startswith(key)
        assert row["asset"] == "raw_scans"
    assert meta["rejected"] == 2
    assert [r["scan_id"] for r in _rows(env, "scans", partition)] == ["KLOT-L2-VOL-20210625T075154Z"]
    checks = {c.check_name: c for c in env["first"][partition].get_asset_check_evaluations()}
    assert checks["no_rejected_files"].passed is False
    assert checks["every_source_file_catalogued"].passed is True
    # the _MDM file was never listed
    assert meta["listed"] == 3


def test_rerun_writes_nothing_new(env):
    store = env["resources"]["store"].get_store()
    before = list(store.list_objects(""))
    for partition in PARTITIONS:
        result = dg.materialize(
            [raw_scans], partition_key=partition, instance=env["instance"], resources=env["resources"]
        )
        meta = _materialization(result)
        assert meta["copied"] == 0 and meta["catalog_files_written"] == []
    assert list(store.list_objects("")) == before


def test_published_catalog_answers_the_cli(env):
    snapshot = build_catalog_snapshot([raw_scans])
    result = dg.materialize(
        [snapshot], instance=env["instance"], resources={"catalog": env["resources"]["catalog"]}
    )
    assert result.success
    catalog_dir = env["tmp"] / "catalog"
    out = subprocess.run(
        [sys.executable, "-m", "radar_assets.cli", "catalog", "sql", "--format", "json", "--catalog-dir", str(catalog_dir),
         "select site, count(*) as n from scans group by site order by site"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    counts = {r["site"]: r["n"] for r in json.loads(out)}
    expected = {p.split("|")[1]: len(_rows(env, "scans", p)) for p in PARTITIONS}
    assert counts == expected
    refused = subprocess.run(
        [sys.executable, "-m", "radar_assets.cli", "catalog", "sql", "--catalog-dir", str(catalog_dir), "delete from scans"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode != 0 and "only reads are allowed" in refused.stderr
