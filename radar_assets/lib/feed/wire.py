"""The live-feed wire format: two-frame ZeroMQ messages ``[station (utf-8), zlib(DMAP of one fitacf record)]``.

This is the SuperDARN Canada real-time protocol. :func:`validate` turns one received message into an
:class:`Accepted` record or raises :class:`Rejected` with a short reason code; it never raises anything
else, so a listener calling it cannot be crashed by what arrives on the wire. The DMAP check is
:func:`radar_assets.lib.feed.fitacf_scan.scan_record` (one walk over the bytes, ~25 us a record), which
gives the verdicts darn-dmap's ``read_fitacf`` + :func:`~radar_assets.lib.feed.dmap_records.check_record`
give (the tests compare them on real, synthetic and corrupted records); darn-dmap itself panics on some
corrupt bytes (an exception that is not an ``Exception``), one more reason it is not called here.

Reasons (``Rejected.reason``):

==================  ==============================================================================
``frame_count``     not exactly two frames
``bad_station``     station frame empty, longer than 64 bytes, or not printable UTF-8
``oversized``       compressed frame or decompressed record larger than :data:`MAX_RECORD_BYTES`
``bad_zlib``        not a complete zlib stream (random bytes, truncated, trailing bytes)
``bad_dmap``        zlib fine, but the bytes are not a fitacf DMAP record
``multiple_records``  more than one record in one message (protocol says one)
``missing_fields``  a fitacf record without the fields the echoes need
``bad_time``        the record's time fields do not form a valid instant
==================  ==============================================================================

Invariants
----------
- Every record up to :data:`MAX_RECORD_BYTES` (1 MiB) decompressed is accepted if it is valid: there is no
  smaller limit (the reference server silently drops records above 10,000 bytes).
- Decompression never allocates more than ``MAX_RECORD_BYTES + 1`` bytes (a zlib bomb is ``oversized``).
- ``Accepted.record_id`` depends only on the station and the DMAP bytes, so the same record received twice
  (or read twice from the spool) has the same id.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import NamedTuple

from radar_assets.lib.feed.dmap_records import RecordError
from radar_assets.lib.feed.fitacf_scan import scan_record

MAX_RECORD_BYTES = 1 << 20  # 1 MiB, compressed and decompressed
MAX_STATION_BYTES = 64
REASONS = (
    "frame_count",
    "bad_station",
    "oversized",
    "bad_zlib",
    "bad_dmap",
    "multiple_records",
    "missing_fields",
    "bad_time",
)


class Rejected(Exception):
    """A message that is not a valid record; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str, station: str | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.station = station


class Accepted(NamedTuple):
    """A validated record: what the spool keeps (the compressed frame as received) plus its key fields.

    A named tuple: the listener makes thousands a second.
    """

    station: str
    compressed: bytes
    record_id: bytes  # 16 bytes, see make_record_id
    record_time_us: int
    stid: int
    channel: int
    beam: int
    scan_flag: int
    dmap_bytes: int
    echo_block: bytes  # dmap_records.pack_echoes layout, cut from the record by fitacf_scan


def make_record_id(station: str, dmap_bytes: bytes) -> bytes:
    """Deterministic 128-bit id of a record: BLAKE2b of station and DMAP bytes."""
    h = hashlib.blake2b(digest_size=16)
    h.update(station.encode())
    h.update(b"\x00")
    h.update(dmap_bytes)
    return h.digest()


def decode_station(frame: bytes) -> str:
    if not frame or len(frame) > MAX_STATION_BYTES:
        raise Rejected("bad_station", f"station frame of {len(frame)} bytes")
    try:
        station = frame.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected("bad_station", f"station frame is not UTF-8: {exc}") from exc
    if not station.isprintable() or station.strip() != station:
        raise Rejected("bad_station", f"station {station!r} is not printable")
    return station


def decompress_record(frame: bytes) -> bytes:
    """Inflate one record frame, refusing anything over :data:`MAX_RECORD_BYTES` or not exactly one stream."""
    if len(frame) > MAX_RECORD_BYTES:
        raise Rejected("oversized", f"compressed frame of {len(frame)} bytes > {MAX_RECORD_BYTES}")
    d = zlib.decompressobj()
    try:
        out = d.decompress(frame, MAX_RECORD_BYTES + 1)
    except zlib.error as exc:
        raise Rejected("bad_zlib", str(exc)) from exc
    if len(out) > MAX_RECORD_BYTES:
        raise Rejected("oversized", f"record inflates to more than {MAX_RECORD_BYTES} bytes")
    if not d.eof:
        raise Rejected("bad_zlib", "truncated zlib stream")
    if d.unused_data:
        raise Rejected("bad_zlib", f"{len(d.unused_data)} bytes after the zlib stream")
    return out


def validate(frames: list[bytes]) -> Accepted:
    """Validate and decode one two-frame message (see the module table of reasons)."""
    if len(frames) != 2:
        raise Rejected("frame_count", f"{len(frames)} frames, expected 2")
    station = decode_station(frames[0])
    try:
        raw = decompress_record(frames[1])
        rec = scan_record(raw)
    except Rejected as exc:
        exc.station = station
        raise
    except RecordError as exc:
        raise Rejected(exc.reason, exc.detail, station) from exc
    except Exception as exc:  # anything unforeseen in a record is the record's fault, never the listener's
        raise Rejected("bad_dmap", f"{type(exc).__name__}: {exc}", station) from exc
    return Accepted(
        station=station,
        compressed=frames[1],
        record_id=make_record_id(station, raw),
        record_time_us=rec.record_time_us,
        stid=rec.stid,
        channel=rec.channel,
        beam=rec.beam,
        scan_flag=rec.scan_flag,
        dmap_bytes=len(raw),
        echo_block=rec.echo_block,
    )


def encode(station: str, dmap_bytes: bytes, level: int = 1) -> list[bytes]:
    """The two frames a publisher sends for one record."""
    return [station.encode(), zlib.compress(dmap_bytes, level)]
