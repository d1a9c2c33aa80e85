"""Spooled records -> catalog tables of one hour partition: records, echoes, scans, gaps and rejects.

Tables (all times TIMESTAMP WITH TIME ZONE, UTC; ``partition`` is the Dagster hourly key):

- ``feed_records``: one row per record (also those with no echo): ids, times, beam, scan flag, per-record
  echo count and sums, where it sits in the spool. This is the "one catalog row per record".
- ``echoes``: one row per echo (range gate with a fit) of every record.
- ``echo_scans``: one row per scan of a station and channel; averages over every echo of the scan.
- ``feed_gaps``: per station, intervals between consecutive records longer than the station's scan cadence.
- ``feed_rejects``: every rejected message received in the hour (arrival time), with reason, size, sha256.

How an hour is built (:func:`materialize_hour`)
-----------------------------------------------
Records belong to the hour of their *record* time (not arrival). While the hour is open (``now`` before the
hour's end plus ``grace``), each spool segment holding records of the hour gets its own chunk file
(``<hour>.s<segment>``) which is rebuilt only when the segment grew: the current hour costs the new data,
not the whole hour. Once the hour is closed, the next run rebuilds it from every spool record of the hour in
one file (delete-and-replace) and deletes the chunks. ``echo_scans``, ``feed_gaps`` and ``feed_rejects`` are
small and always rebuilt whole.

Invariants
----------
- Exactly once: a record id (BLAKE2b of station + DMAP bytes) appears at most once per hour across all
  files of ``feed_records`` and ``echoes``, however often a segment is read or a run repeated. A later
  spool copy of an already-landed record (same id) is dropped and counted as a duplicate.
- A scan of (station, channel) starts at a record whose scan flag is +-1 (RST: -1 marks a scan swept in
  reverse beam order) and holds every following record up to, not including, the next such record; records
  are ordered by record time. The first beam of a new scan is therefore never in the previous scan. A scan
  belongs to the hour of its start; its tail may come from the next hour. Records of an hour before the
  first scan start of that hour belong to the previous hour's last scan.
- ``scan_end`` is the record time of the scan's last record. ``complete`` is true once the record starting
  the next scan has been seen.
- A gap is recorded in the hour of the record that ends it; its start may be the station's last record
  of an earlier hour. ``cause`` is ``listener_down`` when it overlaps a time the listener was not running.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from radar_assets.lib.catalog import Catalog, partition_file
from radar_assets.lib.feed.dmap_records import echo_arrays, echoes_from_record, parse_many, unpack_many
from radar_assets.lib.feed.spool import HOUR_US, RecordFrame, RejectFrame, Spool, hour_key, hour_start_us

TS = pa.timestamp("us", tz="UTC")
DEFAULT_CADENCE_S = 60.0  # the standard SuperDARN scan, used until an hour shows two scan starts
GRACE_S = 300.0  # an hour is closed (final rebuild) this long after its end
SCAN_LOOKAHEAD_US = 600 * 1_000_000  # how far into the next hour a scan's tail is looked for

RECORDS_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("station", pa.string()),
        ("stid", pa.int16()),
        ("channel", pa.int16()),
        ("record_time", TS),
        ("arrival_time", TS),
        ("beam", pa.int16()),
        ("scan_flag", pa.int16()),
        ("echoes", pa.int32()),
        ("sum_velocity", pa.float64()),
        ("sum_power", pa.float64()),
        ("sum_width", pa.float64()),
        ("frequency", pa.int32()),
        ("noise", pa.float32()),
        ("dmap_bytes", pa.int32()),
        ("endpoint", pa.string()),
        ("spool_segment", pa.int64()),
        ("spool_offset", pa.int64()),
        ("partition", pa.string()),
    ]
)
ECHOES_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("station", pa.string()),
        ("channel", pa.int16()),
        ("record_time", TS),
        ("beam", pa.int16()),
        ("scan_flag", pa.int16()),
        ("range_gate", pa.int16()),
        ("velocity", pa.float32()),
        ("power", pa.float32()),
        ("spectral_width", pa.float32()),
        ("ground_scatter", pa.bool_()),
        ("elevation", pa.float32()),
        ("frequency", pa.int32()),
        ("noise", pa.float32()),
        ("partition", pa.string()),
    ]
)
ECHO_SCANS_SCHEMA = pa.schema(
    [
        ("station", pa.string()),
        ("channel", pa.int16()),
        ("scan_start", TS),
        ("scan_end", TS),
        ("records", pa.int32()),
        ("echoes", pa.int32()),
        ("mean_velocity", pa.float64()),
        ("mean_power", pa.float64()),
        ("mean_width", pa.float64()),
        ("complete", pa.bool_()),
        ("partition", pa.string()),
    ]
)
GAPS_SCHEMA = pa.schema(
    [
        ("station", pa.string()),
        ("gap_start", TS),
        ("gap_end", TS),
        ("seconds", pa.float64()),
        ("cadence_seconds", pa.float64()),
        ("cause", pa.string()),
        ("partition", pa.string()),
    ]
)
FEED_REJECTS_SCHEMA = pa.schema(
    [
        ("received_at", TS),
        ("endpoint", pa.string()),
        ("station", pa.string()),
        ("reason", pa.string()),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
        ("frames", pa.int16()),
        ("spool_segment", pa.int64()),
        ("spool_offset", pa.int64()),
        ("partition", pa.string()),
    ]
)


# -- records and echoes -----------------------------------------------------------------------------------
def dedup_frames(
    frames: Iterable[RecordFrame], seen: set[bytes] | None = None, *, extend_seen: bool = False
) -> tuple[list[RecordFrame], int]:
    """Keep the first spool copy of each record id (and none already in ``seen``); count the dropped.

    ``seen`` is copied unless ``extend_seen``: then the kept ids are added to it, so a caller walking
    segment after segment carries one set instead of copying the hour's ids per segment.
    """
    seen = set() if seen is None else (seen if extend_seen else set(seen))
    out, dropped = [], 0
    for fr in frames:
        if fr.record_id in seen:
            dropped += 1
            continue
        seen.add(fr.record_id)
        out.append(fr)
    return out, dropped


def decode_frames(
    frames: Sequence[RecordFrame], partition: str, redecode: bool = False, with_echoes: bool = True
) -> tuple[pa.Table, pa.Table | None]:
    """``(feed_records, echoes)`` of spooled frames (already de-duplicated), in the given order.

    By default the echoes come from each frame's echo block (cut from the record by the listener); with
    ``redecode`` every compressed frame is decoded again with darn-dmap (same result, ~10x slower).
    ``with_echoes=False`` skips building the echoes table (None): the live stream's summaries need only
    the records table.
    """
    n = len(frames)
    if redecode:
        recs = parse_many([zlib.decompress(f.compressed) for f in frames])
        decoded = [echoes_from_record(r) for r in recs]
        per = [d[2] for d in decoded]
        counts = np.fromiter((len(e["range_gate"]) for e in per), np.int64, n)
        freq = np.fromiter((d[0] for d in decoded), np.int32, n)
        noise = np.fromiter((d[1] for d in decoded), np.float32, n)
        joined = {
            name: np.concatenate([e[name] for e in per]) if n else np.empty(0, arr.dtype)
            for name, arr in echo_arrays({}).items()
        }
    else:
        counts, freq, noise, joined = unpack_many([f.echo_block for f in frames])
    ids = pa.array([f.record_id.hex() for f in frames], pa.string())
    stations = pa.array([f.station for f in frames], pa.string())
    channel = np.fromiter((f.channel for f in frames), np.int16, n)
    rtime = np.fromiter((f.record_time_us for f in frames), np.int64, n)
    beam = np.fromiter((f.beam for f in frames), np.int16, n)
    scan = np.fromiter((f.scan_flag for f in frames), np.int16, n)

    def cat(name: str, dtype) -> np.ndarray:
        return joined[name].astype(dtype, copy=False)

    vel, pw, wd = cat("velocity", np.float32), cat("power", np.float32), cat("spectral_width", np.float32)
    sums = np.zeros((3, n))
    if n and counts.sum():
        owner = np.repeat(np.arange(n), counts)
        for k, arr in enumerate((vel, pw, wd)):
            sums[k] = np.bincount(owner, weights=arr.astype(np.float64), minlength=n)
    records = pa.table(
        {
            "record_id": ids,
            "station": stations,
            "stid": pa.array(np.fromiter((f.stid for f in frames), np.int16, n)),
            "channel": pa.array(channel),
            "record_time": pa.array(rtime, TS),
            "arrival_time": pa.array(np.fromiter((f.arrival_ns // 1000 for f in frames), np.int64, n), TS),
            "beam": pa.array(beam),
            "scan_flag": pa.array(scan),
            "echoes": pa.array(counts.astype(np.int32)),
            "sum_velocity": pa.array(sums[0]),
            "sum_power": pa.array(sums[1]),
            "sum_width": pa.array(sums[2]),
            "frequency": pa.array(freq),
            "noise": pa.array(noise),
            "dmap_bytes": pa.array(np.fromiter((f.dmap_bytes for f in frames), np.int32, n)),
            "endpoint": pa.array([f.endpoint for f in frames], pa.string()),
            "spool_segment": pa.array(np.fromiter((f.segment for f in frames), np.int64, n)),
            "spool_offset": pa.array(np.fromiter((f.offset for f in frames), np.int64, n)),
            "partition": pa.array([partition] * n, pa.string()),
        },
        schema=RECORDS_SCHEMA,
    )
    if not with_echoes:
        return records, None
    rep = pa.array(np.repeat(np.arange(n), counts))
    elev = cat("elevation", np.float32)
    echoes = pa.table(
        {
            "record_id": pc.take(ids, rep),
            "station": pc.take(stations, rep),
            "channel": pa.array(np.repeat(channel, counts)),
            "record_time": pa.array(np.repeat(rtime, counts), TS),
            "beam": pa.array(np.repeat(beam, counts)),
            "scan_flag": pa.array(np.repeat(scan, counts)),
            "range_gate": pa.array(cat("range_gate", np.int16)),
            "velocity": pa.array(vel),
            "power": pa.array(pw),
            "spectral_width": pa.array(wd),
            "ground_scatter": pa.array(cat("ground_scatter", bool)),
            # NaN marks "no elevation in this record" (no XCF): stored as null, not as a number.
            "elevation": pa.array(elev, mask=np.isnan(elev)),
            "frequency": pa.array(np.repeat(freq, counts)),
            "noise": pa.array(np.repeat(noise, counts)),
            "partition": pa.array([partition] * int(counts.sum()), pa.string()),
        },
        schema=ECHOES_SCHEMA,
    )
    return records, echoes


# -- scans ------------------------------------------------------------------------------------------------
#: The ``feed_records`` columns that scan averages are computed from (:func:`scan_table` and the live tailer).
SCAN_INPUT_COLUMNS = [
    "station",
    "channel",
    "record_time",
    "scan_flag",
    "echoes",
    "sum_velocity",
    "sum_power",
    "sum_width",
]


def scan_table(records: pa.Table, following: pa.Table | None, partition: str) -> pa.Table:
    """Scans starting in ``records`` (one hour's ``feed_records``), closed with ``following`` (next hour's).

    See the module invariants. ``following`` only contributes the tails of scans open at the hour's end and
    tells whether they are complete; its own scans are not returned.
    """
    if records.num_rows == 0:
        return ECHO_SCANS_SCHEMA.empty_table()
    cols = SCAN_INPUT_COLUMNS
    own = records.select(cols).append_column("own", pa.array(np.ones(records.num_rows, bool)))
    if following is not None and following.num_rows:
        nxt = following.select(cols).append_column("own", pa.array(np.zeros(following.num_rows, bool)))
        own = pa.concat_tables([own, nxt])
    own = own.sort_by([("station", "ascending"), ("channel", "ascending"), ("record_time", "ascending")])
    d = {c: own.column(c).to_numpy(zero_copy_only=False) for c in own.column_names}
    station, channel = d["station"], d["channel"]
    n = len(station)
    key_change = np.ones(n, bool)
    key_change[1:] = (station[1:] != station[:-1]) | (channel[1:] != channel[:-1])
    starts = (np.abs(d["scan_flag"]) == 1).astype(np.int64)
    # Scan number within (station, channel): increments at each scan start; 0 = before the first start.
    # Vectorised (no Python loop per scan or per key): an hour holds thousands of scans and every run of
    # the open hour recomputes them.
    seen = np.cumsum(starts)
    group_first = np.flatnonzero(key_change)
    before_group = seen[group_first] - starts[group_first]
    scan_no = seen - np.repeat(before_group, np.diff(np.append(group_first, n)))
    # Each (group, scan_no > 0) run is one scan; keep it only if it starts with one of this hour's records.
    boundary = key_change.copy()
    boundary[1:] |= scan_no[1:] != scan_no[:-1]
    idx = np.flatnonzero(boundary)
    ends = np.append(idx[1:], n)
    keep = (scan_no[idx] > 0) & d["own"][idx]
    a, b = idx[keep], ends[keep]

    def per_scan(values: np.ndarray) -> np.ndarray:
        # Sums over [a, b) of each kept scan, added in record-time order: the same numbers whatever else
        # the table holds (the live stream's ScanAssembler gives one scan at a time).
        return np.add.reduceat(values, idx)[keep] if n else values[:0]

    ne = per_scan(d["echoes"].astype(np.int64))
    none = ne == 0
    safe = np.where(none, 1, ne)

    def mean(src: str) -> pa.Array:
        return pa.array(per_scan(d[src].astype(np.float64)) / safe, pa.float64(), mask=none)

    # Complete once the next scan start of the same station and channel is known.
    complete = ~np.append(key_change, True)[b]
    rtime = d["record_time"].astype("datetime64[us]").astype(np.int64)
    m = len(a)
    return pa.table(
        {
            "station": pa.array(station[a], pa.string()),
            "channel": pa.array(channel[a].astype(np.int16)),
            "scan_start": pa.array(rtime[a], pa.int64()).cast(TS),
            "scan_end": pa.array(rtime[b - 1], pa.int64()).cast(TS),
            "records": pa.array((b - a).astype(np.int32)),
            "echoes": pa.array(ne.astype(np.int32)),
            "mean_velocity": mean("sum_velocity"),
            "mean_power": mean("sum_power"),
            "mean_width": mean("sum_width"),
            "complete": pa.array(complete, pa.bool_()),
            "partition": pa.array([partition] * m, pa.string()),
        },
        schema=ECHO_SCANS_SCHEMA,
    )


def _runs(group_id: np.ndarray) -> Iterable[tuple[int, int]]:
    if len(group_id) == 0:
        return []
    change = np.flatnonzero(np.diff(group_id)) + 1
    bounds = np.concatenate([[0], change, [len(group_id)]])
    return zip(bounds[:-1], bounds[1:], strict=True)


# -- gaps -------------------------------------------------------------------------------------------------
def station_cadence_s(records: pa.Table) -> dict[str, float]:
    """Median seconds between consecutive scan starts of each station (any channel); default when < 2."""
    out: dict[str, float] = {}
    if records.num_rows == 0:
        return out
    t = records.select(["station", "channel", "record_time", "scan_flag"]).filter(
        pc.equal(pc.abs(records.column("scan_flag")), 1)
    )
    t = t.sort_by([("station", "ascending"), ("channel", "ascending"), ("record_time", "ascending")])
    st = t.column("station").to_numpy(zero_copy_only=False)
    ch = t.column("channel").to_numpy()
    tm = t.column("record_time").cast(pa.int64()).to_numpy()
    diffs: dict[str, list[np.ndarray]] = {}
    for a, b in _runs(np.cumsum(np.r_[True, (st[1:] != st[:-1]) | (ch[1:] != ch[:-1])])):
        if b - a >= 2:
            diffs.setdefault(st[a], []).append(np.diff(tm[a:b]))
    for s in set(st):
        ds = diffs.get(s)
        out[s] = float(np.median(np.concatenate(ds))) / 1e6 if ds else DEFAULT_CADENCE_S
    return out


def gap_table(
    records: pa.Table,
    partition: str,
    previous: dict[str, int] | None = None,
    cadence_s: dict[str, float] | None = None,
    downtimes_us: Sequence[tuple[int, int]] = (),
) -> pa.Table:
    """Gaps in record time per station longer than its scan cadence, ending in this hour's ``records``.

    ``previous`` gives each station's last record time (us) before the hour, so a gap spanning the hour
    boundary is found; ``downtimes_us`` are intervals without a running listener (cause ``listener_down``).
    """
    previous = previous or {}
    cadence_s = cadence_s if cadence_s is not None else station_cadence_s(records)
    out: dict[str, list] = {k: [] for k in GAPS_SCHEMA.names}
    if records.num_rows:
        # Arrow sorts (station, time) far faster than numpy's lexsort of Python strings; the times of each
        # station are then sorted, so their distinct values need no np.unique (which hashes, then sorts).
        t = records.select(["station", "record_time"]).sort_by(
            [("station", "ascending"), ("record_time", "ascending")]
        )
        st = t.column("station").to_numpy(zero_copy_only=False)
        tm = t.column("record_time").cast(pa.int64()).to_numpy()
        for a, b in _runs(np.cumsum(np.r_[True, st[1:] != st[:-1]])):
            s = st[a]
            times = tm[a:b]
            times = times[np.r_[True, times[1:] != times[:-1]]]
            if s in previous and previous[s] < times[0]:
                times = np.r_[previous[s], times]
            cad = cadence_s.get(s, DEFAULT_CADENCE_S)
            dt = np.diff(times)
            for i in np.flatnonzero(dt > cad * 1e6):
                g0, g1 = int(times[i]), int(times[i + 1])
                down = any(d0 < g1 and d1 > g0 for d0, d1 in downtimes_us)
                out["station"].append(s)
                out["gap_start"].append(g0)
                out["gap_end"].append(g1)
                out["seconds"].append((g1 - g0) / 1e6)
                out["cadence_seconds"].append(cad)
                out["cause"].append("listener_down" if down else "source")
                out["partition"].append(partition)
    return pa.table(
        {**out, "gap_start": pa.array(out["gap_start"], pa.int64()).cast(TS),
         "gap_end": pa.array(out["gap_end"], pa.int64()).cast(TS)},
        schema=GAPS_SCHEMA,
    )  # fmt: skip


# -- rejects ----------------------------------------------------------------------------------------------
def rejects_table(rejects: Sequence[RejectFrame], partition: str) -> pa.Table:
    return pa.table(
        {
            "received_at": pa.array([r.arrival_ns // 1000 for r in rejects], pa.int64()).cast(TS),
            "endpoint": [r.endpoint for r in rejects],
            "station": [r.station or None for r in rejects],
            "reason": [r.reason for r in rejects],
            "bytes": pa.array([r.total_bytes for r in rejects], pa.int64()),
            "sha256": [r.sha256.hex() for r in rejects],
            "frames": pa.array([len(r.frame_sizes) for r in rejects], pa.int16()),
            "spool_segment": pa.array([r.segment for r in rejects], pa.int64()),
            "spool_offset": pa.array([r.offset for r in rejects], pa.int64()),
            "partition": [partition] * len(rejects),
        },
        schema=FEED_REJECTS_SCHEMA,
    )


# -- one hour partition -----------------------------------------------------------------------------------
@dataclass
class HourResult:
    """What :func:`materialize_hour` did; every count refers to the whole hour after the run."""

    partition: str
    final: bool
    records: int = 0
    echoes: int = 0
    scans: int = 0
    complete_scans: int = 0
    gaps: int = 0
    gap_seconds: float = 0.0
    rejects: int = 0
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    new_records: int = 0
    duplicates_dropped: int = 0
    segments: list[int] = field(default_factory=list)
    files_written: list[str] = field(default_factory=list)
    files_deleted: list[str] = field(default_factory=list)
    stations: dict[str, int] = field(default_factory=dict)
    gap_rows: list[dict[str, Any]] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("gap_rows",)}
        return d


def _state_key(catalog: Catalog, partition: str) -> str:
    return f"feed_state/live_echoes/{partition_file(partition)}.json"


def _chunk_name(partition: str, seq: int) -> str:
    return f"{partition}.s{seq:012d}"


def _partition_files(catalog: Catalog, table: str, partition: str) -> dict[str, str]:
    """Store keys of ``table``'s files for ``partition``: ``{"": full file, "<seq>": chunk}``."""
    base = partition_file(partition)
    prefix = f"{catalog.prefix}/{table}/{base}"
    out = {}
    for key in catalog.store.list_keys(prefix):
        name = key.rsplit("/", 1)[1][: -len(".parquet")]
        if name == base:
            out[""] = key
        elif name.startswith(base + ".s") and name[len(base) + 2 :].isdigit():
            out[name[len(base) + 2 :].lstrip("0") or "0"] = key
    return out


def _read(catalog: Catalog, key: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(io.BytesIO(catalog.store.get_bytes(key)), columns=columns)


#: The ``feed_records`` columns a run needs of the records already landed in the hour (scans, gaps, counts
#: and de-duplication); reading only these keeps a run of the open hour from decoding the whole hour's rows.
HOUR_COLUMNS = ["record_id", *SCAN_INPUT_COLUMNS]


def _fresh_frames(
    per_segment: list[list[RecordFrame]], landed: list[pa.Table]
) -> tuple[list[list[RecordFrame]], int]:
    """Each segment's frames without ids already landed (``landed``' ``record_id``) or seen in an earlier
    segment or earlier in the same one (spool order: the first copy wins). Returns them and the count dropped.

    The landed ids are matched in one vectorised ``is_in`` (hex strings, as stored), not a Python set of
    the whole hour rebuilt every run: a run costs the new records, not the hour.
    """
    seen: set[bytes] = set()
    firsts, dropped = [], 0
    for frames in per_segment:
        keep, n = dedup_frames(frames, seen, extend_seen=True)
        firsts.append(keep)
        dropped += n
    landed_ids = [t.column("record_id") for t in landed if t.num_rows]
    if not landed_ids or not seen:
        return firsts, dropped
    # One is_in over every segment's frames: it hashes the value set on each call.
    value_set = pa.chunked_array(landed_ids, pa.string()).combine_chunks()
    hexes = pa.array([f.record_id.hex() for frames in firsts for f in frames], pa.string())
    known = pc.is_in(hexes, value_set=value_set).to_numpy(zero_copy_only=False)
    if not known.any():
        return firsts, dropped
    dropped += int(known.sum())
    out, i = [], 0
    for frames in firsts:
        mask = known[i : i + len(frames)]
        i += len(frames)
        out.append([f for f, k in zip(frames, mask, strict=True) if not k])
    return out, dropped


def _following_records(spool: Spool, partition: str, open_keys: set[tuple[str, int]]) -> pa.Table | None:
    """Records of the next hour up to each open (station, channel)'s next scan start (inclusive)."""
    if not open_keys:
        return None
    nxt = hour_key(hour_start_us(partition) + HOUR_US)
    limit = hour_start_us(nxt) + SCAN_LOOKAHEAD_US
    wanted, remaining = [], set(open_keys)
    seen: set[bytes] = set()
    for fr in spool.records_in_hour(nxt):
        key = (fr.station, fr.channel)
        if key not in remaining or fr.record_time_us > limit or fr.record_id in seen:
            continue
        seen.add(fr.record_id)
        wanted.append(fr)
        if abs(fr.scan_flag) == 1:
            remaining.discard(key)
            if not remaining:
                break
    if not wanted:
        return None
    records, _ = decode_frames(wanted, nxt)
    # Keep, per key, only records up to and including its first scan start in record-time order.
    records = records.sort_by([("record_time", "ascending")])
    keep, closed = [], set()
    for st, ch, flag in zip(
        records.column("station").to_pylist(),
        records.column("channel").to_pylist(),
        records.column("scan_flag").to_pylist(),
        strict=True,
    ):
        k = (st, ch)
        keep.append(k not in closed)
        if abs(flag) == 1:
            closed.add(k)
    return records.filter(pa.array(keep))


def _previous_times(spool: Spool, before_us: int, stations: Iterable[str]) -> dict[str, int]:
    """Each station's last spooled record time before ``before_us`` (from the segment indexes)."""
    want = set(stations)
    out: dict[str, int] = {}
    before_hour = hour_key(before_us)
    for seq in spool.segments():
        for hk, h in spool.index(seq).hours.items():
            if hk >= before_hour:
                continue
            for s, (_n, _lo, hi) in h["stations"].items():
                if s in want and hi < before_us and hi > out.get(s, -1):
                    out[s] = hi
    return out


def materialize_hour(
    spool: Spool,
    catalog: Catalog,
    partition: str,
    now_us: int,
    *,
    final: bool | None = None,
    grace_s: float = GRACE_S,
) -> HourResult:
    """Build (incrementally) or rebuild (final) every feed table of hour ``partition`` from the spool.

    ``final`` defaults to "the hour ended more than ``grace_s`` ago". Re-running with an unchanged spool
    rewrites identical rows (and skips the record/echo files entirely).
    """
    lo = hour_start_us(partition)
    hi = lo + HOUR_US
    if final is None:
        final = now_us >= hi + grace_s * 1e6
    res = HourResult(partition=partition, final=final)
    seg_ends = {}
    for seq in spool.segments():
        h = spool.index(seq).hours.get(partition)
        if h:
            seg_ends[seq] = h["end_offset"]
    res.segments = sorted(seg_ends)
    state_key = _state_key(catalog, partition)
    state = json.loads(catalog.store.get_bytes(state_key)) if catalog.store.exists(state_key) else {}
    done = {int(k): v for k, v in state.get("segments", {}).items()}
    counts = {int(k): v for k, v in state.get("counts", {}).items()}  # rows of each chunk file
    files = {t: _partition_files(catalog, t, partition) for t in ("feed_records", "echoes")}

    # Segments removed by spool retention (lib/feed/retention.py) were landed and published: their rows
    # live only in the catalog now, so they count as read and are kept from the hour's full file.
    pruned = {q: e["hours"] for q, e in spool.pruned().items()}
    nxt_hour = hour_key(hi)
    pruned_here = {q: hs[partition] for q, hs in pruned.items() if partition in hs}
    stale = True
    if final:
        seg_ends_all = {**seg_ends, **pruned_here}
        stale = state.get("final") is not True or done != seg_ends_all or set(files["feed_records"]) != {""}
        if stale:
            frames, res.duplicates_dropped = dedup_frames(spool.records_in_hour(partition))
            records, echoes = decode_frames(frames, partition)
            if pruned_here and "" in files["feed_records"]:
                records, echoes = _with_pruned_rows(catalog, files, set(pruned_here), records, echoes)
            seg_ends = seg_ends_all
            res.new_records = records.num_rows - int(state.get("records", 0))
            for table, rows in (("feed_records", records), ("echoes", echoes)):
                res.files_written.append(catalog.write_partition(table, partition, rows))
                for name, key in files[table].items():
                    if name:  # chunks are replaced by the full file just written
                        catalog.store.delete(key)
                        res.files_deleted.append(key)
            state = {
                "final": True,
                "segments": {str(k): v for k, v in seg_ends.items()},
                "records": records.num_rows,
            }
        if stale:
            all_records = records.select(HOUR_COLUMNS)
        elif "" in files["feed_records"]:
            all_records = _read(catalog, files["feed_records"][""], HOUR_COLUMNS)
        else:
            all_records = RECORDS_SCHEMA.empty_table().select(HOUR_COLUMNS)
    else:
        # Chunks of segments that did not grow stay as they are; their ids seed the de-duplication.
        keep_tables, rebuild = [], []
        for seq, end in sorted(seg_ends.items()):
            key = files["feed_records"].get(str(seq))
            if key is not None and done.get(seq) == end:
                keep_tables.append(_read(catalog, key, HOUR_COLUMNS))
            else:
                rebuild.append(seq)
        full = files["feed_records"].get("")
        if full is not None:  # a previous final run (late data reopened the hour): keep its rows
            keep_tables.insert(0, _read(catalog, full, HOUR_COLUMNS))
        per_segment = []
        for seq in rebuild:
            h = spool.index(seq).hours[partition]
            per_segment.append(
                [
                    f
                    for f in spool.iter_records(seq, h["first_offset"], h["end_offset"])
                    if lo <= f.record_time_us < hi
                ]
            )
        per_segment, res.duplicates_dropped = _fresh_frames(per_segment, keep_tables)
        new_tables = []
        for seq, frames in zip(rebuild, per_segment, strict=True):
            records, echoes = decode_frames(frames, partition)
            res.new_records += records.num_rows - counts.get(seq, 0)
            counts[seq] = records.num_rows
            for table, rows in (("feed_records", records), ("echoes", echoes)):
                res.files_written.append(catalog.write_partition(table, _chunk_name(partition, seq), rows))
            new_tables.append(records.select(HOUR_COLUMNS))
            done[seq] = seg_ends[seq]
        state = {
            "final": False,
            "segments": {str(k): v for k, v in sorted(done.items())},
            "counts": {str(k): v for k, v in sorted(counts.items())},
            "records": int(sum(t.num_rows for t in (*keep_tables, *new_tables))),
        }
        all_records = (
            pa.concat_tables([*keep_tables, *new_tables])
            if keep_tables or new_tables
            else RECORDS_SCHEMA.empty_table().select(HOUR_COLUMNS)
        )
    catalog.store.put_bytes(state_key, json.dumps(state, sort_keys=True).encode())

    small = ("echo_scans", "feed_gaps", "feed_rejects")
    if not stale and any(partition in hs or nxt_hour in hs for hs in pruned.values()):
        # Unchanged, and the spool no longer holds all it was built from: keep what was landed.
        scans, gaps, rejects = (
            catalog.read_partition(t, partition) or schema.empty_table()
            for t, schema in zip(small, (ECHO_SCANS_SCHEMA, GAPS_SCHEMA, FEED_REJECTS_SCHEMA), strict=True)
        )
    else:
        # Scans: need the next hour's records that close this hour's last scans.
        last_flags = _open_scan_keys(all_records)
        following = _following_records(spool, partition, last_flags)
        scans = scan_table(all_records, following, partition)
        cadence = station_cadence_s(all_records)
        stations = set(all_records.column("station").to_pylist())
        previous = _previous_times(spool, lo, stations)
        downtimes = [(a // 1000, b // 1000) for a, b in spool.downtimes_ns()]
        gaps = gap_table(all_records, partition, previous, cadence, downtimes)
        rejects = rejects_table(
            [r for r in spool.iter_rejects() if lo <= r.arrival_ns // 1000 < hi], partition
        )
        for table, rows in zip(small, (scans, gaps, rejects), strict=True):
            res.files_written.append(catalog.write_partition(table, partition, rows))

    res.records = all_records.num_rows
    res.echoes = int(pc.sum(all_records.column("echoes")).as_py() or 0) if all_records.num_rows else 0
    res.scans = scans.num_rows
    res.complete_scans = int(pc.sum(scans.column("complete")).as_py() or 0) if scans.num_rows else 0
    res.gaps = gaps.num_rows
    res.gap_seconds = float(pc.sum(gaps.column("seconds")).as_py() or 0.0) if gaps.num_rows else 0.0
    res.gap_rows = gaps.to_pylist()[:100]
    res.rejects = rejects.num_rows
    res.rejects_by_reason = dict(
        zip(*np.unique(rejects.column("reason").to_numpy(zero_copy_only=False), return_counts=True), strict=True)
    ) if rejects.num_rows else {}  # fmt: skip
    res.rejects_by_reason = {str(k): int(v) for k, v in res.rejects_by_reason.items()}
    if all_records.num_rows:
        vc = pc.value_counts(all_records.column("station"))
        res.stations = {d["values"]: d["counts"] for d in vc.to_pylist()}
    return res


def _with_pruned_rows(
    catalog: Catalog, files: dict[str, dict[str, str]], pruned: set[int], records: pa.Table, echoes: pa.Table
) -> tuple[pa.Table, pa.Table]:
    """``records``/``echoes`` plus the landed rows of segments retention removed (first copy of an id wins)."""
    old = _read(catalog, files["feed_records"][""])
    mask = pc.is_in(old.column("spool_segment"), pa.array(sorted(pruned), pa.int64()))
    kept = old.filter(mask)
    kept_ids = kept.column("record_id")
    old_echoes = _read(catalog, files["echoes"][""])
    kept_echoes = old_echoes.filter(pc.is_in(old_echoes.column("record_id"), kept_ids))
    fresh = pc.invert(pc.is_in(records.column("record_id"), kept_ids))
    fresh_ids = records.filter(fresh).column("record_id")
    return (
        pa.concat_tables([kept, records.filter(fresh)]),
        pa.concat_tables([kept_echoes, echoes.filter(pc.is_in(echoes.column("record_id"), fresh_ids))]),
    )


def _open_scan_keys(records: pa.Table) -> set[tuple[str, int]]:
    """(station, channel) pairs that have at least one scan start in the hour (their last scan may be open)."""
    if records.num_rows == 0:
        return set()
    t = records.filter(pc.equal(pc.abs(records.column("scan_flag")), 1)).select(["station", "channel"])
    return set(zip(t.column("station").to_pylist(), t.column("channel").to_pylist(), strict=True))


def record_id_counts(catalog: Catalog, partition: str) -> tuple[int, int]:
    """``(rows, distinct record ids)`` over every ``feed_records`` file of the hour (full file and chunks)."""
    cols = [
        _read(catalog, key, ["record_id"]).column("record_id")
        for key in _partition_files(catalog, "feed_records", partition).values()
    ]
    if not cols:
        return 0, 0
    ids = pa.chunked_array([c for col in cols for c in col.chunks], pa.string())
    return len(ids), int(pc.count_distinct(ids).as_py())
