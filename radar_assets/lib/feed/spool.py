"""The spool: append-only segment files that hold every record the listener accepted, and every reject.

Layout under the spool root::

    LOCK                         flock held by the one running listener (one writer per spool)
    heartbeat.json               listener counters, rewritten atomically every second
    sessions.jsonl               one line per listener start: when, and when the previous one was last alive
    pruned.jsonl                 one line per segment removed by retention (see lib/feed/retention.py)
    segments/000000000007.seg    accepted records, append-only
    segments/000000000007.idx.json   index of a sealed segment (hours, stations, offsets)
    rejects/000000000003.seg     rejected messages with their reason and bytes

A segment starts with a 40-byte header (:data:`SEG_HEADER`) and continues with frames
``magic "RFR1" | u32 payload length | u32 crc32(payload) | payload``. A record payload is
:data:`REC_META` (arrival ns, record time us, record id, stid, channel, beam, scan flag, DMAP size) followed
by station, endpoint, the record's compact echo block (made by the listener from its darn-dmap parse, see
:func:`radar_assets.lib.feed.dmap_records.pack_echoes`) and the compressed frame exactly as received.

Durability (fsync policy)
-------------------------
- Frames are buffered in memory only while a burst of messages is being drained from the sockets; the buffer
  is handed to the OS with one ``write`` as soon as the sockets are empty or 1 MiB is pending. From then on
  the record survives a crash of the listener (SIGKILL included): the page cache belongs to the kernel.
- ``fsync`` runs at most every ``fsync_interval`` seconds (default 0.2 s) and always on rotation and close,
  so a power loss or kernel crash loses at most that interval. The directory is fsynced when a segment is
  created so the file itself survives.
- A crash can leave a torn frame at the end of the segment that was being written. Readers stop at the
  first frame that is incomplete or fails its CRC; the next listener start opens a new segment (it never
  appends to an old one) and seals the old one with an index recording the valid length and torn bytes.

Invariants
----------
- Segment sequence numbers only grow; a segment is never rewritten, only appended to while it is the
  listener's current segment. So ``(segment, byte offset)`` is a stable cursor and a stable record position.
- Every frame a reader returns passed its CRC; two reads of the same byte range return the same frames.
- Segments rotate on size (``segment_bytes``), age (``segment_seconds``), a change of the arrival hour, and
  every listener start.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from radar_assets.lib.feed.wire import Accepted
from radar_assets.lib.partitions import HOUR_US, hour_key, hour_start_us  # noqa: F401 (re-exported)

SEG_MAGIC = b"RASPOOL1"
SEG_HEADER = struct.Struct("<8sIIq16s")  # magic, version, kind, created ns, session id
FRAME_HEAD = struct.Struct("<4sII")  # magic, payload length, crc32
FRAME_MAGIC = b"RFR1"
# arrival ns, record us, id, stid, channel, beam, scan, len(station), len(endpoint), DMAP size, len(echo block)
REC_META = struct.Struct("<qq16shhhhHHII")
# The record time alone: REC_META's second field, after the arrival ns.
REC_TIME, REC_TIME_AT = struct.Struct("<q"), struct.calcsize("<q")
REJ_META = struct.Struct(
    "<qQ32sHHHH"
)  # arrival ns, total bytes, sha256, len(reason), len(endpoint), len(station), n frames
REJ_FRAME = struct.Struct("<II")  # original length, kept length
KIND_RECORDS, KIND_REJECTS = 0, 1
VERSION = 1
MAX_FRAME_PAYLOAD = 64 << 20  # anything claiming more is corruption, not a frame


class RecordFrame(NamedTuple):
    """One spooled record, as read back (a named tuple: readers make thousands a second, cheaply)."""

    segment: int
    offset: int  # of the frame header in the segment
    end: int  # offset just past the frame
    arrival_ns: int
    record_time_us: int
    record_id: bytes
    stid: int
    channel: int
    beam: int
    scan_flag: int
    dmap_bytes: int
    station: str
    endpoint: str
    echo_block: bytes
    compressed: bytes


@dataclass(frozen=True, slots=True)
class RejectFrame:
    segment: int
    offset: int
    arrival_ns: int
    reason: str
    endpoint: str
    station: str
    total_bytes: int
    sha256: bytes
    frames: list[bytes]  # kept bytes of each frame (possibly truncated, see kept_limit)
    frame_sizes: list[int]


@dataclass
class SegmentIndex:
    """What a segment holds: per record hour, the frame count, byte range and per-station time range."""

    seq: int
    kind: int = KIND_RECORDS
    session: str = ""
    created_ns: int = 0
    sealed: bool = False
    valid_end: int = SEG_HEADER.size
    torn_bytes: int = 0
    frames: int = 0
    first_arrival_ns: int | None = None
    last_arrival_ns: int | None = None
    # hour key -> {"count", "first_offset", "end_offset", "stations": {station: [count, min_us, max_us]}}
    hours: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, offset: int, end: int, arrival_ns: int, t_us: int, station: str) -> None:
        self.frames += 1
        self.valid_end = end
        if self.first_arrival_ns is None:
            self.first_arrival_ns = arrival_ns
        self.last_arrival_ns = arrival_ns
        h = self.hours.get(hk := hour_key(t_us))
        if h is None:
            h = self.hours[hk] = {"count": 0, "first_offset": offset, "end_offset": end, "stations": {}}
        h["count"] += 1
        h["end_offset"] = end
        s = h["stations"].get(station)
        if s is None:
            h["stations"][station] = [1, t_us, t_us]
        else:
            s[0] += 1
            s[1] = min(s[1], t_us)
            s[2] = max(s[2], t_us)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SegmentIndex:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class SpoolError(Exception):
    pass


class SpoolLockedError(SpoolError):
    """Another listener holds the spool."""


def _segment_name(seq: int) -> str:
    return f"{seq:012d}.seg"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading ---------------------------------------------------------------------------------------------
class Spool:
    """Read access to a spool root (any number of readers, concurrently with the one writer)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.segments_dir = self.root / "segments"
        self.rejects_dir = self.root / "rejects"
        self._index_cache: dict[tuple[int, int], SegmentIndex] = {}
        self._sealed_cache: dict[int, SegmentIndex] = {}

    # segments -----------------------------------------------------------------------------------------
    def segments(self, kind: int = KIND_RECORDS) -> list[int]:
        folder = self.segments_dir if kind == KIND_RECORDS else self.rejects_dir
        if not folder.is_dir():
            return []
        return sorted(
            int(p.name[:-4]) for p in folder.iterdir() if p.name.endswith(".seg") and p.name[:-4].isdigit()
        )

    def segment_path(self, seq: int, kind: int = KIND_RECORDS) -> Path:
        return (self.segments_dir if kind == KIND_RECORDS else self.rejects_dir) / _segment_name(seq)

    def index_path(self, seq: int) -> Path:
        return self.segments_dir / f"{seq:012d}.idx.json"

    def read_segment_bytes(self, seq: int, start: int = 0, kind: int = KIND_RECORDS) -> bytes:
        with open(self.segment_path(seq, kind), "rb") as fh:
            fh.seek(start)
            return fh.read()

    def index(self, seq: int) -> SegmentIndex:
        """The segment's index: its sidecar when sealed, else built by scanning (cached by file size)."""
        sealed = self._sealed_cache.get(seq)
        if sealed is not None:
            return sealed
        idx_path = self.index_path(seq)
        if idx_path.is_file():
            # A sidecar is written once, when the segment is sealed, and never changes.
            sealed = self._sealed_cache[seq] = SegmentIndex.from_json(json.loads(idx_path.read_text()))
            return sealed
        size = self.segment_path(seq).stat().st_size
        cached = self._index_cache.get((seq, size))
        if cached is not None:
            return cached
        # Extend the newest cached scan of this segment rather than rescanning from the start.
        prev = max(
            ((s, i) for (q, s), i in self._index_cache.items() if q == seq), default=None, key=lambda x: x[0]
        )
        index = self.scan_index(seq, prev[1] if prev else None)
        for key in [k for k in self._index_cache if k[0] == seq]:
            del self._index_cache[key]
        self._index_cache[(seq, size)] = index
        return index

    def scan_index(self, seq: int, base: SegmentIndex | None = None) -> SegmentIndex:
        """Build an index by reading the segment (continuing ``base`` when given)."""
        if base is None:
            head = self.read_segment_bytes(seq)[: SEG_HEADER.size]
            index = SegmentIndex(seq=seq)
            if len(head) == SEG_HEADER.size:
                magic, _v, kind, created, session = SEG_HEADER.unpack(head)
                if magic == SEG_MAGIC:
                    index.kind, index.created_ns, index.session = kind, created, session.hex()
        else:
            index = SegmentIndex.from_json(json.loads(json.dumps(base.to_json())))
        for fr in self.iter_records(seq, index.valid_end):
            index.add(fr.offset, fr.end, fr.arrival_ns, fr.record_time_us, fr.station)
        size = self.segment_path(seq).stat().st_size
        index.torn_bytes = max(0, size - index.valid_end)
        return index

    def iter_records(self, seq: int, start: int = 0, end: int | None = None) -> Iterator[RecordFrame]:
        """Frames of a record segment from byte ``start`` (0 = first frame) up to ``end``, in order.

        Stops silently at the first incomplete or corrupt frame: in the segment being written that is a
        frame not yet fully written; in a dead segment it is the torn tail its index reports.
        """
        start = max(start, SEG_HEADER.size)
        data = self.read_segment_bytes(seq, start)
        yield from _parse_records(seq, data, start, end)

    def records_in_hour(self, key: str) -> Iterator[RecordFrame]:
        """Every spooled record whose record time falls in hour ``key`` (any arrival time), in spool order."""
        lo = hour_start_us(key)
        hi = lo + HOUR_US
        for seq in self.segments():
            h = self.index(seq).hours.get(key)
            if not h:
                continue
            for fr in self.iter_records(seq, h["first_offset"], h["end_offset"]):
                if lo <= fr.record_time_us < hi:
                    yield fr

    def advance(
        self, cursor: tuple[int, int] | None, max_bytes: int = 64 << 20
    ) -> tuple[tuple[int, int], dict[str, int], int]:
        """Read record frames after ``cursor`` ``(segment, offset)``; never more than about ``max_bytes``.

        Returns the new cursor, the number of new records per hour key (record time), and the bytes read.
        Only complete frames move the cursor, so a frame being written is seen whole on a later call. A
        sealed segment read to its valid end moves the cursor to the next segment.
        """
        seq, off = cursor or (0, 0)
        per_hour: dict[int, int] = {}  # hour number -> records; keys made once at the end
        read = 0
        for s in self.segments():
            if s < seq:
                continue
            start = off if s == seq else 0
            sealed = self.index_path(s).is_file()
            pos = max(start, SEG_HEADER.size)
            # Only the record time of each frame is needed here (the feed sensor calls this every tick,
            # beside the runs it starts): no RecordFrame, no payload copies.
            data = self.read_segment_bytes(s, pos)
            base = pos
            for _at, body, length in _record_spans(data, base, None):
                h = REC_TIME.unpack_from(data, body + REC_TIME_AT)[0] // HOUR_US
                per_hour[h] = per_hour.get(h, 0) + 1
                end = base + body + length
                read += end - pos
                pos = end
                if read >= max_bytes:
                    break
            seq, off = s, pos
            if read >= max_bytes or not sealed or self.index(s).valid_end > pos:
                # Read enough, or the segment being written (or one whose index says more is coming): stay on it.
                break
        return (seq, off), {hour_key(h * HOUR_US): n for h, n in sorted(per_hour.items())}, read

    # rejects ------------------------------------------------------------------------------------------
    def iter_rejects(self) -> Iterator[RejectFrame]:
        for seq in self.segments(KIND_REJECTS):
            data = self.read_segment_bytes(seq, SEG_HEADER.size, KIND_REJECTS)
            yield from _parse_rejects(seq, data, SEG_HEADER.size)

    # listener state -----------------------------------------------------------------------------------
    def heartbeat(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / "heartbeat.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def sessions(self) -> list[dict[str, Any]]:
        path = self.root / "sessions.jsonl"
        if not path.is_file():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line torn by a crash mid-append
                continue
        return out

    def pruned(self) -> dict[int, dict[str, Any]]:
        """Segments removed by retention: seq -> {"hours": {hour key: end offset}, ...} (their rows had landed)."""
        path = self.root / "pruned.jsonl"
        if not path.is_file():
            return {}
        out = {}
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # a line torn by a crash mid-append
                continue
            out[int(entry["segment"])] = entry
        return out

    def downtimes_ns(self) -> list[tuple[int, int]]:
        """Intervals when no listener was running: (previous listener last alive, next listener start)."""
        return [
            (s["previous_alive_ns"], s["started_ns"])
            for s in self.sessions()
            if s.get("previous_alive_ns") and s["previous_alive_ns"] < s["started_ns"]
        ]


def _record_spans(data: bytes, base: int, end: int | None) -> Iterator[tuple[int, int, int]]:
    """``(frame start, payload start, payload length)`` in ``data`` (read from byte ``base`` of a segment) of
    each complete, intact record frame before ``end``; stops at the first that is not (magic, length, CRC)."""
    view = memoryview(data)
    pos, n = 0, len(data)
    stop = n if end is None else min(n, end - base)
    head = FRAME_HEAD
    while pos + head.size <= stop:
        magic, length, crc = head.unpack_from(data, pos)
        body = pos + head.size
        if (
            magic != FRAME_MAGIC
            or length > MAX_FRAME_PAYLOAD
            or body + length > stop
            or length < REC_META.size
        ):
            return
        if zlib.crc32(view[body : body + length]) != crc:
            return
        yield pos, body, length
        pos = body + length


def _parse_records(seq: int, data: bytes, base: int, end: int | None) -> Iterator[RecordFrame]:
    meta = REC_META
    for pos, body, length in _record_spans(data, base, end):
        payload = data[body : body + length]
        arr, t_us, rid, stid, chan, beam, scan, ls, le, dsize, lb = meta.unpack_from(payload, 0)
        o = meta.size
        station = payload[o : o + ls].decode()
        o += ls
        endpoint = payload[o : o + le].decode()
        o += le
        yield RecordFrame(
            seq, base + pos, base + body + length, arr, t_us, rid, stid, chan, beam, scan, dsize,
            station, endpoint, payload[o : o + lb], payload[o + lb :],
        )  # fmt: skip


def _parse_rejects(seq: int, data: bytes, base: int) -> Iterator[RejectFrame]:
    pos, n = 0, len(data)
    while pos + FRAME_HEAD.size <= n:
        magic, length, crc = FRAME_HEAD.unpack_from(data, pos)
        body = pos + FRAME_HEAD.size
        if magic != FRAME_MAGIC or body + length > n or length < REJ_META.size:
            return
        payload = data[body : body + length]
        if zlib.crc32(payload) != crc:
            return
        arr, total, sha, lr, le, ls, nf = REJ_META.unpack_from(payload, 0)
        o = REJ_META.size
        reason = payload[o : o + lr].decode()
        o += lr
        endpoint = payload[o : o + le].decode()
        o += le
        station = payload[o : o + ls].decode()
        o += ls
        frames, sizes = [], []
        for _ in range(nf):
            orig, kept = REJ_FRAME.unpack_from(payload, o)
            o += REJ_FRAME.size
            frames.append(payload[o : o + kept])
            sizes.append(orig)
            o += kept
        yield RejectFrame(seq, base + pos, arr, reason, endpoint, station, total, sha, frames, sizes)
        pos = body + length


# -- writing ---------------------------------------------------------------------------------------------
@dataclass
class _OpenSegment:
    seq: int
    fd: int
    created_ns: int
    size: int
    index: SegmentIndex
    hour: int | None = None  # arrival hour (record segments rotate when it changes)


class SpoolWriter:
    """The single writer of a spool (the listener). Not thread-safe; one per process.

    Parameters
    ----------
    segment_bytes, segment_seconds
        Rotation thresholds. Smaller segments make the current hour cheaper to re-read incrementally.
    fsync_interval
        Maximum seconds between fsyncs of written data (see the module's durability notes).
    reject_keep_bytes
        Bytes kept per rejected message (the sha256 and size always describe the whole message).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        segment_bytes: int = 64 << 20,
        segment_seconds: float = 600.0,
        fsync_interval: float = 0.2,
        reject_keep_bytes: int = 8 << 20,
    ):
        self.root = Path(root)
        self.spool = Spool(self.root)
        self.segment_bytes = segment_bytes
        self.segment_seconds = segment_seconds
        self.fsync_interval = fsync_interval
        self.reject_keep_bytes = reject_keep_bytes
        self.session = uuid.uuid4()
        self._lock_fh = None
        self._buf = bytearray()
        self._cur: _OpenSegment | None = None
        self._rej: _OpenSegment | None = None
        self._rej_buf = bytearray()
        self._dirty = False
        self._last_sync = time.monotonic()
        self._pending = 0  # records in _buf
        self.appended = 0  # records handed to append()
        self.written = 0  # records handed to the OS (survive a process crash)
        self.synced = 0  # records fsynced (survive a power loss)
        self.rejected = 0
        self.recovered: list[dict[str, Any]] = []

    # lifecycle ------------------------------------------------------------------------------------------
    def open(self) -> SpoolWriter:
        for d in (self.root, self.spool.segments_dir, self.spool.rejects_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.root / "LOCK", "a+")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock_fh.close()
            self._lock_fh = None
            raise SpoolLockedError(f"another listener holds {self.root / 'LOCK'}") from exc
        self.recovered = self._seal_dead_segments()
        previous = self.spool.heartbeat()
        entry = {
            "session": self.session.hex,
            "pid": os.getpid(),
            "started_ns": time.time_ns(),
            "started_at": datetime.now(UTC).isoformat(),
            "previous_session": previous.get("session") if previous else None,
            "previous_alive_ns": previous.get("updated_ns") if previous else None,
            "recovered_segments": self.recovered,
        }
        with open(self.root / "sessions.jsonl", "a") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return self

    def close(self) -> None:
        self.flush(fsync=True)
        for seg, kind in ((self._cur, KIND_RECORDS), (self._rej, KIND_REJECTS)):
            if seg is not None:
                self._seal(seg, kind)
        self._cur = self._rej = None
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def __enter__(self) -> SpoolWriter:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def _seal_dead_segments(self) -> list[dict[str, Any]]:
        """Index every record segment left without one by a crashed listener (we hold the lock: none is live)."""
        out = []
        for seq in self.spool.segments():
            if self.spool.index_path(seq).is_file():
                continue
            index = self.spool.scan_index(seq)
            index.sealed = True
            _atomic_write(self.spool.index_path(seq), json.dumps(index.to_json()).encode())
            out.append({"segment": seq, "frames": index.frames, "torn_bytes": index.torn_bytes})
        return out

    def _new_segment(self, kind: int, now_ns: int) -> _OpenSegment:
        seqs = self.spool.segments(kind)
        seq = (seqs[-1] + 1) if seqs else 1
        path = self.spool.segment_path(seq, kind)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        head = SEG_HEADER.pack(SEG_MAGIC, VERSION, kind, now_ns, self.session.bytes)
        os.write(fd, head)
        os.fsync(fd)
        _fsync_dir(path.parent)
        index = SegmentIndex(seq=seq, kind=kind, session=self.session.hex, created_ns=now_ns)
        return _OpenSegment(seq, fd, now_ns, len(head), index)

    def _seal(self, seg: _OpenSegment, kind: int) -> None:
        os.fsync(seg.fd)
        os.close(seg.fd)
        if kind == KIND_RECORDS:
            seg.index.sealed = True
            _atomic_write(self.spool.index_path(seg.seq), json.dumps(seg.index.to_json()).encode())

    # records ------------------------------------------------------------------------------------------
    @property
    def current_segment(self) -> int | None:
        return self._cur.seq if self._cur else None

    def append(self, rec: Accepted, arrival_ns: int, endpoint: str) -> None:
        """Buffer one accepted record; it reaches the OS at the next :meth:`flush`."""
        st = rec.station.encode()
        ep = endpoint.encode()
        payload = b"".join(
            (
                REC_META.pack(
                    arrival_ns, rec.record_time_us, rec.record_id, rec.stid, rec.channel, rec.beam,
                    rec.scan_flag, len(st), len(ep), rec.dmap_bytes, len(rec.echo_block),
                ),
                st,
                ep,
                rec.echo_block,
                rec.compressed,
            )
        )  # fmt: skip
        frame_len = FRAME_HEAD.size + len(payload)
        cur = self._cur
        hour = arrival_ns // (HOUR_US * 1000)
        if (
            cur is None
            or (cur.size + len(self._buf) + frame_len > self.segment_bytes and cur.index.frames > 0)
            or arrival_ns - cur.created_ns > self.segment_seconds * 1e9
            or (cur.hour is not None and hour != cur.hour)
        ):
            cur = self._rotate(arrival_ns)
        cur.hour = hour
        offset = cur.size + len(self._buf)
        self._buf += FRAME_HEAD.pack(FRAME_MAGIC, len(payload), zlib.crc32(payload))
        self._buf += payload
        cur.index.add(offset, offset + frame_len, arrival_ns, rec.record_time_us, rec.station)
        self._pending += 1
        self.appended += 1
        if len(self._buf) >= 1 << 20:
            self._write_out()

    def _rotate(self, now_ns: int) -> _OpenSegment:
        if self._cur is not None:
            self._write_out()
            self._seal(self._cur, KIND_RECORDS)
            self.synced = self.written
        self._cur = self._new_segment(KIND_RECORDS, now_ns)
        return self._cur

    def _write_out(self) -> None:
        if self._buf:
            _write_all(self._cur.fd, self._buf)
            self._cur.size += len(self._buf)
            self._buf.clear()
            self.written += self._pending
            self._pending = 0
            self._dirty = True
        if self._rej_buf:
            _write_all(self._rej.fd, self._rej_buf)
            self._rej.size += len(self._rej_buf)
            self._rej_buf.clear()
            self._dirty = True

    def flush(self, fsync: bool = False) -> None:
        """Hand buffered frames to the OS; fsync when forced or ``fsync_interval`` has elapsed."""
        self._write_out()
        now = time.monotonic()
        if self._dirty and (fsync or now - self._last_sync >= self.fsync_interval):
            for seg in (self._cur, self._rej):
                if seg is not None:
                    os.fsync(seg.fd)
            self._dirty = False
            self._last_sync = now
            self.synced = self.written

    # rejects ------------------------------------------------------------------------------------------
    def reject(
        self, arrival_ns: int, endpoint: str, reason: str, frames: list[bytes], station: str = ""
    ) -> None:
        """Keep a rejected message: reason, where from, sha256 and size of all frames, and their bytes."""
        import hashlib

        h = hashlib.sha256()
        for f in frames:
            h.update(f)
        total = sum(len(f) for f in frames)
        budget = self.reject_keep_bytes
        parts = []
        for f in frames[:65535]:
            kept = f[: max(0, budget)]
            budget -= len(kept)
            parts.append(REJ_FRAME.pack(len(f), len(kept)))
            parts.append(kept)
        r, e, s = reason.encode(), endpoint.encode(), station.encode()[:256]
        payload = b"".join(
            [
                REJ_META.pack(arrival_ns, total, h.digest(), len(r), len(e), len(s), min(len(frames), 65535)),
                r,
                e,
                s,
                *parts,
            ]
        )
        if self._rej is None or self._rej.size + len(self._rej_buf) > self.segment_bytes:
            if self._rej is not None:
                self._write_out()
                self._seal(self._rej, KIND_REJECTS)
            self._rej = self._new_segment(KIND_REJECTS, arrival_ns)
        self._rej_buf += FRAME_HEAD.pack(FRAME_MAGIC, len(payload), zlib.crc32(payload))
        self._rej_buf += payload
        self.rejected += 1

    # heartbeat ----------------------------------------------------------------------------------------
    def write_heartbeat(self, extra: dict[str, Any]) -> None:
        now = time.time_ns()
        data = {
            "session": self.session.hex,
            "pid": os.getpid(),
            "updated_ns": now,
            "updated_at": datetime.fromtimestamp(now / 1e9, UTC).isoformat(),
            "segment": self.current_segment,
            "appended": self.appended,
            "written": self.written,
            "synced": self.synced,
            "rejected": self.rejected,
            **extra,
        }
        _atomic_write_nosync(self.root / "heartbeat.json", json.dumps(data).encode())


def _write_all(fd: int, buf: bytearray) -> None:
    view = memoryview(buf)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _atomic_write_nosync(path: Path, data: bytes) -> None:
    # The heartbeat is rewritten every second; an fsync each time would cost more than it protects.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
