"""fitacf records (darn-dmap dictionaries) -> the fields the feed needs: record time, beam, scan flag, echoes.

darn-dmap 0.8 reads fitacf with ``dmap.read_fitacf(source, mode="lax")`` where ``source`` is a path or the
record bytes; it returns ``(records, bad_byte_index)`` and ``bad_byte_index`` is ``None`` when every byte
parsed. It raises (``OSError``, ``ValueError``) on some garbage instead of returning, so callers catch broadly.

Field mapping (fitacf format, SuperDARN RST):

======================  ===========================================================
echo column             fitacf field
======================  ===========================================================
record_time             ``time.yr/mo/dy/hr/mt/sc/us`` (UTC)
beam                    ``bmnum``
scan_flag               ``scan`` (1 = first beam of a scan; -1 = first beam of a scan
                        swept in reverse beam order, RST's ``abs(scan) == 1``)
channel                 ``channel`` (stereo radars interleave two channels)
range_gate              ``slist[i]``
velocity                ``v[i]`` (m/s)
power                   ``p_l[i]`` (dB, lambda fit)
spectral_width          ``w_l[i]`` (m/s, lambda fit)
ground_scatter          ``gflg[i] != 0``
elevation               ``elv[i]`` when the record carries it (needs XCF), else null
frequency               ``tfreq`` (kHz)
noise                   ``noise.sky``
======================  ===========================================================

Invariants
----------
- :func:`check_record` accepts a record only if every scalar in :data:`REQUIRED_SCALARS` is present, the
  time fields form a valid UTC instant, and when ``slist`` is present, every vector of
  :data:`ECHO_VECTORS` is present with the same length. A record without ``slist`` has no echoes (valid).
- :func:`record_time_us` is the record's own time (never the arrival time), in microseconds since the epoch.
"""

from __future__ import annotations

import calendar
import struct
from collections.abc import Sequence
from typing import Any

import dmap
import numpy as np

REQUIRED_SCALARS = (
    "stid",
    "time.yr",
    "time.mo",
    "time.dy",
    "time.hr",
    "time.mt",
    "time.sc",
    "time.us",
    "bmnum",
    "scan",
    "channel",
    "tfreq",
    "noise.sky",
)
ECHO_VECTORS = ("slist", "v", "p_l", "w_l", "gflg")


class RecordError(ValueError):
    """A DMAP payload that is not exactly one usable fitacf record. ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def record_time_us(rec: dict[str, Any]) -> int:
    """Record time as integer microseconds since 1970-01-01 UTC; ``RecordError("bad_time")`` if invalid."""
    try:
        yr, mo, dy = int(rec["time.yr"]), int(rec["time.mo"]), int(rec["time.dy"])
        hr, mt, sc, us = int(rec["time.hr"]), int(rec["time.mt"]), int(rec["time.sc"]), int(rec["time.us"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError("missing_fields", f"time fields: {exc}") from exc
    # calendar.timegm accepts out-of-range fields silently (month 13 -> next year), so check them first.
    if not (
        1970 <= yr <= 2200
        and 1 <= mo <= 12
        and 1 <= dy <= calendar.monthrange(yr, mo)[1]
        and 0 <= hr < 24
        and 0 <= mt < 60
        and 0 <= sc < 61
        and 0 <= us < 1_000_000
    ):
        raise RecordError("bad_time", f"invalid record time {yr}-{mo}-{dy} {hr}:{mt}:{sc}.{us:06d}")
    return calendar.timegm((yr, mo, dy, hr, mt, sc, 0, 0, 0)) * 1_000_000 + us


def check_record(rec: dict[str, Any]) -> int:
    """Validate one decoded fitacf record (see module invariants); returns its time in microseconds."""
    missing = [k for k in REQUIRED_SCALARS if k not in rec]
    if missing:
        raise RecordError("missing_fields", f"missing {', '.join(missing)}")
    if "slist" in rec:
        absent = [k for k in ECHO_VECTORS if k not in rec]
        if absent:
            raise RecordError("missing_fields", f"slist present but missing {', '.join(absent)}")
        n = len(rec["slist"])
        uneven = [k for k in (*ECHO_VECTORS, "elv") if k in rec and len(rec[k]) != n]
        if uneven:
            raise RecordError(
                "missing_fields", f"vectors {', '.join(uneven)} differ in length from slist ({n})"
            )
    return record_time_us(rec)


def parse_one(dmap_bytes: bytes) -> dict[str, Any]:
    """Decode bytes that must hold exactly one fitacf record; raise :class:`RecordError` otherwise."""
    try:
        recs, bad_at = dmap.read_fitacf(dmap_bytes, mode="lax")
    except (KeyboardInterrupt, SystemExit):
        raise
    except (
        BaseException
    ) as exc:  # OSError/ValueError on some garbage, and a Rust panic (a BaseException) on some
        raise RecordError("bad_dmap", f"{type(exc).__name__}: {exc}") from exc
    if bad_at is not None:
        raise RecordError("bad_dmap", f"not a fitacf record from byte {bad_at} of {len(dmap_bytes)}")
    if len(recs) != 1:
        raise RecordError(
            "multiple_records" if recs else "bad_dmap", f"{len(recs)} fitacf records in one message"
        )
    return recs[0]


def parse_many(payloads: list[bytes]) -> list[dict[str, Any]]:
    """Decode many single-record payloads (each already validated by :func:`parse_one`) in one call.

    One darn-dmap call over the concatenation costs the same per record as one call each but avoids the
    per-call overhead; if the counts disagree (should not happen for validated payloads) it falls back
    to decoding them one by one so that record ``i`` always belongs to payload ``i``.
    """
    if not payloads:
        return []
    try:
        recs, bad_at = dmap.read_fitacf(b"".join(payloads), mode="lax")
        if bad_at is None and len(recs) == len(payloads):
            return recs
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # see parse_one: darn-dmap may panic
        pass
    return [parse_one(p) for p in payloads]


def echo_arrays(rec: dict[str, Any]) -> dict[str, np.ndarray]:
    """The echo vectors of one record (empty arrays when it has no ``slist``)."""
    if "slist" not in rec:
        empty_f = np.empty(0, np.float32)
        return {
            "range_gate": np.empty(0, np.int16),
            "velocity": empty_f,
            "power": empty_f,
            "spectral_width": empty_f,
            "ground_scatter": np.empty(0, bool),
            "elevation": empty_f,
        }
    n = len(rec["slist"])
    elv = rec.get("elv")
    return {
        "range_gate": np.asarray(rec["slist"], np.int16),
        "velocity": np.asarray(rec["v"], np.float32),
        "power": np.asarray(rec["p_l"], np.float32),
        "spectral_width": np.asarray(rec["w_l"], np.float32),
        "ground_scatter": np.asarray(rec["gflg"]) != 0,
        "elevation": np.asarray(elv, np.float32) if elv is not None else np.full(n, np.nan, np.float32),
    }


# Compact echo block: what the asset needs from a record, packed by the listener (which has parsed the record
# anyway) so that the asset does not run darn-dmap a second time. Layout: ECHO_HEAD then slist i16[n],
# v f32[n], p_l f32[n], w_l f32[n], gflg i8[n] and, if has_elv, elv f32[n].
ECHO_HEAD = struct.Struct("<Iifb")  # n, tfreq, noise.sky, has_elv


def pack_echoes(rec: dict[str, Any]) -> bytes:
    """The compact echo block of a validated record (see :func:`unpack_echoes`)."""
    e = echo_arrays(rec)
    n = len(e["range_gate"])
    has_elv = "elv" in rec and "slist" in rec
    parts = [
        ECHO_HEAD.pack(n, int(rec["tfreq"]), float(rec["noise.sky"]), int(has_elv)),
        e["range_gate"].astype("<i2").tobytes(),
        e["velocity"].astype("<f4").tobytes(),
        e["power"].astype("<f4").tobytes(),
        e["spectral_width"].astype("<f4").tobytes(),
        e["ground_scatter"].astype("i1").tobytes(),
    ]
    if has_elv:
        parts.append(e["elevation"].astype("<f4").tobytes())
    return b"".join(parts)


def unpack_echoes(block: bytes) -> tuple[int, float, dict[str, np.ndarray]]:
    """``(tfreq, noise, echo arrays)`` of a block made by :func:`pack_echoes`; elevation NaN when absent."""
    n, tfreq, noise, has_elv = ECHO_HEAD.unpack_from(block, 0)
    o = ECHO_HEAD.size
    gates = np.frombuffer(block, "<i2", n, o)
    o += 2 * n
    v = np.frombuffer(block, "<f4", n, o)
    p = np.frombuffer(block, "<f4", n, o + 4 * n)
    w = np.frombuffer(block, "<f4", n, o + 8 * n)
    o += 12 * n
    g = np.frombuffer(block, "i1", n, o) != 0
    o += n
    elv = np.frombuffer(block, "<f4", n, o) if has_elv else np.full(n, np.nan, np.float32)
    arrays = {
        "range_gate": gates,
        "velocity": v,
        "power": p,
        "spectral_width": w,
        "ground_scatter": g,
        "elevation": elv,
    }
    return tfreq, noise, arrays


def echoes_from_record(rec: dict[str, Any]) -> tuple[int, float, dict[str, np.ndarray]]:
    """Same result as :func:`unpack_echoes` but from a darn-dmap record (the re-decoding path)."""
    return int(rec["tfreq"]), float(np.float32(rec["noise.sky"])), echo_arrays(rec)


def unpack_many(blocks: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(echo counts, tfreq, noise, echo arrays of all records concatenated)`` of many echo blocks.

    The same values as :func:`unpack_echoes` on each block, computed with a few numpy gathers over the
    joined blocks instead of six small arrays per record (the live stream decodes thousands a second).
    """
    k = len(blocks)
    if k == 0:
        empty = unpack_echoes(ECHO_HEAD.pack(0, 0, 0.0, 0))[2]
        return np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.float32), empty
    buf = np.frombuffer(b"".join(blocks), np.uint8)
    lengths = np.fromiter(map(len, blocks), np.int64, k)
    starts = np.zeros(k, np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    head = buf[starts[:, None] + np.arange(ECHO_HEAD.size)]
    n = np.ascontiguousarray(head[:, 0:4]).view("<u4").ravel().astype(np.int64)
    tfreq = np.ascontiguousarray(head[:, 4:8]).view("<i4").ravel()
    noise = np.ascontiguousarray(head[:, 8:12]).view("<f4").ravel()
    has_elv = head[:, 12] != 0
    body = starts + ECHO_HEAD.size

    def gather(offsets: np.ndarray, counts: np.ndarray, width: int, dtype: str) -> np.ndarray:
        nbytes = counts * width
        total = int(nbytes.sum())
        if total == 0:
            return np.empty(0, dtype)
        first = np.zeros(len(counts), np.int64)
        np.cumsum(nbytes[:-1], out=first[1:])
        idx = np.arange(total, dtype=np.int64) + np.repeat(offsets - first, nbytes)
        return buf[idx].view(dtype)

    arrays = {
        "range_gate": gather(body, n, 2, "<i2"),
        "velocity": gather(body + 2 * n, n, 4, "<f4"),
        "power": gather(body + 6 * n, n, 4, "<f4"),
        "spectral_width": gather(body + 10 * n, n, 4, "<f4"),
        "ground_scatter": gather(body + 14 * n, n, 1, "i1") != 0,
    }
    elv = np.full(int(n.sum()), np.nan, np.float32)
    if has_elv.any():
        with_elv = np.repeat(has_elv, n)
        elv[with_elv] = gather(body[has_elv] + 15 * n[has_elv], n[has_elv], 4, "<f4")
    arrays["elevation"] = elv
    return n, tfreq, noise, arrays
