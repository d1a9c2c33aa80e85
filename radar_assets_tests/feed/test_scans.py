"""Scan boundaries: a scan starts at the record with scan flag +-1 and ends before the next one (record time),
so the first beam of a new scan is never counted in the previous scan; gaps use the scan cadence."""

from __future__ import annotations

import time
import zlib

import pyarrow as pa
import pytest

from radar_assets.lib.catalog import local_catalog
from radar_assets.lib.feed.echoes import (
    RECORDS_SCHEMA,
    gap_table,
    materialize_hour,
    scan_table,
    station_cadence_s,
)
from radar_assets.lib.feed.simulate import file_records
from radar_assets.lib.feed.spool import HOUR_US, Spool, SpoolWriter, hour_key
from radar_assets.lib.feed.wire import validate
from radar_assets_tests.conftest import shared_path

H0 = 1_795_276_800_000_000  # 2026-11-21 16:00 UTC, an hour boundary


def _records(rows: list[tuple], partition: str = "p") -> pa.Table:
    """rows: (station, channel, t_us, scan_flag, echoes, sum_velocity)."""
    cols = {name: [] for name in RECORDS_SCHEMA.names}
    for i, (st, ch, t, flag, n, sv) in enumerate(rows):
        vals = dict(
            record_id=f"{i:032x}", station=st, stid=1, channel=ch, record_time=t, arrival_time=t, beam=i % 16,
            scan_flag=flag, echoes=n, sum_velocity=sv, sum_power=float(n), sum_width=2.0 * n, frequency=10000,
            noise=1.0, dmap_bytes=100, endpoint="e", spool_segment=1, spool_offset=i, partition=partition,
        )  # fmt: skip
        for k, v in vals.items():
            cols[k].append(v)
    return pa.table(
        {k: pa.array(v, RECORDS_SCHEMA.field(k).type) if k not in ("record_time", "arrival_time")
         else pa.array(v, pa.int64()).cast(RECORDS_SCHEMA.field(k).type) for k, v in cols.items()},
        schema=RECORDS_SCHEMA,
    )  # fmt: skip


def test_first_beam_of_a_new_scan_is_not_in_the_previous_scan():
    s = 1_000_000
    # Arrival order is scrambled on purpose: scans follow record time, not arrival.
    rows = [
        ("sas", 0, H0 + 3 * s, 1, 2, 20.0),  # scan B starts (its velocity sum is 20)
        ("sas", 0, H0 + 0 * s, 1, 1, 100.0),  # scan A starts
        ("sas", 0, H0 + 1 * s, 0, 1, 100.0),
        ("sas", 0, H0 + 2 * s, 0, 2, 200.0),
        ("sas", 0, H0 + 4 * s, 0, 2, 20.0),
        ("sas", 0, H0 + 5 * s, -1, 1, 7.0),  # scan C: -1 is a scan start too (reverse beam order)
    ]
    scans = scan_table(_records(rows), None, "p").to_pylist()
    assert [(r["records"], r["echoes"]) for r in scans] == [(3, 4), (2, 4), (1, 1)]
    a, b, c = scans
    assert a["mean_velocity"] == pytest.approx(400.0 / 4)  # 20 m/s of scan B's first beam is not in A
    assert b["mean_velocity"] == pytest.approx(40.0 / 4)
    assert a["scan_end"].timestamp() == (H0 + 2 * s) / 1e6  # last record before B's first beam
    assert b["scan_start"].timestamp() == (H0 + 3 * s) / 1e6
    assert [r["complete"] for r in scans] == [True, True, False]


def test_scan_crossing_the_hour_keeps_its_tail_and_next_hour_skips_it():
    s = 1_000_000
    hour = [("sas", 0, H0 - 3 * s, 1, 1, 1.0), ("sas", 0, H0 - 2 * s, 0, 1, 1.0)]
    nxt = [
        ("sas", 0, H0 + 1 * s, 0, 1, 1.0),
        ("sas", 0, H0 + 2 * s, 1, 5, 50.0),
        ("sas", 0, H0 + 3 * s, 0, 1, 1.0),
    ]
    this = scan_table(_records(hour), _records(nxt[:2]), "prev").to_pylist()
    assert len(this) == 1 and this[0]["records"] == 3 and this[0]["complete"]
    assert this[0]["scan_end"].timestamp() == (H0 + s) / 1e6
    # In the next hour, the leading record (H0+1s) belongs to the previous hour's scan: not counted again.
    later = scan_table(_records(nxt), None, "next").to_pylist()
    assert (
        len(later) == 1
        and later[0]["records"] == 2
        and later[0]["scan_start"].timestamp() == (H0 + 2 * s) / 1e6
    )


def test_channels_of_a_stereo_radar_scan_separately():
    s = 1_000_000
    rows = []
    for k in range(4):  # channel 0 starts scans at 0 and 2 s; channel 1 at 0.5 s and 2.5 s
        rows.append(("han", 0, H0 + k * s, 1 if k % 2 == 0 else 0, 1, 1.0))
        rows.append(("han", 1, H0 + k * s + s // 2, 1 if k % 2 == 0 else 0, 1, 1.0))
    scans = scan_table(_records(rows), None, "p").to_pylist()
    assert sorted((r["channel"], r["records"]) for r in scans) == [(0, 2), (0, 2), (1, 2), (1, 2)]


def test_real_han_scans_through_the_spool(tmp_path):
    """Hankasalmi 2018-04-04: channel 1 sweeps beams 15..0 with scan flag -1 on beam 15; channel 2 camps
    on beam 9. Every scan must start with its flagged record and hold no other flagged record."""
    path = shared_path("superdarn", "20180404.0601.han.test.fitacf.bz2")
    start = H0 + 60_000_000
    spool_dir = tmp_path / "spool"
    with SpoolWriter(spool_dir) as w:
        for station, data, _t in file_records([path], start):
            w.append(validate([station.encode(), zlib.compress(data)]), time.time_ns(), "file")
    spool = Spool(spool_dir)
    cat = local_catalog(tmp_path / "cat")
    res = materialize_hour(spool, cat, hour_key(start), start, final=False)
    assert res.records == 100
    cat.publish()
    con = cat.connect_readonly()
    scans = con.execute(
        "SELECT channel, scan_start, scan_end, records, complete FROM echo_scans ORDER BY channel, scan_start"
    ).fetchall()
    assert scans
    for channel, t0, t1, n, _complete in scans:
        flags = con.execute(
            "SELECT scan_flag, beam FROM feed_records WHERE station = 'han' AND channel = ? "
            "AND record_time BETWEEN ? AND ? ORDER BY record_time",
            [channel, t0, t1],
        ).fetchall()
        assert len(flags) == n
        assert abs(flags[0][0]) == 1  # starts at the flagged record...
        assert all(abs(f) != 1 for f, _ in flags[1:])  # ...and holds no other scan start
        if channel == 1 and _complete:
            assert [b for _, b in flags] == list(range(15, -1, -1))  # one full sweep, beams 15..0
    # 100 records: every record from the first flagged one on is in exactly one scan.
    assert sum(s[3] for s in scans) == 100


def test_gap_longer_than_the_cadence_is_recorded_including_across_the_hour():
    s = 1_000_000
    rows = [("sas", 0, H0 + k * 60 * s, 1, 1, 1.0) for k in range(5)]  # one-minute scans
    rows += [("sas", 0, H0 + 9 * 60 * s, 1, 1, 1.0)]  # then 5 minutes of nothing
    rec = _records(rows)
    assert station_cadence_s(rec) == {"sas": 60.0}
    gaps = gap_table(
        rec, "p", previous={"sas": H0 - 10 * 60 * s}, downtimes_us=[(H0 + 5 * 60 * s, H0 + 6 * 60 * s)]
    )
    got = [(g["gap_start"].timestamp(), g["seconds"], g["cause"]) for g in gaps.to_pylist()]
    assert got == [((H0 - 600 * s) / 1e6, 600.0, "source"), ((H0 + 240 * s) / 1e6, 300.0, "listener_down")]
    assert HOUR_US == 3600 * s
