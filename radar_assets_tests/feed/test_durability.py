"""Nothing the listener spooled is lost or doubled: SIGKILL mid-stream, restarts, segments read twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from radar_assets.lib.catalog import local_catalog
from radar_assets.lib.feed.echoes import materialize_hour
from radar_assets.lib.feed.simulate import SyntheticFeed, publish
from radar_assets.lib.feed.spool import HOUR_US, Spool, SpoolWriter, hour_key
from radar_assets.lib.feed.wire import validate
from radar_assets_tests.conftest import PROJECT_ROOT, free_port
from radar_assets_tests.feed.helpers import wait_until


def _start_listener(endpoint: str, spool: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "radar_assets.cli.feed", "listen", "--endpoint", endpoint, "--spool", str(spool),
         "--segment-mb", "0.25", "--heartbeat-interval", "0.2"],
        cwd=PROJECT_ROOT,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def _heartbeat(spool: Path) -> dict:
    try:
        return json.loads((spool / "heartbeat.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _all_hours(spool: Spool) -> list[str]:
    return sorted({h for seq in spool.segments() for h in spool.index(seq).hours})


def test_sigkill_mid_stream_then_restart_lands_every_spooled_record_once_and_reports_the_gap(tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    spool_dir = tmp_path / "spool"
    log = tmp_path / "listener.log"
    rate, n, n1 = 400, 2400, 1600  # 6 s of records from two stations; the kill comes during the first 4 s
    start_us = time.time_ns() // 1000
    feed = SyntheticFeed(["sas", "pgr"], rate, start_us)

    def records(first: int, last: int):
        for i in range(first, last):
            yield (*feed.record(i), feed.time_of(i))

    proc = _start_listener(endpoint, spool_dir, log)
    out: dict = {}
    pub = threading.Thread(
        target=lambda: out.update(
            publish(endpoint, records(0, n1), rate=rate, subscribers=1, wait_timeout=60)
        )
    )
    pub.start()
    try:
        assert wait_until(lambda: _heartbeat(spool_dir).get("accepted", 0) >= 500, timeout=60), (
            log.read_text()
        )
        proc.send_signal(signal.SIGKILL)  # no chance to flush, seal or say goodbye
        proc.wait(10)
        killed_at_us = time.time_ns() // 1000
        pub.join(60)  # what is published now reaches nobody: that is the gap to report
        assert out["published"] == n1
        first_session = _heartbeat(spool_dir).get("session")
        proc = _start_listener(endpoint, spool_dir, log)
        # The rest is published once the new listener runs and subscribed (publish waits for it), however long a
        # loaded machine takes to start it: otherwise the feed could end before anyone listens again, and the
        # SIGTERM below could reach a process that has not installed its handler yet.
        assert wait_until(lambda: _heartbeat(spool_dir).get("session") not in (None, first_session), 60)
        rest = publish(endpoint, records(n1, n), rate=rate, subscribers=1, wait_timeout=60)
        assert rest["published"] == n - n1
        assert wait_until(
            lambda: _heartbeat(spool_dir).get("accepted", 0) >= n - n1, timeout=60
        )  # this process's
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0, log.read_text()

    spool = Spool(spool_dir)
    sessions = spool.sessions()
    assert len(sessions) == 2
    # The second listener sealed the segment the killed one was writing (an index with its valid length).
    assert sessions[1]["recovered_segments"], sessions[1]
    assert all(spool.index_path(seq).is_file() for seq in spool.segments())
    spooled = [f for seq in spool.segments() for f in spool.iter_records(seq)]
    spooled_ids = {f.record_id.hex() for f in spooled}
    assert len(spooled) == len(spooled_ids)  # the spool itself holds each received record once
    assert 500 <= len(spooled) < n  # some records were published while no listener ran

    cat = local_catalog(tmp_path / "cat")
    for h in _all_hours(spool):
        materialize_hour(spool, cat, h, time.time_ns() // 1000, final=False)
        materialize_hour(spool, cat, h, time.time_ns() // 1000, final=False)  # a repeated run changes nothing
    cat.publish()
    con = cat.connect_readonly()
    rows = con.execute("SELECT record_id FROM feed_records").fetchall()
    assert len(rows) == len(spooled)
    assert {r[0] for r in rows} == spooled_ids  # every spooled record exactly once

    # Every record that never reached a listener lies inside a reported gap of its station.
    published = {}
    for i in range(n):
        station, data = feed.record(i)
        published[validate([station.encode(), __import__("zlib").compress(data)]).record_id.hex()] = (
            station,
            feed.time_of(i),
        )
    missing = {rid: v for rid, v in published.items() if rid not in spooled_ids}
    assert missing
    gaps = con.execute(
        "SELECT station, epoch_us(gap_start), epoch_us(gap_end), cause FROM feed_gaps ORDER BY gap_start"
    ).fetchall()
    assert gaps, "the restart gap is reported"
    for station, t in missing.values():
        assert any(s == station and g0 < t < g1 for s, g0, g1, _ in gaps), (station, t, gaps)
    # The gap overlaps the time no listener ran, and says so.
    down = [g for g in gaps if g[3] == "listener_down"]
    assert {g[0] for g in down} == {"sas", "pgr"}
    assert all(g[1] <= killed_at_us + 1_000_000 for g in down)


def test_reading_a_segment_twice_lands_each_record_once(tmp_path):
    start = (time.time_ns() // 1000 // 3_600_000_000) * 3_600_000_000 + 5_000_000  # early in this hour
    feed = SyntheticFeed(["sas", "pgr"], 50, start)
    recs = [
        validate(list(map(bytes, (s.encode(), __import__("zlib").compress(d)))))
        for s, d, _ in _take(feed, 300)
    ]
    spool_dir = tmp_path / "spool"
    with SpoolWriter(spool_dir, segment_bytes=100_000) as w:
        for r in recs:
            w.append(r, time.time_ns(), "tcp://test")
    # The same records delivered again (a publisher resending after a reconnect) land in new segments.
    with SpoolWriter(spool_dir, segment_bytes=100_000) as w:
        for r in recs[100:200]:
            w.append(r, time.time_ns(), "tcp://test")
    spool = Spool(spool_dir)
    hour = hour_key(start)
    cat = local_catalog(tmp_path / "cat")
    first = materialize_hour(spool, cat, hour, start, final=False)
    assert first.records == 300 and first.duplicates_dropped == 100
    # Forget which segments were read: every segment is read again.
    cat.store.delete(f"feed_state/live_echoes/{hour.replace(':', '_')}.json")
    again = materialize_hour(spool, cat, hour, start, final=False)
    assert again.records == 300
    cat.publish()
    con = cat.connect_readonly()
    assert con.execute("SELECT count(*), count(DISTINCT record_id) FROM feed_records").fetchone() == (
        300,
        300,
    )
    echoes = con.execute("SELECT count(*) FROM echoes").fetchone()[0]
    assert echoes == sum(_n_echoes(r) for r in recs)
    # The closing run rebuilds the hour in one file from the spool: still once each, chunks gone.
    final = materialize_hour(spool, cat, hour, start + 2 * 3_600_000_000, final=None)
    assert final.final and final.records == 300 and final.files_deleted
    cat.publish()
    con = cat.connect_readonly()
    assert con.execute("SELECT count(*), count(DISTINCT record_id) FROM feed_records").fetchone() == (
        300,
        300,
    )
    assert con.execute("SELECT count(*) FROM echoes").fetchone()[0] == echoes
    keys = list(cat.store.list_keys("catalog/feed_records/"))
    assert len(keys) == 1
    # Re-running the closed hour writes nothing new.
    assert materialize_hour(spool, cat, hour, start + 2 * 3_600_000_000).new_records == 0


def _take(it, n):
    out = []
    for x in it:
        out.append(x)
        if len(out) == n:
            return out
    return out


def _n_echoes(rec) -> int:
    import struct

    return struct.unpack_from("<I", rec.echo_block, 0)[0]


def test_heartbeat_is_rewritten_and_torn_tail_is_ignored(tmp_path):
    spool_dir = tmp_path / "spool"
    feed = SyntheticFeed(["sas"], 10, time.time_ns() // 1000)
    w = SpoolWriter(spool_dir).open()
    for s, d, _ in _take(feed, 5):
        w.append(validate([s.encode(), __import__("zlib").compress(d)]), time.time_ns(), "e")
    w.flush(fsync=True)
    seg = w.current_segment
    path = Spool(spool_dir).segment_path(seg)
    # Simulate a crash in the middle of a write: half a frame at the end of the segment.
    with open(path, "ab") as fh:
        fh.write(b"RFR1\xff\x00\x00\x00partial")
    os.close(w._cur.fd)  # the process "died": no seal, no index
    w._cur = None
    w._lock_fh.close()
    w2 = SpoolWriter(spool_dir).open()
    try:
        index = Spool(spool_dir).index(seg)
        assert index.sealed and index.frames == 5 and index.torn_bytes == 15
        assert len(list(Spool(spool_dir).iter_records(seg))) == 5
    finally:
        w2.close()


def test_advance_in_small_steps_counts_every_record_once_by_hour_and_stops_at_a_torn_frame(tmp_path):
    """The feed sensor's cursor walk (frame headers and record times only) agrees with full decoding."""
    spool_dir = tmp_path / "spool"
    start = (time.time_ns() // 1000 // HOUR_US) * HOUR_US - 30_000_000  # the records straddle an hour
    w = SpoolWriter(spool_dir, segment_bytes=40_000).open()
    for s, d, _ in _take(SyntheticFeed(["sas", "pgr"], 1, start), 60):
        w.append(validate([s.encode(), __import__("zlib").compress(d)]), time.time_ns(), "e")
    w.flush(fsync=True)
    with open(Spool(spool_dir).segment_path(w.current_segment), "ab") as fh:
        fh.write(b"RFR1\xff\x00\x00\x00partial")  # a frame being written
    spool = Spool(spool_dir)
    assert len(spool.segments()) > 1
    expected: dict[str, int] = {}
    for seq in spool.segments():
        for fr in spool.iter_records(seq):
            expected[hour_key(fr.record_time_us)] = expected.get(hour_key(fr.record_time_us), 0) + 1
    assert len(expected) == 2 and sum(expected.values()) == 60
    got: dict[str, int] = {}
    cursor, steps = None, 0
    while True:
        new_cursor, hours, _read = spool.advance(cursor, 7_000)
        for h, n in hours.items():
            got[h] = got.get(h, 0) + n
        if new_cursor == cursor:
            break
        cursor, steps = new_cursor, steps + 1
    assert got == expected and steps > 5
    assert spool.advance(cursor, 1 << 30)[1] == {}  # the torn frame is not counted, now or later
    w.close()
