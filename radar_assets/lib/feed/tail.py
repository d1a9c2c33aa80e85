"""A read-only tailer of the listener's spool: record summaries, completed scans and listener gaps, in spool order.

The speed layer's source. :class:`SpoolTailer` follows the segment files by cursor exactly as the feed sensor
does (:mod:`radar_assets.lib.feed.spool`): it opens files read-only, never takes the listener's ``LOCK`` and
never writes, so the listener cannot be slowed or blocked by it. Garbage never reaches it: the listener
validates every message and keeps what it refuses in ``rejects/``, a different folder the tailer does not read.

Positions and event ids
-----------------------
A record's position is ``(segment, offset of its frame)``; positions only grow (segments are append-only and
their numbers only grow). :func:`event_id` renders a position as a fixed-width string
``SSSSSSSSSSSS-OOOOOOOOOOOO`` whose string order is the spool order, so a client may treat it as opaque and
still compare ids. "After id X" means every record whose position is greater than X.

Same rules as the batch layer
-----------------------------
Summaries are the ``feed_records`` rows :func:`radar_assets.lib.feed.echoes.decode_frames` builds for the
catalog, and completed scans come from :func:`radar_assets.lib.feed.echoes.scan_table`, the function that
builds ``echo_scans``: a scan of (station, channel) starts at a record whose ``|scan flag| == 1`` and holds
every following record up to the next start, ordered by record time (not arrival). The tailer announces a
scan when the record starting the next one arrives (``complete`` is then true in both layers).

Invariants
----------
- Every record whose position is after the start position is returned exactly once, in position order,
  unless its record id was already returned within the last ``dedup_window`` records (a second spool copy of
  the same record, which ``live_echoes`` drops too).
- A batch never spans two listener sessions: a listener restart ends the batch and the next one starts with
  a ``gap`` (previous session last alive -> new session start).
- Memory is bounded: at most ``max_records`` per batch, ``dedup_window`` ids, and per (station, channel) at
  most ``max_open_scan`` records of the scan in progress (a station that never sends another scan start has
  its open scan dropped, not kept forever).

Known differences from ``live_echoes`` (both only on unusual feeds): a record that arrives after the record
starting the next scan but whose record time is earlier is not added to the already announced scan; a
scan whose tail lies more than ``SCAN_LOOKAHEAD_US`` into the next hour is complete here but not there.
"""

from __future__ import annotations

import collections
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from radar_assets.lib.feed.echoes import ECHO_SCANS_SCHEMA, SCAN_INPUT_COLUMNS, decode_frames, scan_table
from radar_assets.lib.feed.spool import SEG_HEADER, SEG_MAGIC, RecordFrame, Spool, _parse_records, hour_key

Position = tuple[int, int]
ID_WIDTH = 12


def event_id(pos: Position) -> str:
    """The ordered string form of a spool position (see the module docstring)."""
    return f"{pos[0]:0{ID_WIDTH}d}-{pos[1]:0{ID_WIDTH}d}"


def parse_event_id(text: str) -> Position:
    """Inverse of :func:`event_id`; ``ValueError`` naming the text when it is not one."""
    seg, sep, off = text.strip().partition("-")
    if not sep or not seg.isdigit() or not off.isdigit() or len(seg) > 18 or len(off) > 18:
        raise ValueError("not a live event id (expected SEGMENT-OFFSET: two runs of digits)")
    return int(seg), int(off)


@dataclass
class Gap:
    """The listener was not running between ``previous_alive_ns`` and ``started_ns`` (a restart)."""

    session: str
    previous_session: str | None
    previous_alive_ns: int | None
    started_ns: int | None
    at: str  # event id just before the first record of the new session

    def as_dict(self) -> dict[str, Any]:
        down = None
        if self.previous_alive_ns and self.started_ns:
            down = round(max(0, self.started_ns - self.previous_alive_ns) / 1e9, 3)
        return {
            "kind": "listener_restart",
            "session": self.session,
            "previous_session": self.previous_session,
            "down_from_ns": self.previous_alive_ns,
            "down_to_ns": self.started_ns,
            "down_seconds": down,
            "at": self.at,
        }


@dataclass
class TailBatch:
    """What one :meth:`SpoolTailer.poll` found: records after ``after``, scans they completed, a gap."""

    after: Position | None  # position of the last record returned before this batch
    records: pa.Table  # feed_records rows (RECORDS_SCHEMA), spool order
    echoes: pa.Table | None  # their echoes (ECHOES_SCHEMA), record by record; None when not decoded
    scans: pa.Table  # ECHO_SCANS_SCHEMA rows of scans completed by these records
    gap: Gap | None = None  # a listener restart just before these records
    expired: dict[str, Any] | None = None  # segments removed by retention before they were read
    duplicates: int = 0
    _positions: list[Position] = field(default_factory=list)

    @property
    def last(self) -> Position | None:
        return self._positions[-1] if self._positions else None

    @property
    def positions(self) -> list[Position]:
        return self._positions

    def __bool__(self) -> bool:
        return bool(self._positions) or self.gap is not None or self.expired is not None


class ScanAssembler:
    """Per (station, channel), the records of the scan in progress; emits scans when the next one starts."""

    def __init__(self, max_open_scan: int = 20_000):
        self.max_open_scan = max_open_scan
        self._open: dict[tuple[str, int], list[pa.Table]] = {}
        self._open_rows: dict[tuple[str, int], int] = {}

    def add(self, records: pa.Table) -> pa.Table:
        """Feed records (spool order); returns the scans they complete (``scan_table`` rows, partition = hour)."""
        if records.num_rows == 0:
            return ECHO_SCANS_SCHEMA.empty_table()
        recs = records.select(SCAN_INPUT_COLUMNS)
        stations = recs.column("station").to_pylist()
        channels = recs.column("channel").to_pylist()
        starts = np.abs(recs.column("scan_flag").to_numpy()) == 1
        by_key: dict[tuple[str, int], list[int]] = {}
        for i, key in enumerate(zip(stations, channels, strict=True)):
            by_key.setdefault(key, []).append(i)
        own_parts: list[pa.Table] = []
        own_idx: list[int] = []
        follow_idx: list[int] = []
        for key, idx in by_key.items():
            started = [i for i in idx if starts[i]]
            if not started:
                if key in self._open:
                    self._keep(key, recs.take(_ix(idx)))
                continue
            last = started[-1]
            own_parts.extend(self._open.pop(key, []))
            self._open_rows.pop(key, None)
            own_idx.extend(i for i in idx if i < last)
            follow_idx.append(last)
            self._open[key] = []
            self._open_rows[key] = 0
            self._keep(key, recs.take(_ix([i for i in idx if i >= last])))
        if not follow_idx:
            return ECHO_SCANS_SCHEMA.empty_table()
        own = pa.concat_tables([*own_parts, recs.take(_ix(own_idx))])
        scans = scan_table(own, recs.take(_ix(follow_idx)), "")
        if scans.num_rows == 0:
            return scans
        hours = [hour_key(t) for t in scans.column("scan_start").cast(pa.int64()).to_pylist()]
        return scans.set_column(scans.schema.get_field_index("partition"), "partition", pa.array(hours))

    def _keep(self, key: tuple[str, int], rows: pa.Table) -> None:
        n = self._open_rows.get(key, 0) + rows.num_rows
        if n > self.max_open_scan:  # no scan start for too long: forget the scan rather than grow
            self._open.pop(key, None)
            self._open_rows.pop(key, None)
            return
        self._open.setdefault(key, []).append(rows)
        self._open_rows[key] = n


def _ix(indices: list[int]) -> pa.Array:
    return pa.array(indices, pa.int64())  # typed: an empty Python list would be a null array


class SpoolTailer:
    """Follow a spool read-only from a position (exclusive) or from its current end.

    Parameters
    ----------
    root
        The spool folder the listener writes.
    after
        Return records after this position; ``None`` with ``from_end`` False means from the first record.
    from_end
        Start after the last record spooled now (what a live hub wants).
    warm
        Read the start position's segment from its beginning first (without returning those records) so
        that the scan in progress at the start position is known and announced when it completes.
    max_records, max_bytes
        Bounds of one batch.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        after: Position | None = None,
        from_end: bool = False,
        warm: bool = True,
        max_records: int = 5000,
        max_bytes: int = 16 << 20,
        dedup_window: int = 1 << 17,
        max_open_scan: int = 20_000,
    ):
        self.spool = Spool(root)
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.scans = ScanAssembler(max_open_scan)
        self._ids: collections.deque[bytes] = collections.deque()
        self._id_set: set[bytes] = set()
        self.dedup_window = dedup_window
        self._seg: int | None = None  # segment being read
        self._pos = 0  # next byte to read in it
        self._session: str | None = None  # session of the segment being read
        self._emit_after: Position | None = after
        self.last: Position | None = after
        self._pending_expired: dict[str, Any] | None = None
        self._carry_gap: Gap | None = None
        self.stop_at: Position | None = None  # never read past this position (a bounded replay)
        self.with_echoes = True  # per-gate arrays available in batches (a hub turns it off when nobody asks)
        if from_end:
            end = self._end_position()
            self._emit_after = self.last = end
            after = end
        if after is not None:
            segs = self.spool.segments()
            if after[0] in segs:
                self._seg = after[0]
                self._pos = SEG_HEADER.size if warm else max(after[1] + 1, SEG_HEADER.size)
                if not warm:
                    self._skip_to(after)
            elif segs and after[0] < segs[0]:
                self._pending_expired = {"requested": event_id(after), "earliest_segment": segs[0]}
            elif segs and after[0] > segs[-1]:
                self._seg, self._pos = after[0], SEG_HEADER.size  # a segment not created yet
            else:  # a removed segment between existing ones: continue with the next one
                later = [s for s in segs if s > after[0]]
                if later:
                    self._pending_expired = {"requested": event_id(after), "earliest_segment": later[0]}
        if warm and self._seg is not None and self._emit_after is not None:
            self._warm()

    # -- positions ------------------------------------------------------------------------------------
    def _end_position(self) -> Position | None:
        segs = self.spool.segments()
        for seq in reversed(segs):
            last = None
            for fr in self._frames_from(seq, SEG_HEADER.size):
                last = (fr.segment, fr.offset)
            if last is not None:
                return last
        return None

    def _skip_to(self, after: Position) -> None:
        # Without warming, find the byte just past the frame at ``after`` (frames are read, not trusted).
        self._pos = SEG_HEADER.size
        for fr in self._frames_from(after[0], SEG_HEADER.size):
            if fr.offset > after[1]:
                break
            self._pos = fr.end

    def _frames_from(self, seq: int, start: int, limit: int = -1) -> Iterator[RecordFrame]:
        """Complete frames from byte ``start``, parsed lazily (a caller that stops early parses no more)."""
        try:
            with open(self.spool.segment_path(seq), "rb") as fh:
                fh.seek(start)
                data = fh.read(limit)
        except FileNotFoundError:
            return iter(())
        return _parse_records(seq, data, start, None)

    def _segment_session(self, seq: int) -> str | None:
        try:
            with open(self.spool.segment_path(seq), "rb") as fh:
                head = fh.read(SEG_HEADER.size)
        except FileNotFoundError:
            return None
        if len(head) < SEG_HEADER.size:
            return None
        magic, _v, _kind, _created, session = SEG_HEADER.unpack(head)
        return session.hex() if magic == SEG_MAGIC else None

    def _sealed_end(self, seq: int) -> int | None:
        """Valid end of a sealed segment (its index sidecar), None while the listener may still append."""
        if not self.spool.index_path(seq).is_file():
            return None
        return self.spool.index(seq).valid_end

    # -- reading --------------------------------------------------------------------------------------
    def _warm(self) -> None:
        while True:
            frames, _gap = self._read_frames(stop_at=self._emit_after)
            if not frames:
                return
            kept = self._dedup(frames)[0]
            if kept:
                records, _ = decode_frames(kept, "", with_echoes=False)
                self.scans.add(records)
            if (frames[-1].segment, frames[-1].offset) >= self._emit_after:
                return

    def _dedup(self, frames: list[RecordFrame]) -> tuple[list[RecordFrame], int]:
        out, dropped = [], 0
        for fr in frames:
            rid = fr.record_id
            if rid in self._id_set:
                dropped += 1
                continue
            self._id_set.add(rid)
            self._ids.append(rid)
            if len(self._ids) > self.dedup_window:
                self._id_set.discard(self._ids.popleft())
            out.append(fr)
        return out, dropped

    def _read_frames(self, stop_at: Position | None = None) -> tuple[list[RecordFrame], Gap | None]:
        """Up to ``max_records`` complete frames from the cursor; stops at a session change (returns the gap)."""
        out: list[RecordFrame] = []
        budget = self.max_bytes
        if self._seg is None:
            segs = self.spool.segments()
            if not segs:
                return out, None
            self._seg, self._pos = segs[0], SEG_HEADER.size
        while len(out) < self.max_records and budget > 0:
            seq = self._seg
            if self._session is None:
                self._session = self._segment_session(seq)
            frames = self._frames_from(seq, self._pos, budget)
            got = False
            for fr in frames:
                got = True
                if stop_at is not None and (fr.segment, fr.offset) > stop_at:
                    return out, None
                out.append(fr)
                self._pos = fr.end
                budget -= fr.end - fr.offset
                if len(out) >= self.max_records:
                    return out, None
            if got and budget <= 0:
                return out, None
            sealed_end = self._sealed_end(seq)
            exists = self.spool.segment_path(seq).exists()
            if exists and (sealed_end is None or self._pos < sealed_end):
                return out, None  # the listener is still writing this segment (or a frame is half-written)
            later = [s for s in self.spool.segments() if s > seq]
            if not later:
                return out, None
            nxt = later[0]
            if not exists and self._pending_expired is None:
                self._pending_expired = {"requested": event_id((seq, self._pos)), "earliest_segment": nxt}
            session = self._segment_session(nxt)
            self._seg, self._pos = nxt, SEG_HEADER.size
            previous = self._session
            self._session = session
            if previous is not None and session is not None and session != previous:
                gap = self._gap(session, previous, out[-1] if out else None)
                return out, gap
        return out, None

    def _gap(self, session: str, previous: str, last_frame: RecordFrame | None) -> Gap:
        entry = next((s for s in reversed(self.spool.sessions()) if s.get("session") == session), {})
        at = (last_frame.segment, last_frame.offset) if last_frame else self.last
        return Gap(
            session=session,
            previous_session=entry.get("previous_session") or previous,
            previous_alive_ns=entry.get("previous_alive_ns"),
            started_ns=entry.get("started_ns"),
            at=event_id(at) if at else "",
        )

    def poll(self) -> TailBatch:
        """The next batch of new records (possibly empty); never blocks on the listener."""
        batch_gap, self._carry_gap = self._carry_gap, None
        frames, gap = self._read_frames(stop_at=self.stop_at)
        if batch_gap is None and not frames and gap is not None:
            batch_gap, gap = gap, None
        if gap is not None:
            # Records before the restart go now; the gap opens the next batch.
            self._carry_gap = gap
        kept, dropped = self._dedup(frames)
        records, echoes = decode_frames(kept, "", with_echoes=self.with_echoes)
        scans = self.scans.add(records)
        expired, self._pending_expired = self._pending_expired, None
        batch = TailBatch(
            after=self.last,
            records=records,
            echoes=echoes,
            scans=scans,
            gap=batch_gap,
            expired=expired,
            duplicates=dropped,
            _positions=[(f.segment, f.offset) for f in kept],
        )
        if frames:
            self.last = (frames[-1].segment, frames[-1].offset)
        return batch

    @property
    def position(self) -> Position | None:
        """Position of the last record read (returned or dropped as a duplicate)."""
        return self.last


# -- listener liveness ----------------------------------------------------------------------------------
def listener_state(spool: Spool, stale_after_s: float = 3.0, now_ns: int | None = None) -> dict[str, Any]:
    """``{"state": "up"|"down"|"unknown", "last_alive_ns", "session"}`` from the heartbeat file's age."""
    hb = spool.heartbeat()
    if not hb or "updated_ns" not in hb:
        return {"state": "unknown", "last_alive_ns": None, "session": None}
    now_ns = time.time_ns() if now_ns is None else now_ns
    age = (now_ns - int(hb["updated_ns"])) / 1e9
    return {
        "state": "up" if age <= stale_after_s else "down",
        "last_alive_ns": int(hb["updated_ns"]),
        "session": hb.get("session"),
        "age_seconds": round(age, 3),
    }


# -- summaries ------------------------------------------------------------------------------------------
def _json_numbers(values: np.ndarray, digits: int = 2) -> list[float | None]:
    """Rounded values for JSON; a value that is not a finite number (a record may carry NaN gates) is None."""
    rounded = np.round(values.astype(np.float64), digits)
    out = rounded.tolist()
    bad = np.flatnonzero(~np.isfinite(rounded))
    for i in bad.tolist():
        out[i] = None
    return out


def _finite(value: float | None) -> float | None:
    """``value`` for JSON, which has no NaN or infinity: None when it is not a finite number."""
    return value if value is not None and math.isfinite(value) else None


def _mean(total: float, n: int) -> float | None:
    """A record's mean for JSON: None without echoes or when it is not a finite number."""
    return _finite(round(float(total) / n, 3)) if n else None


def record_summaries(
    batch: TailBatch,
    stations: frozenset[str] | None = None,
    arrays: bool = False,
    after: Position | None = None,
) -> list[dict[str, Any]]:
    """JSON-ready record summaries of a batch, optionally only some stations, with per-gate arrays."""
    recs = batch.records
    n = recs.num_rows
    if n == 0:
        return []
    cols = {
        c: recs.column(c).to_pylist()
        for c in ("record_id", "station", "channel", "beam", "scan_flag", "echoes", "frequency")
    }
    times = recs.column("record_time").cast(pa.int64()).to_numpy()
    arrivals = recs.column("arrival_time").cast(pa.int64()).to_numpy()
    sums = {c: recs.column(c).to_numpy() for c in ("sum_velocity", "sum_power")}
    offsets = None
    if arrays and batch.echoes is not None:  # None: decoded before an arrays client joined (summaries only)
        counts = recs.column("echoes").to_numpy().astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        gates = batch.echoes.column("range_gate").to_numpy().tolist()
        vel = _json_numbers(batch.echoes.column("velocity").to_numpy())
        pwr = _json_numbers(batch.echoes.column("power").to_numpy())
    out = []
    positions = batch.positions
    for i in range(n):
        st = cols["station"][i]
        if stations is not None and st not in stations:
            continue
        if after is not None and positions[i] <= after:
            continue
        ne = cols["echoes"][i]
        d = {
            "id": event_id(positions[i]),
            "record_id": cols["record_id"][i],
            "station": st,
            "channel": cols["channel"][i],
            "beam": cols["beam"][i],
            "scan_flag": cols["scan_flag"][i],
            "record_time_us": int(times[i]),
            "arrival_time_us": int(arrivals[i]),
            "echoes": ne,
            "mean_velocity": _mean(sums["sum_velocity"][i], ne),
            "mean_power": _mean(sums["sum_power"][i], ne),
            "frequency": cols["frequency"][i],
        }
        if offsets is not None:
            a, b = int(offsets[i]), int(offsets[i + 1])
            d["range_gate"] = gates[a:b]
            d["velocity"] = vel[a:b]
            d["power"] = pwr[a:b]
        out.append(d)
    return out


_RECORD_JSON = (
    '{"id":"%s","record_id":"%s","station":%s,"channel":%d,"beam":%d,"scan_flag":%d,"record_time_us":%d,'
    '"arrival_time_us":%d,"echoes":%d,"mean_velocity":%s,"mean_power":%s,"frequency":%d}'
)


def record_json(batch: TailBatch) -> list[str]:
    """Each record's summary as JSON text: ``json.dumps`` of :func:`record_summaries` without arrays.

    The stream's common case, made with one format string per record instead of a dict and an encoder
    pass (the hub renders thousands a second). A mean that is not a finite number is ``null``.
    """
    recs = batch.records
    n = recs.num_rows
    if n == 0:
        return []
    station_text = {st: json.dumps(st) for st in set(recs.column("station").to_pylist())}
    stations = [station_text[st] for st in recs.column("station").to_pylist()]
    ne = recs.column("echoes").to_pylist()
    vel = _means(recs.column("sum_velocity").to_pylist(), ne)
    pwr = _means(recs.column("sum_power").to_pylist(), ne)
    cols = zip(
        [event_id(p) for p in batch.positions],
        recs.column("record_id").to_pylist(),
        stations,
        recs.column("channel").to_pylist(),
        recs.column("beam").to_pylist(),
        recs.column("scan_flag").to_pylist(),
        recs.column("record_time").cast(pa.int64()).to_pylist(),
        recs.column("arrival_time").cast(pa.int64()).to_pylist(),
        ne,
        vel,
        pwr,
        recs.column("frequency").to_pylist(),
        strict=True,
    )
    fmt = _RECORD_JSON
    return [fmt % row for row in cols]


def _means(sums: list[float], counts: list[int]) -> list[str]:
    means = (_mean(s, c) for s, c in zip(sums, counts, strict=True))
    return [repr(m) if m is not None else "null" for m in means]


def scan_summaries(batch: TailBatch, stations: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """JSON-ready completed scans (the ``echo_scans`` columns; times as ISO 8601 and in microseconds)."""
    if batch.scans.num_rows == 0:
        return []
    out = []
    for row in batch.scans.to_pylist():
        if stations is not None and row["station"] not in stations:
            continue
        out.append(
            {
                "station": row["station"],
                "channel": row["channel"],
                "scan_start": row["scan_start"].isoformat(),
                "scan_end": row["scan_end"].isoformat(),
                "scan_start_us": _us(row["scan_start"]),
                "scan_end_us": _us(row["scan_end"]),
                "records": row["records"],
                "echoes": row["echoes"],
                "mean_velocity": _finite(row["mean_velocity"]),
                "mean_power": _finite(row["mean_power"]),
                "mean_width": _finite(row["mean_width"]),
                "complete": row["complete"],
                "hour": row["partition"],
            }
        )
    return out


def _us(dt) -> int:
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


__all__ = [
    "Gap",
    "Position",
    "ScanAssembler",
    "SpoolTailer",
    "TailBatch",
    "event_id",
    "listener_state",
    "parse_event_id",
    "record_json",
    "record_summaries",
    "scan_summaries",
]
