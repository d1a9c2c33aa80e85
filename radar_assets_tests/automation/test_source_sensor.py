"""The source sensor's bounded, resumable listing: a real local archive and a real S3 server (SeaweedFS)."""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from unittest import mock

import dagster as dg
import pytest

from radar_assets.defs.partitions import partitions_for, sites_partitions
from radar_assets.defs.scans.resources import RadarSourceResource
from radar_assets.defs.scans.sensors import build_source_sensor
from radar_assets.lib.scans import list_new_sources
from radar_assets.lib.store import LocalStore, S3Store
from radar_assets.settings import PartitionsSettings
from radar_assets_tests.seaweed import ACCESS_KEY, SECRET_KEY, seaweedfs

TODAY = datetime.now(UTC)
DAY = TODAY.strftime("%Y-%m-%d")
SENSOR = build_source_sensor(dg.DefaultSensorStatus.STOPPED, partitions_for(PartitionsSettings()))


def _l2(site: str, when: datetime) -> str:
    return f"{when:%Y/%m/%d}/{site}/{site}{when:%Y%m%d_%H%M%S}_V06"


def _volumes(site: str, n: int, start_minute: int = 0, days_ago: int = 0) -> list[str]:
    midnight = TODAY.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)
    return [_l2(site, midnight + timedelta(seconds=60 * (start_minute + i) + 7)) for i in range(n)]


def _put_all(store, keys: list[str]) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda k: store.put_bytes(k, b"v"), keys))


def _instance(*sites: str) -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(sites_partitions.name, list(sites))
    return instance


def _tick(instance, source: RadarSourceResource, cursor: str | None, sensor=SENSOR):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"source": source})
    result = sensor(ctx)
    return result.run_requests or [], result.cursor


def _step_clock():
    """A clock that advances one unit per reading: a budget of N lets about N keys be listed."""
    return itertools.count().__next__


def test_listing_stops_on_budget_and_resumes_without_gaps_or_repeats(tmp_path):
    archive = LocalStore(tmp_path / "archive")
    keys = _volumes("KLOT", 1200) + _volumes("KTLX", 300)
    _put_all(archive, keys + [f"LOT_N0Q_{TODAY:%Y_%m_%d}_00_0{i}_00" for i in range(3)])
    marks, seen, passes = {}, [], 0
    while True:
        passes += 1
        got = list_new_sources(archive, ["KLOT", "KTLX"], [DAY], marks, budget_s=500, clock=_step_clock())
        for found in got.found.values():
            seen += found
        marks = got.marks
        if not got.out_of_time:
            break
        assert got.listed <= 502
    assert passes >= 3  # 1503 keys at about 500 per pass
    assert sorted(seen) == sorted(seen_set := set(seen)) and len(seen) == len(seen_set), "no key twice"
    assert seen_set == set(keys) | {f"LOT_N0Q_{TODAY:%Y_%m_%d}_00_0{i}_00" for i in range(3)}
    # Watermarks sit on the last key of each stream: a further pass lists nothing.
    again = list_new_sources(archive, ["KLOT", "KTLX"], [DAY], marks)
    assert again.listed == 0 and not again.found and again.complete == {f"{DAY}|KLOT", f"{DAY}|KTLX"}


def test_sensor_requests_each_site_day_once_when_complete_across_budgeted_ticks(tmp_path):
    archive = LocalStore(tmp_path / "archive")
    _put_all(archive, _volumes("KLOT", 8) + _volumes("KTLX", 3))
    instance = _instance("KLOT", "KTLX", "KFWS")
    # A budget smaller than one key's listing: every tick lists exactly one key and stops.
    source = RadarSourceResource(url=str(tmp_path / "archive"), level3_products=["N0Q"], sensor_budget_s=1e-9)
    cursor, requested, ticks = None, [], 0
    while ticks < 40:
        ticks += 1
        requests, cursor = _tick(instance, source, cursor)
        requested += [(ticks, r) for r in requests]
        if not json.loads(cursor)["pending"] and len(requested) == 2:
            break
    # Tick 1 lists KFWS (empty) and has no time left to start KLOT; ticks 2-9 list KLOT's 8 keys, one each;
    # KLOT is requested once, on tick 10, when its listing is complete. Each tick resumes at the site where
    # the last one stopped, so KTLX is listed next (ticks 10-13) and requested on tick 14.
    assert [(t, r.partition_key) for t, r in requested] == [(10, f"{DAY}|KLOT"), (14, f"{DAY}|KTLX")]
    assert json.loads(cursor)["marks"]["KLOT"][DAY]["L2"] == _volumes("KLOT", 8)[-1]
    # Quiet archive: nothing more. A new volume: one request, under a new run key.
    assert _tick(instance, source, cursor)[0] == []
    archive.put_bytes(_volumes("KLOT", 1, start_minute=1400)[0], b"v")
    later = []
    for _ in range(5):  # the budget reaches KLOT within a few ticks (KFWS is listed first)
        requests, cursor = _tick(instance, source, cursor)
        later += requests
    (request,) = later
    assert request.partition_key == f"{DAY}|KLOT"
    assert request.run_key not in {r.run_key for _, r in requested}


def test_every_site_is_reached_when_one_tick_cannot_list_them_all(tmp_path):
    archive = LocalStore(tmp_path / "archive")
    sites = [f"K{n:03d}" for n in range(12)]
    _put_all(archive, [key for site in sites for key in _volumes(site, 2)])
    instance = _instance(*sites)
    # A step clock of 5 units per tick: about two sites' keys per tick, listed by several threads.
    budget = RadarSourceResource(
        url=str(tmp_path / "archive"), level3_products=[], sensor_budget_s=5, sensor_workers=4
    )
    cursor, requested = None, []
    for _ in range(30):
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"source": budget})
        clock = _step_clock()
        with mock.patch("radar_assets.lib.scans.time.monotonic", clock):
            result = SENSOR(ctx)
        requested += [r.partition_key for r in result.run_requests or []]
        cursor = result.cursor
    assert sorted(requested) == sorted(f"{DAY}|{site}" for site in sites), "each site once, none starved"


def test_thousands_of_new_keys_in_one_tick(tmp_path):
    archive = LocalStore(tmp_path / "archive")
    volumes = {site: _volumes(site, 1300) for site in ("KLOT", "KTLX")}
    _put_all(archive, volumes["KLOT"] + volumes["KTLX"])
    instance = _instance("KLOT", "KTLX")
    source = RadarSourceResource(url=str(tmp_path / "archive"), level3_products=["N0Q"])
    requests, cursor = _tick(instance, source, None)
    assert sorted(r.partition_key for r in requests) == [f"{DAY}|KLOT", f"{DAY}|KTLX"]
    assert {s: m[DAY]["L2"] for s, m in json.loads(cursor)["marks"].items()} == {
        site: keys[-1] for site, keys in volumes.items()
    }


def test_run_keys_are_deterministic_for_the_same_cursor_and_archive(tmp_path):
    archive = LocalStore(tmp_path / "archive")
    _put_all(archive, _volumes("KLOT", 5))
    instance = _instance("KLOT")
    source = RadarSourceResource(url=str(tmp_path / "archive"), level3_products=[])
    first, cursor = _tick(instance, source, None)
    replay, replay_cursor = _tick(instance, source, None)  # the daemon re-evaluates a tick it did not commit
    assert [r.run_key for r in first] == [r.run_key for r in replay] and len(first) == 1
    assert cursor == replay_cursor


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    data = tmp_path_factory.mktemp("weed")
    with seaweedfs(data) as endpoint:
        yield endpoint


def _s3_source(endpoint: str, bucket: str, **extra) -> RadarSourceResource:
    return RadarSourceResource(
        url=f"s3://{bucket}",
        endpoint_url=endpoint,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        level3_products=["N0Q"],
        **extra,
    )


@pytest.mark.integration
def test_s3_sensor_paginates_resumes_and_keeps_cursor_on_listing_error(s3):
    bucket = S3Store(
        bucket="archive-sensor", endpoint_url=s3, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
    )
    bucket.ensure_bucket()
    klot = _volumes("KLOT", 1250)  # more than one 1000-key page under one date/site prefix
    l3 = [f"LOT_N0Q_{TODAY:%Y_%m_%d}_01_{m:02d}_00" for m in range(0, 60, 6)]
    _put_all(bucket, klot + l3 + [_volumes("KTLX", 1)[0], "unrelated/readme.txt"])
    instance = _instance("KLOT", "KTLX")
    source = _s3_source(s3, "archive-sensor")

    requests, cursor = _tick(instance, source, None)
    assert sorted(r.partition_key for r in requests) == [f"{DAY}|KLOT", f"{DAY}|KTLX"]
    marks = json.loads(cursor)["marks"]
    assert marks["KLOT"][DAY] == {"L2": klot[-1], "N0Q": l3[-1]}

    # Budgeted pagination on S3: resuming with StartAfter lists every key exactly once.
    resumed, seen = {}, []
    for _ in range(10):
        got = list_new_sources(bucket, ["KLOT"], [DAY], resumed, budget_s=400, clock=_step_clock())
        seen += got.found.get(f"{DAY}|KLOT", [])
        resumed = got.marks
        if not got.out_of_time:
            break
    assert seen == klot + l3

    assert _tick(instance, source, cursor)[0] == []  # no duplicate requests across ticks
    bucket.put_bytes(_volumes("KLOT", 1, start_minute=1300)[0], b"v")
    (request,), cursor = _tick(instance, source, cursor)
    assert request.partition_key == f"{DAY}|KLOT"
    assert request.run_key not in {r.run_key for r in requests}

    # A listing error (here: the bucket does not exist) keeps every watermark and requests nothing.
    broken = _s3_source(s3, "no-such-bucket")
    none, after_error = _tick(instance, broken, cursor)
    assert none == []
    assert json.loads(after_error) == json.loads(cursor)


def test_a_deleted_site_leaves_the_cursor_and_is_never_requested(tmp_path):
    archive = LocalStore(tmp_path / "archive")
    _put_all(archive, _volumes("KLOT", 4) + _volumes("KTLX", 4))
    instance = _instance("KLOT", "KTLX")
    source = RadarSourceResource(url=str(tmp_path / "archive"), level3_products=[], sensor_budget_s=1e-9)
    _, cursor = _tick(instance, source, None)
    _, cursor = _tick(instance, source, cursor)
    _, cursor = _tick(instance, source, cursor)
    _, cursor = _tick(instance, source, cursor)
    _, cursor = _tick(instance, source, cursor)  # KLOT requested on tick 4; KTLX found, pending
    assert list(json.loads(cursor)["pending"]) == [f"{DAY}|KTLX"]
    instance.delete_dynamic_partition(sites_partitions.name, "KTLX")
    requests, cursor = _tick(instance, source, cursor)
    assert requests == [] and json.loads(cursor)["pending"] == {}
    assert set(json.loads(cursor)["marks"]) == {"KLOT"}


def test_days_before_the_grid_are_neither_listed_nor_requested(tmp_path):
    archive = LocalStore(tmp_path / "archive")
    yesterday = (TODAY - timedelta(days=1)).strftime("%Y-%m-%d")
    _put_all(archive, _volumes("KLOT", 3, days_ago=1) + _volumes("KLOT", 2))
    instance = _instance("KLOT")
    source = RadarSourceResource(url=str(tmp_path / "archive"), level3_products=[])
    requests, cursor = _tick(instance, source, None)
    assert sorted(r.partition_key for r in requests) == [f"{yesterday}|KLOT", f"{DAY}|KLOT"]
    # On the grid's first day, yesterday is no partition: only today's keys are listed and requested.
    first_today = build_source_sensor(
        dg.DefaultSensorStatus.STOPPED, partitions_for(PartitionsSettings(first_day=DAY))
    )
    requests, cursor = _tick(instance, source, None, sensor=first_today)
    assert [r.partition_key for r in requests] == [f"{DAY}|KLOT"]
    assert list(json.loads(cursor)["marks"]["KLOT"]) == [DAY]
