"""Spool retention on a real spool and a real local catalog: only old, landed and published segments go."""

from __future__ import annotations

import time

from radar_assets.lib.catalog import local_catalog
from radar_assets.lib.feed.echoes import materialize_hour, record_id_counts
from radar_assets.lib.feed.retention import plan_retention, prune_spool
from radar_assets.lib.feed.simulate import SyntheticFeed
from radar_assets.lib.feed.spool import HOUR_US, Spool, SpoolWriter, hour_key
from radar_assets.lib.feed.wire import encode, validate

HOUR_NS = HOUR_US * 1000


def _spool_records(root, feed_iter, count: int, arrival_ns: int, segment_bytes: int = 60_000) -> None:
    """Append ``count`` records as a listener session whose messages arrived at ``arrival_ns`` (+1 ms each)."""
    with SpoolWriter(root, segment_bytes=segment_bytes) as w:
        for i in range(count):
            station, data, _t = next(feed_iter)
            w.append(validate(encode(station, data)), arrival_ns + i * 1_000_000, "tcp://test")


def test_only_old_landed_and_published_segments_are_removed(tmp_path):
    now_ns = time.time_ns()
    h_old = (now_ns // HOUR_NS - 5) * HOUR_NS  # five hours ago: records and arrivals in one old hour
    feed = iter(SyntheticFeed(["sas", "pgr"], 1.0, h_old // 1000 + 60_000_000))
    root = tmp_path / "spool"
    _spool_records(root, feed, 200, h_old + 60 * 10**9)  # old hour: several small segments
    hour_a = hour_key(h_old // 1000 + 60_000_000)
    # Records of the next hour, arriving in that hour too: never materialised, so never landed.
    feed_b = iter(SyntheticFeed(["sas"], 1.0, (h_old + HOUR_NS) // 1000 + 60_000_000, seed=3))
    _spool_records(root, feed_b, 40, h_old + HOUR_NS + 60 * 10**9)
    hour_b = hour_key((h_old + HOUR_NS) // 1000 + 60_000_000)
    # A recent session (inside the window) of the same old hour's record time (late data).
    spool = Spool(root)
    segs_before = spool.segments()
    by_hour = {seq: set(spool.index(seq).hours) for seq in segs_before}
    a_only = [s for s in segs_before if by_hour[s] == {hour_a}]
    b_segs = [s for s in segs_before if hour_b in by_hour[s]]
    assert len(a_only) >= 3 and b_segs

    cat = local_catalog(tmp_path / "cat")
    window = 3600.0
    # Nothing landed yet: nothing goes, each segment says why.
    plan = plan_retention(spool, cat, window_s=window, now_ns=now_ns)
    assert plan.removable == []
    assert all(plan.kept[s].startswith("unlanded") for s in a_only)
    # Landed incrementally (not final) is not enough; final but unpublished neither.
    materialize_hour(spool, cat, hour_a, now_ns // 1000, final=False)
    assert prune_spool(spool, cat, window_s=window, now_ns=now_ns).removed == []
    materialize_hour(spool, cat, hour_a, now_ns // 1000, final=True)
    plan = prune_spool(spool, cat, window_s=window, now_ns=now_ns)
    assert plan.removed == [] and all(plan.kept[s].startswith("unpublished") for s in a_only)
    cat.publish()
    rows_before = record_id_counts(cat, hour_a)
    scans_before = cat.read_partition("echo_scans", hour_a)

    # A window longer than the data's age keeps everything.
    assert prune_spool(spool, cat, window_s=10 * 3600, now_ns=now_ns).removed == []
    plan = prune_spool(spool, cat, window_s=window, now_ns=now_ns)
    assert plan.removed == a_only  # exactly the landed, published, old segments
    assert plan.bytes_freed > 0
    assert all(plan.kept[s].startswith(("unlanded", "newest")) for s in b_segs)
    assert set(spool.segments()) == set(segs_before) - set(a_only)
    assert set(spool.pruned()) == set(a_only)
    assert plan.summary()["removed"] == a_only

    # The batch layer: re-running the pruned hour changes nothing (its rows are not lost).
    res = materialize_hour(spool, cat, hour_a, now_ns // 1000, final=True)
    assert res.files_written == [] and res.records == rows_before[0]
    assert record_id_counts(cat, hour_a) == rows_before
    assert cat.read_partition("echo_scans", hour_a).equals(scans_before)
    # Late data of the pruned hour lands beside the pruned rows instead of replacing them.
    late = iter(SyntheticFeed(["kap"], 1.0, h_old // 1000 + 120_000_000, seed=9))
    _spool_records(root, late, 5, now_ns)
    res = materialize_hour(spool, cat, hour_a, now_ns // 1000, final=True)
    assert res.records == rows_before[0] + 5
    assert record_id_counts(cat, hour_a) == (rows_before[0] + 5, rows_before[1] + 5)
    # The hour's file holds pruned segments' rows and the late ones; the echoes follow their records.
    con_rows = cat.read_partition("feed_records", hour_a)
    assert set(con_rows.column("spool_segment").to_pylist()) >= set(a_only)
    echoes = cat.read_partition("echoes", hour_a)
    assert set(echoes.column("record_id").to_pylist()) <= set(con_rows.column("record_id").to_pylist())
    assert echoes.num_rows == sum(con_rows.column("echoes").to_pylist())
    # A second prune finds nothing more it may take (hour b never landed; newest stays).
    assert prune_spool(spool, cat, window_s=window, now_ns=now_ns).removed == []


def test_the_hourly_schedule_job_prunes_with_the_deployment_settings(tmp_path):
    from radar_assets.definitions import build_definitions
    from radar_assets.settings import Settings, open_catalog

    settings = Settings(home=tmp_path)
    settings.feed.retention_hours = 1.0
    now_ns = time.time_ns()
    h_old = (now_ns // HOUR_NS - 4) * HOUR_NS
    feed = iter(SyntheticFeed(["sas"], 1.0, h_old // 1000 + 60_000_000))
    _spool_records(settings.feed.spool_dir, feed, 120, h_old + 60 * 10**9)
    _spool_records(settings.feed.spool_dir, feed, 1, now_ns)  # the newest segment always stays
    spool = Spool(settings.feed.spool_dir)
    before = spool.segments()
    cat = open_catalog(settings)
    materialize_hour(spool, cat, hour_key(h_old // 1000 + 60_000_000), now_ns // 1000, final=True)
    cat.publish()
    defs = build_definitions(settings)
    schedule = defs.get_schedule_def("feed_spool_retention_hourly")
    assert schedule.cron_schedule == "20 * * * *"
    result = defs.get_job_def("feed_spool_retention").execute_in_process()
    assert result.success
    summary = result.output_for_node("prune_feed_spool")
    assert summary["removed"] == before[:-1] and Spool(settings.feed.spool_dir).segments() == before[-1:]
