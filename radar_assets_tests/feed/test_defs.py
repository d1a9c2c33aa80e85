"""The Dagster layer: live_echoes materialises an hour from a real spool; the sensor requests runs by cursor,
de-duplicates by run key, finalises closed hours and reports a stale listener as a failed check."""

from __future__ import annotations

import json
import time
import zlib

import dagster as dg

from radar_assets.defs import echoes
from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
from radar_assets.defs.echoes.assets import EXACTLY_ONCE, GAPS, build_live_echoes
from radar_assets.defs.echoes.checks import LISTENER_HEARTBEAT
from radar_assets.defs.echoes.resources import FeedSpoolResource
from radar_assets.defs.echoes.sensors import build_feed_sensor
from radar_assets.defs.echoes.sensors import evaluate_feed as _evaluate_feed
from radar_assets.defs.partitions import partitions_for
from radar_assets.lib.feed.simulate import SyntheticFeed
from radar_assets.lib.feed.spool import SpoolWriter, hour_key
from radar_assets.lib.feed.wire import validate
from radar_assets.settings import PartitionsSettings, Settings

GRID = partitions_for(PartitionsSettings())
live_echoes = build_live_echoes(GRID)
live_echoes_feed_sensor = build_feed_sensor(GRID)


def evaluate_feed(*args, **kwargs):
    return _evaluate_feed(*args, first_hour=GRID.first_hour, **kwargs)


def _spool_with_records(root, start_us: int, n: int = 200, skip: range = range(0)) -> None:
    feed = SyntheticFeed(["sas", "pgr"], 20, start_us)
    with SpoolWriter(root) as w:
        for i in range(n):
            if i in skip:
                continue
            station, data = feed.record(i)
            w.append(validate([station.encode(), zlib.compress(data)]), time.time_ns(), "tcp://sim")
        w.write_heartbeat({"received": n, "accepted": n})


def _resources(tmp_path) -> dict:
    store = StoreResource(url=str(tmp_path / "store"))
    return {
        "feed_spool": FeedSpoolResource(spool_dir=str(tmp_path / "spool")),
        "catalog": CatalogResource(store=store, snapshot_dir=str(tmp_path / "catalog")),
    }


def test_family_exports_what_definitions_needs(tmp_path):
    family = echoes.build_defs(Settings(home=tmp_path, partitions={"first_day": "2024-06-01"}))
    (asset,) = family.assets
    assert asset.key == live_echoes.key and asset.partitions_def.start.isoformat().startswith(
        "2024-06-01T00:00"
    )
    assert family.resources["feed_spool"].spool_dir == str(tmp_path.resolve() / "spool")
    defs = dg.Definitions.merge(
        family,
        dg.Definitions(
            resources={"catalog": CatalogResource(store=StoreResource(url="/tmp/x"), snapshot_dir="/tmp/y")}
        ),
    )
    defs.resolve_all_job_defs()


def test_live_echoes_materialises_an_hour_with_checks(tmp_path):
    start = (time.time_ns() // 1000 // 3_600_000_000) * 3_600_000_000 + 1_000_000
    _spool_with_records(tmp_path / "spool", start, skip=range(100, 140))  # a 2 s hole: a gap
    hour = hour_key(start)
    res = dg.materialize([live_echoes], partition_key=hour, resources=_resources(tmp_path))
    assert res.success
    mat = res.asset_materializations_for_node("live_echoes")[0]
    assert mat.metadata["records"].value == 160
    checks = {e.check_name: e for e in res.get_asset_check_evaluations()}
    assert checks[EXACTLY_ONCE].passed
    assert not checks[GAPS].passed and checks[GAPS].metadata["gaps"].value == 2  # one per station
    # Again: nothing new, same rows.
    res2 = dg.materialize([live_echoes], partition_key=hour, resources=_resources(tmp_path))
    assert res2.asset_materializations_for_node("live_echoes")[0].metadata["new_records"].value == 0


def test_sensor_requests_hours_by_cursor_and_reports_stale_listener(tmp_path):
    now = time.time()
    # Three hours ago (closed after its grace period), a minute into that hour: the records below, over about
    # two minutes, stay in one hour whatever the minute the test runs at.
    start = (int(now * 1e6) - 3 * 3_600_000_000) // 3_600_000_000 * 3_600_000_000 + 60_000_000
    _spool_with_records(tmp_path / "spool", start, n=100)
    res = _resources(tmp_path)
    reqs, cursor, checks, _ = evaluate_feed({}, res["feed_spool"], now)
    hour = hour_key(start)
    # A closed hour seen for the first time: one final run (not an incremental one as well).
    assert [(r.partition_key, r.tags["radar-assets/feed-mode"]) for r in reqs] == [(hour, "final")]
    # The heartbeat was written when the spool was (just now): fresh, reported once.
    assert len(checks) == 1 and checks[0].passed
    # Nothing new: no request, no repeated report; the cursor stays put.
    reqs2, cursor2, checks2, _ = evaluate_feed(cursor, res["feed_spool"], now + 1)
    assert reqs2 == [] and checks2 == [] and cursor2["pos"] == cursor["pos"]
    # The listener went quiet: the heartbeat check fails.
    _, _, checks3, _ = evaluate_feed(cursor2, res["feed_spool"], now + 120)
    assert len(checks3) == 1 and not checks3[0].passed and checks3[0].check_name == LISTENER_HEARTBEAT
    # A running run of the hour defers the request (kept pending in the cursor).
    _spool_with_records(tmp_path / "spool", start + 60_000_000, n=10)
    reqs4, cursor4, _, _ = evaluate_feed(cursor2, res["feed_spool"], now + 2, is_active=lambda h: True)
    assert reqs4 == [] and cursor4["pending"] == {hour: 10}
    # A waiting (queued or starting) run of the hour takes the new records when it starts: never a second one.
    assert (
        evaluate_feed(cursor2, res["feed_spool"], now + 2, is_active=lambda h: "waiting", queue_next=True)[0]
        == []
    )
    # A running one: with queue_next the next run is requested now (it waits in the queue behind it) ...
    queued, cursor_q, _, _ = evaluate_feed(
        cursor2, res["feed_spool"], now + 2, is_active=lambda h: "running", queue_next=True
    )
    assert [r.partition_key for r in queued] == [hour] and cursor_q["pending"] == {}
    # ... and without it the records stay pending until it ended.
    assert evaluate_feed(cursor2, res["feed_spool"], now + 2, is_active=lambda h: "running")[0] == []
    reqs5, _, _, _ = evaluate_feed(cursor4, res["feed_spool"], now + 3)
    assert [r.partition_key for r in reqs5] == [hour]
    assert reqs5[0].tags["radar-assets/feed-mode"] == "final" and reqs5[0].run_key != reqs[0].run_key
    # The current hour: incremental runs, one per spool position.
    _spool_with_records(tmp_path / "spool", int(now * 1e6), n=5)
    reqs6, cursor6, _, _ = evaluate_feed(cursor4, res["feed_spool"], now + 4)
    cur = [r for r in reqs6 if r.partition_key == hour_key(int(now * 1e6))]
    assert [r.tags["radar-assets/feed-mode"] for r in cur] == ["incremental"]
    assert hour_key(int(now * 1e6)) in cursor6["open"]


def test_sensor_through_dagster_context(tmp_path):
    now = time.time()
    _spool_with_records(tmp_path / "spool", int(now * 1e6) - 5_000_000, n=20)
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, resources=_resources(tmp_path)) as ctx:
            result = live_echoes_feed_sensor(ctx)
        assert len(result.run_requests) >= 1
        assert all(r.run_key.startswith("live_echoes:") for r in result.run_requests)
        assert json.loads(result.cursor)["pos"][0] >= 1


def test_sensor_never_requests_an_hour_before_the_grid(tmp_path):
    now = time.time()
    start = int(now * 1e6) - 3 * 3_600_000_000
    _spool_with_records(tmp_path / "spool", start, n=20)
    res = _resources(tmp_path)
    before = _evaluate_feed({}, res["feed_spool"], now, first_hour=GRID.first_hour)[0]
    assert [r.partition_key for r in before] == [hour_key(start)]
    later = hour_key(start + 3_600_000_000)  # the grid starts the hour after the records
    reqs, cursor, _, notes = _evaluate_feed({}, res["feed_spool"], now, first_hour=later)
    assert reqs == [] and cursor["pending"] == {}
    assert notes == [f"20 records with record time in {hour_key(start)}, outside the partitions"]


def test_feed_runs_publish_and_run_in_process_per_settings(tmp_path):
    # The latency knobs (docs/operations.md): each feed run also publishes the snapshot and runs in-process
    # under the multiprocess executor; both off, or another executor, gives the plain live_echoes run.
    import dagster as dg

    from radar_assets.defs.echoes.sensors import feed_run_options

    now = time.time()
    _spool_with_records(tmp_path / "spool", int(now * 1e6), n=5)
    res = _resources(tmp_path)
    opts = feed_run_options(Settings())
    reqs, _, _, _ = evaluate_feed({}, res["feed_spool"], now, run_options=opts)
    assert reqs and all(
        r.asset_selection == [dg.AssetKey("live_echoes"), dg.AssetKey("catalog_snapshot")] for r in reqs
    )
    assert all(r.run_config == {"execution": {"config": {"in_process": {}}}} for r in reqs)
    # live_echoes' own checks run in the run; listener_heartbeat is the sensor's (no extra step per run).
    assert all(
        sorted(k.name for k in r.asset_check_keys) == sorted([EXACTLY_ONCE, GAPS, "no_rejected_messages"])
        for r in reqs
    )
    off = Settings(feed={"runs_in_process": False, "publish_in_runs": False})
    assert feed_run_options(off) == {}
    assert "run_config" not in feed_run_options(Settings(execution={"executor": "celery"}))


def test_a_feed_run_lands_the_hour_and_publishes_it_in_one_run(tmp_path):
    # feed.publish_in_runs: the partitioned live_echoes step and the unpartitioned catalog_snapshot step in one
    # run; the records are queryable in the snapshot once it ends.
    from radar_assets.defs.catalog.assets import build_catalog_snapshot

    start = (time.time_ns() // 1000 // 3_600_000_000) * 3_600_000_000 + 1_000_000
    _spool_with_records(tmp_path / "spool", start, n=50)
    resources = _resources(tmp_path)
    res = dg.materialize(
        [live_echoes, build_catalog_snapshot([live_echoes])],
        partition_key=hour_key(start),
        resources=resources,
    )
    assert res.success
    con = resources["catalog"].get_catalog().connect_readonly()
    assert con.execute("SELECT count(*) FROM feed_records").fetchone()[0] == 50


def test_a_slow_first_pass_is_followed_by_one_more_and_counts_once(tmp_path, monkeypatch):
    # SECOND_PASS_AFTER_S = 0: every incremental run makes two passes; the second finds nothing new, and the
    # run reports the hour once (records, new records, exactly-once check) as a single pass would.
    from radar_assets.defs.echoes import assets

    monkeypatch.setattr(assets, "SECOND_PASS_AFTER_S", 0.0)
    start = (time.time_ns() // 1000 // 3_600_000_000) * 3_600_000_000 + 1_000_000
    _spool_with_records(tmp_path / "spool", start, n=120)
    res = dg.materialize([live_echoes], partition_key=hour_key(start), resources=_resources(tmp_path))
    assert res.success
    md = res.asset_materializations_for_node("live_echoes")[0].metadata
    assert md["records"].value == 120 and md["new_records"].value == 120 and not md["final"].value
    # Both passes wrote the hour's small tables: each is listed once per pass.
    assert sum("echo_scans" in k for k in md["catalog_files_written"].value) == 2
    checks = {e.check_name: e for e in res.get_asset_check_evaluations()}
    assert checks[EXACTLY_ONCE].passed
