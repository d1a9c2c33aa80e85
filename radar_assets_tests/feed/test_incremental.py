"""The open hour built incrementally run after run lands exactly the rows a final rebuild of the same spool
lands: records, echoes, scans, gaps and rejects, byte for byte, after every run (not only at the end)."""

from __future__ import annotations

import zlib

import pyarrow as pa

from radar_assets.lib.catalog import Catalog, local_catalog
from radar_assets.lib.feed.echoes import _partition_files, _read, materialize_hour
from radar_assets.lib.feed.simulate import SyntheticFeed
from radar_assets.lib.feed.spool import HOUR_US, Spool, SpoolWriter, hour_key
from radar_assets.lib.feed.wire import validate

H0 = 1_795_276_800_000_000  # 2026-11-21 16:00 UTC, an hour boundary
SORT = {
    "feed_records": ["record_id"],
    "echoes": ["record_id", "range_gate"],
    "echo_scans": ["station", "channel", "scan_start"],
    "feed_gaps": ["station", "gap_start"],
    "feed_rejects": ["received_at", "spool_segment", "spool_offset"],
}


def _rows(cat: Catalog, table: str, partition: str) -> pa.Table:
    """Every row of ``table`` for the hour over all its files (full file and chunks), in a fixed order."""
    if table in ("feed_records", "echoes"):
        keys = list(_partition_files(cat, table, partition).values())
    else:
        keys = [cat.partition_key(table, partition)]
    rows = pa.concat_tables([_read(cat, k) for k in keys])
    return rows.sort_by([(c, "ascending") for c in SORT[table]])


def test_incremental_runs_equal_a_final_rebuild_after_every_run(tmp_path):
    # 3 stations at 30 records/s: a scan per station every 1.6 s, so the hour holds many scans and each batch
    # ends mid-scan. Small segments: a batch fills several and leaves the last one growing (unsealed).
    feed = SyntheticFeed(["sas", "pgr", "inv"], 30, H0 + 5_000_000)
    records = [validate([s.encode(), zlib.compress(d)]) for s, d in (feed.record(i) for i in range(1200))]
    hour = hour_key(H0 + 5_000_000)
    held_back = set(range(130, 150))  # arrive late, in a later batch (record time earlier than what landed)
    hole = set(range(700, 790))  # never arrive: a gap of each station, longer than its cadence
    batches = [range(0, 300), range(300, 520), range(520, 900), range(900, 1200)]
    spool_dir = tmp_path / "spool"
    cat = local_catalog(tmp_path / "incremental")
    now_us = H0 + 30 * 60_000_000  # the hour is open: incremental runs
    clock = iter(range(10**9))

    def arrival() -> int:  # arrival times inside the hour (rejects belong to the hour they arrived in)
        return (H0 + 10 * 60_000_000 + 1000 * next(clock)) * 1000

    writer = SpoolWriter(spool_dir, segment_bytes=60_000).open()
    try:
        for b, batch in enumerate(batches):
            for i in batch:
                if i in hole or (i in held_back and b == 0):
                    continue
                writer.append(records[i], arrival(), "tcp://sim")
            if b == 2:
                for i in held_back:  # the late ones, and a publisher resending a few already landed
                    writer.append(records[i], arrival(), "tcp://sim")
                for i in range(10, 20):
                    writer.append(records[i], arrival(), "tcp://resend")
            if b == 3:  # records of the next hour close the hour's last scans
                later = SyntheticFeed(["sas", "pgr", "inv"], 30, H0 + HOUR_US + 200_000)
                for i in range(40):
                    s, d = later.record(i)
                    writer.append(validate([s.encode(), zlib.compress(d)]), arrival(), "tcp://sim")
            writer.reject(arrival(), "tcp://sim", "bad_frame", [b"not a record"])
            writer.flush()
            res = materialize_hour(Spool(spool_dir), cat, hour, now_us, final=False)
            assert not res.final and res.new_records > 0

            rebuilt = local_catalog(tmp_path / f"rebuild{b}")
            full = materialize_hour(Spool(spool_dir), rebuilt, hour, now_us, final=True)
            assert full.final and full.records == res.records and full.scans == res.scans
            for table in SORT:
                got, want = _rows(cat, table, hour), _rows(rebuilt, table, hour)
                assert got.num_rows == want.num_rows, (b, table)
                assert got.equals(want), (b, table)  # same values, same types, same nulls
            # A repeated run changes nothing.
            again = materialize_hour(Spool(spool_dir), cat, hour, now_us, final=False)
            assert again.new_records == 0 and again.records == res.records
            assert all(_rows(cat, t, hour).equals(_rows(rebuilt, t, hour)) for t in SORT)
    finally:
        writer.close()

    landed = _rows(cat, "feed_records", hour)
    assert landed.num_rows == 1200 - len(hole)  # every record once: late ones in, resent ones once
    assert full.duplicates_dropped == 10  # the rebuild reads every segment (a run, only those that grew)
    assert res.gaps == 3 and res.complete_scans > 0 and res.rejects == len(batches)


def test_feed_tables_are_appended_not_resorted_inside_feed_runs_and_compaction_sorts_them(tmp_path):
    # A run's publish appends the new feed rows (sorted among themselves); it never re-sorts the whole table
    # however many rows were appended (that would land inside a feed run). The nightly full publish sorts.
    import duckdb

    cat = local_catalog(tmp_path)
    feed = SyntheticFeed(["sas", "pgr"], 20, H0 + 1_000_000)
    spool_dir = tmp_path / "spool"
    hour = hour_key(H0 + 1_000_000)
    writer = SpoolWriter(spool_dir, segment_bytes=30_000).open()

    def state() -> dict[str, tuple[int, int]]:
        con = duckdb.connect(str(cat.snapshot_path), read_only=True)
        try:
            rows = con.execute("SELECT table_name, sorted_rows, appended_rows FROM catalog_tables").fetchall()
            return {t: (s, a) for t, s, a in rows}
        finally:
            con.close()

    try:
        first = 0
        for n in (40, 80, 160):  # each batch outnumbers every row already published
            for i in range(first, first + n):
                s, d = feed.record(i)
                writer.append(validate([s.encode(), zlib.compress(d)]), (H0 + 2_000_000) * 1000, "e")
            first += n
            writer.flush()
            materialize_hour(Spool(spool_dir), cat, hour, H0 + 60_000_000, final=False)
            cat.publish()
    finally:
        writer.close()
    sorted_rows, appended = state()["feed_records"]
    # Never re-sorted in the feed's publishes (appended also counts the grown segment's rows put back).
    assert sorted_rows == 40 and appended >= 240
    assert state()["echo_scans"][1] == 0  # other tables still re-sort as they double
    cat.publish(incremental=False)
    assert state()["feed_records"] == (280, 0)
    con = cat.connect_readonly()
    keys = con.execute("SELECT station, epoch_us(record_time) FROM feed_records").fetchall()
    assert keys == sorted(keys)
