"""The listener on real ZeroMQ sockets: real fitacf records land with darn-dmap's values; garbage is kept
as rejects and never stops the next valid record."""

from __future__ import annotations

import bz2
import hashlib
import os
import threading
import time
import zlib

import dmap
import numpy as np
import pytest

from radar_assets.lib.catalog import local_catalog
from radar_assets.lib.feed.dmap_records import record_time_us
from radar_assets.lib.feed.echoes import materialize_hour
from radar_assets.lib.feed.simulate import SyntheticFeed, file_records, publish, station_of_file
from radar_assets.lib.feed.spool import Spool
from radar_assets.lib.feed.wire import MAX_RECORD_BYTES, encode, validate
from radar_assets_tests.conftest import free_port, shared_path
from radar_assets_tests.feed.helpers import RawPublisher, ThreadListener, wait_until

FITACF = ["20180404.0601.han.test.fitacf.bz2", "20221107.1801.inv.2rec.fitacf"]


def _materialize_all(spool: Spool, catalog, now_us: int | None = None, final: bool | None = None):
    hours = sorted({h for seq in spool.segments() for h in spool.index(seq).hours})
    results = [
        materialize_hour(spool, catalog, h, now_us or time.time_ns() // 1000, final=final) for h in hours
    ]
    catalog.publish()
    return results


def _read_file(path) -> list[dict]:
    src = bz2.decompress(path.read_bytes()) if path.suffix == ".bz2" else str(path)
    recs, bad = dmap.read_fitacf(src, mode="lax")
    assert bad is None
    return recs


def test_real_fitacf_records_through_pub_sub_equal_darn_dmap(tmp_path):
    paths = [shared_path("superdarn", name) for name in FITACF]
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    spool_dir = tmp_path / "spool"
    expected_n = sum(len(_read_file(p)) for p in paths)
    with ThreadListener([endpoint], spool_dir) as listener:
        result = publish(endpoint, lambda start: file_records(paths, start), rate=2000, subscribers=1)
        assert result["published"] == expected_n
        assert wait_until(lambda: listener.stats.received >= expected_n)
    assert listener.stats.accepted == expected_n and listener.stats.rejected == 0

    spool = Spool(spool_dir)
    cat = local_catalog(tmp_path / "cat")
    _materialize_all(spool, cat)
    con = cat.connect_readonly()
    for path in paths:
        recs = _read_file(path)
        station = station_of_file(path, recs[0])
        # The replay shifts times, not order: sort both sides by (time, channel) and compare record by record.
        recs.sort(key=lambda r: (record_time_us(r), r["channel"]))
        rows = con.execute(
            "SELECT record_id, echoes, beam, scan_flag, channel, frequency, noise FROM feed_records "
            "WHERE station = ? ORDER BY record_time, channel",
            [station],
        ).fetchall()
        assert len(rows) == len(recs)
        for rec, (rid, n, beam, scan, channel, freq, noise) in zip(recs, rows, strict=True):
            assert n == len(rec.get("slist", []))
            assert (beam, scan, channel, freq) == (rec["bmnum"], rec["scan"], rec["channel"], rec["tfreq"])
            assert noise == pytest.approx(rec["noise.sky"], rel=1e-6)
            got = con.execute(
                "SELECT range_gate, velocity, power, spectral_width, ground_scatter, elevation "
                "FROM echoes WHERE record_id = ? ORDER BY range_gate",
                [rid],
            ).fetchnumpy()
            if n == 0:
                assert len(got["range_gate"]) == 0
                continue
            np.testing.assert_array_equal(got["range_gate"], rec["slist"])
            np.testing.assert_array_equal(got["velocity"], rec["v"])
            np.testing.assert_array_equal(got["power"], rec["p_l"])
            np.testing.assert_array_equal(got["spectral_width"], rec["w_l"])
            np.testing.assert_array_equal(got["ground_scatter"], rec["gflg"] != 0)
            np.testing.assert_array_equal(np.asarray(got["elevation"], np.float32), rec["elv"])
    total = con.execute("SELECT count(*), count(DISTINCT record_id) FROM feed_records").fetchone()
    assert total == (expected_n, expected_n)
    # The echo block written by the listener and a fresh darn-dmap decode of the spooled frame agree.
    from radar_assets.lib.feed.echoes import decode_frames

    frames = [f for seq in spool.segments() for f in spool.iter_records(seq)]
    a_rec, a_echo = decode_frames(frames, "x")
    b_rec, b_echo = decode_frames(frames, "x", redecode=True)
    assert a_rec.equals(b_rec) and a_echo.equals(b_echo)


def test_garbage_is_counted_and_kept_and_the_next_record_lands(tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    spool_dir = tmp_path / "spool"
    feed = SyntheticFeed(["sas"], 10, time.time_ns() // 1000)
    station, good, _ = next(iter(feed))
    rng = np.random.default_rng(1)
    z = zlib.compress(good)
    garbage = {
        "bad_zlib": [
            [b"sas", rng.bytes(3000)],  # random bytes
            [b"sas", z[: len(z) // 2]],  # truncated zlib
            [b"sas", z + b"trailing"],  # bytes after the stream
        ],
        "bad_dmap": [[b"sas", zlib.compress(rng.bytes(4000))], [b"sas", zlib.compress(good[:-40])]],
        "oversized": [
            [b"sas", zlib.compress(b"\x00" * (5 << 20))],  # a 5 MiB record (small on the wire)
            [b"sas", rng.bytes(5 << 20)],  # a 5 MiB frame
        ],
        "frame_count": [[zlib.compress(good)], [b"sas", zlib.compress(good), b"extra"]],
        "bad_station": [[b"\xff\xfe", zlib.compress(good)]],
        "multiple_records": [[b"sas", zlib.compress(good + good)]],
    }
    sent = [m for msgs in garbage.values() for m in msgs]
    pub = RawPublisher(endpoint)
    try:
        with ThreadListener([endpoint], spool_dir) as listener:
            pub.wait_subscriber()
            for msg in sent:
                pub.send(msg)
            pub.send(encode(station, good))
            assert wait_until(lambda: listener.stats.received >= len(sent) + 1)
    finally:
        pub.close()
    stats = listener.stats
    assert stats.accepted == 1
    assert stats.rejected == len(sent)
    assert dict(stats.rejected_by_reason) == {k: len(v) for k, v in garbage.items()}

    spool = Spool(spool_dir)
    kept = list(spool.iter_rejects())
    assert [r.reason for r in kept] == [k for k, msgs in garbage.items() for _ in msgs]
    for r, msg in zip(kept, sent, strict=True):
        assert r.sha256 == hashlib.sha256(b"".join(msg)).digest()
        assert r.total_bytes == sum(map(len, msg))
        assert r.frames == msg  # all bytes kept (each message is under the 8 MiB keep limit)
    hb = spool.heartbeat()
    assert hb["received"] == hb["accepted"] + hb["rejected_messages"] == len(sent) + 1

    cat = local_catalog(tmp_path / "cat")
    results = _materialize_all(spool, cat)
    assert sum(r.records for r in results) == 1
    con = cat.connect_readonly()
    assert con.execute("SELECT station, count(*) FROM feed_records GROUP BY station").fetchall() == [
        ("sas", 1)
    ]
    rows = con.execute("SELECT reason, count(*) FROM feed_rejects GROUP BY reason ORDER BY reason").fetchall()
    assert dict(rows) == {k: len(v) for k, v in garbage.items()}
    assert MAX_RECORD_BYTES == 1 << 20


def test_records_up_to_one_mebibyte_are_accepted(tmp_path):
    """No limit below 1 MiB (the reference server drops records above 10,000 bytes)."""
    from radar_assets.lib.feed.simulate import synthetic_record

    rec = synthetic_record("sas", time.time_ns() // 1000, 3, 0, np.random.default_rng(0))
    big = {**rec, "combf": "x" * 200_000}  # a 200 kB record, far above 10,000 bytes
    data = dmap.write_fitacf([big])
    assert 10_000 < len(data) < MAX_RECORD_BYTES
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = RawPublisher(endpoint)
    try:
        with ThreadListener([endpoint], tmp_path / "spool") as listener:
            pub.wait_subscriber()
            pub.send(encode("sas", data))
            assert wait_until(lambda: listener.stats.received == 1)
    finally:
        pub.close()
    assert listener.stats.accepted == 1


def test_listener_keeps_up_with_a_burst_without_dropping(tmp_path):
    """20,000 records as fast as the publisher can send: RCVHWM=0 queues them, none is lost."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    n = 20_000
    with ThreadListener([endpoint], tmp_path / "spool", segment_bytes=4 << 20) as listener:
        feed = SyntheticFeed(["sas", "pgr", "inv"], 5000, time.time_ns() // 1000)
        out = {}
        t = threading.Thread(target=lambda: out.update(publish(endpoint, feed, rate=None, count=n)))
        t.start()
        t.join(120)
        assert out["published"] == n
        assert wait_until(lambda: listener.stats.received >= n, timeout=60)
    assert listener.stats.accepted == n
    spool = Spool(tmp_path / "spool")
    assert len(spool.segments()) > 1  # rotated on size
    ids = [f.record_id for seq in spool.segments() for f in spool.iter_records(seq)]
    assert len(ids) == len(set(ids)) == n


def test_synthetic_wire_frames_inflate_to_the_records_and_validate():
    """The simulator's cheap frames (stored head + pre-deflated tail) are zlib streams of exactly the records
    ``encode`` would compress, and the listener's validation accepts them with the record time they carry."""
    start = time.time_ns() // 1000
    frames_of, records = (
        SyntheticFeed(["sas", "pgr"], 5000, start).messages(),
        iter(SyntheticFeed(["sas", "pgr"], 5000, start)),
    )
    for _ in range(300):  # every (station, beam, variant) template and more
        frames, t_us = next(frames_of)
        station, data, t_rec = next(records)
        assert frames[0] == encode(station, data)[0]
        assert zlib.decompress(frames[1]) == data and t_us == t_rec
        accepted = validate(frames)
        assert (accepted.station, accepted.record_time_us) == (station, t_us)


def test_second_listener_on_the_same_spool_is_refused(tmp_path):
    from radar_assets.lib.feed.spool import SpoolLockedError, SpoolWriter

    with SpoolWriter(tmp_path / "spool"):
        with pytest.raises(SpoolLockedError):
            SpoolWriter(tmp_path / "spool").open()
    assert os.path.exists(tmp_path / "spool" / "sessions.jsonl")
