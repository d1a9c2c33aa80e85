"""A live-feed publisher for demos, tests and the benchmark: real fitacf files replayed, or synthetic records.

- :func:`file_records` replays real fitacf files (``.fitacf`` or ``.fitacf.bz2``) with every record time
  shifted by the same amount so the first record is "now"; ``loops`` repeats the file further in time.
- :class:`SyntheticFeed` makes plausible fitacf records (stations sweeping 16 beams, scan flag 1 on beam 0,
  10-30 echoes of 75 range gates with a smooth convection-like velocity pattern) with
  ``dmap.write_fitacf``. To reach thousands of records per second it writes a pool of template records once
  and then patches only the scalar fields that change (time, beam, scan flag, noise) in their DMAP bytes;
  every patch is checked once against darn-dmap's own reading. Its wire frames are cheap too
  (:meth:`SyntheticFeed.messages`): each template's bytes after the patched scalars are deflated once, and a
  record's frame is a stored (uncompressed) deflate block of the patched head followed by that deflated tail
  and the Adler-32 of the whole, a valid zlib stream, so the publisher spends its core on sending, not on
  ``zlib.compress`` (which cost two thirds of it) and the benchmarks' machine is left to what they measure.
- :func:`publish` binds an XPUB socket (wire-compatible with PUB for subscribers), waits until the
  expected number of subscriptions arrived (no "slow joiner" loss), then sends two-frame messages at a
  fixed rate with ``SNDHWM = 0`` so the publisher never drops.

Invariants
----------
- Synthetic record ``i`` has record time ``start + i / rate`` (its scheduled publish time), so record time
  order equals publish order and the benchmark can compute latency from the record time.
- Record bytes are unique per (station, record time), hence so are record ids.
"""

from __future__ import annotations

import bz2
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dmap
import numpy as np
import zmq

from radar_assets.lib.feed.dmap_records import record_time_us
from radar_assets.lib.feed.wire import encode

# Station name -> SuperDARN station id (a few real ones; synthetic names get ids from 200 up).
STATION_IDS = {
    "sas": 5,
    "pgr": 6,
    "kap": 3,
    "gbr": 4,
    "han": 10,
    "pyk": 9,
    "inv": 64,
    "rkn": 65,
    "cly": 66,
    "lyr": 90,
}
DEFAULT_STATIONS = ("sas", "pgr", "inv", "rkn", "cly")
N_BEAMS = 16
N_GATES = 75

# DMAP scalar type codes -> struct formats (DMAP is little-endian).
_DMAP_FMT = {1: "<b", 2: "<h", 3: "<i", 4: "<f", 8: "<d", 10: "<q", 16: "<B", 17: "<H", 18: "<I", 19: "<Q"}
_PATCHED = ("time.yr", "time.mo", "time.dy", "time.hr", "time.mt", "time.sc", "time.us", "noise.sky")


def station_id(station: str) -> int:
    return STATION_IDS.get(station, 200 + sum(station.encode()) % 50)


def _time_fields(t_us: int) -> dict[str, int]:
    dt = datetime.fromtimestamp(t_us // 1_000_000, UTC)
    return {
        "time.yr": dt.year,
        "time.mo": dt.month,
        "time.dy": dt.day,
        "time.hr": dt.hour,
        "time.mt": dt.minute,
        "time.sc": dt.second,
        "time.us": t_us % 1_000_000,
    }


def synthetic_record(
    station: str, t_us: int, beam: int, scan: int, rng: np.random.Generator
) -> dict[str, Any]:
    """One plausible fitacf record as a darn-dmap dictionary (every field ``write_fitacf`` requires)."""
    n = int(rng.integers(10, 31))
    gates = np.sort(rng.choice(N_GATES, size=n, replace=False)).astype(np.int16)
    # A two-cell convection pattern: velocity changes smoothly with beam and range, plus noise.
    v = (450 * np.sin(np.pi * (beam + 0.5) / N_BEAMS) * np.cos(gates / 18.0) + rng.normal(0, 40, n)).astype(
        np.float32
    )
    p = np.clip(rng.gamma(3.0, 5.0, n), 3, 45).astype(np.float32)
    w = np.clip(rng.gamma(2.0, 60.0, n), 10, 800).astype(np.float32)
    gflg = ((np.abs(v) < 40) & (gates < 25)).astype(np.int8)
    elv = np.clip(rng.normal(22, 6, n), 5, 45).astype(np.float32)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    rec: dict[str, Any] = {
        "radar.revision.major": 1, "radar.revision.minor": 12, "origin.code": 0,
        "origin.time": "synthetic", "origin.command": "radar-assets feed simulate",
        "cp": 153, "stid": station_id(station), **_time_fields(t_us),
        "txpow": 9000, "nave": 31, "atten": 0, "lagfr": 1200, "smsep": 300, "ercod": 0,
        "stat.agc": 0, "stat.lopwr": 0, "noise.search": 600.0, "noise.mean": 6800.0,
        "channel": 0, "bmnum": beam, "bmazm": float(-24.0 + 3.24 * beam), "scan": scan, "offset": 0,
        "rxrise": 100, "intt.sc": 3, "intt.us": 0, "txpl": 300, "mpinc": 2400, "mppul": 7, "mplgs": 18,
        "mplgexs": 0, "ifmode": -1, "nrang": N_GATES, "frang": 180, "rsep": 45, "xcf": 1, "tfreq": 10800,
        "mxpwr": 1073741824, "lvmax": 20000, "combf": "synthetic", "fitacf.revision.major": 3,
        "fitacf.revision.minor": 0, "noise.sky": float(rng.uniform(2, 400)), "noise.lag0": 0.0, "noise.vel": 0.0,
        "ptab": np.array([0, 9, 12, 20, 22, 26, 27], np.int16),
        "ltab": np.zeros((19, 2), np.int16),
        "pwr0": f32(rng.uniform(0, 40, N_GATES)),
        "slist": gates, "nlag": np.full(n, 15, np.int16), "qflg": np.ones(n, np.int8), "gflg": gflg,
        "p_l": p, "p_l_e": f32(p * 0.1), "p_s": p, "p_s_e": f32(p * 0.1),
        "v": v, "v_e": f32(np.abs(v) * 0.05 + 10), "w_l": w, "w_l_e": f32(w * 0.1), "w_s": w, "w_s_e": f32(w * 0.1),
        "sd_l": f32(np.zeros(n)), "sd_s": f32(np.zeros(n)), "sd_phi": f32(np.zeros(n)),
        "x_qflg": np.ones(n, np.int8), "x_gflg": gflg, "x_p_l": p, "x_p_l_e": f32(p * 0.1), "x_p_s": p,
        "x_p_s_e": f32(p * 0.1), "x_v": v, "x_v_e": f32(np.abs(v) * 0.05 + 10), "x_w_l": w, "x_w_l_e": f32(w * 0.1),
        "x_w_s": w, "x_w_s_e": f32(w * 0.1), "phi0": f32(np.zeros(n)), "phi0_e": f32(np.zeros(n)),
        "elv": elv, "elv_low": f32(elv - 2), "elv_high": f32(elv + 2),
        "x_sd_l": f32(np.zeros(n)), "x_sd_s": f32(np.zeros(n)), "x_sd_phi": f32(np.zeros(n)),
    }  # fmt: skip
    return rec


@dataclass
class _Template:
    data: bytearray
    offsets: dict[str, tuple[int, str]]  # field -> (value offset, struct format)
    head: int  # bytes up to the end of the last patched scalar
    tail_deflated: bytes  # raw deflate of data[head:], a final block, from an empty window


# zlib header (deflate, 32 KiB window, fastest level; RFC 1950) of the frames SyntheticFeed.messages makes.
_ZLIB_HEAD = b"\x78\x01"


def _template(data: bytearray) -> _Template:
    offsets = _scalar_offsets(data, _PATCHED)
    head = max(off + struct.calcsize(fmt) for off, fmt in offsets.values())
    deflate = zlib.compressobj(1, zlib.DEFLATED, -15)
    return _Template(data, offsets, head, deflate.compress(bytes(data[head:])) + deflate.flush())


def _zlib_frame(tpl: _Template) -> bytes:
    """``tpl.data`` as a zlib stream (RFC 1950/1951): the head in one stored, non-final block (byte-aligned,
    so the tail's blocks follow it as they were deflated on their own), then the pre-deflated tail."""
    head = tpl.data[: tpl.head]
    n = len(head)
    return b"".join(
        (
            _ZLIB_HEAD,
            struct.pack("<BHH", 0, n, n ^ 0xFFFF),
            head,
            tpl.tail_deflated,
            struct.pack(">I", zlib.adler32(tpl.data)),
        )
    )


def _scalar_offsets(data: bytes, names: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Byte offset and format of each named scalar's value in one DMAP record.

    A DMAP record is ``code i32 | size i32 | n_scalars i32 | n_arrays i32`` then the scalars, each
    ``name\\0 | type code i8 | value`` (strings NUL-terminated). Walking them (rather than searching for a
    name) cannot confuse ``time.sc`` with ``intt.sc``.
    """
    wanted = set(names)
    n_scalars = struct.unpack_from("<i", data, 8)[0]
    pos, out = 16, {}
    for _ in range(n_scalars):
        end = data.index(b"\x00", pos)
        name = data[pos:end].decode()
        code = data[end + 1]
        pos = end + 2
        if code == 9:
            pos = data.index(b"\x00", pos) + 1
            continue
        fmt = _DMAP_FMT[code]
        if name in wanted:
            out[name] = (pos, fmt)
        pos += struct.calcsize(fmt)
    missing = wanted - set(out)
    if missing:
        raise ValueError(f"scalars {sorted(missing)} not found in the template")
    return out


class SyntheticFeed:
    """Plausible records for ``stations`` at ``rate`` records/s in total, starting at ``start_us``.

    Record ``i`` belongs to station ``i % len(stations)``; each station sweeps beams 0..15 with scan flag 1
    on beam 0, so a station's scan cadence is ``16 * len(stations) / rate`` seconds.
    """

    def __init__(self, stations: Sequence[str], rate: float, start_us: int, seed: int = 0, variants: int = 4):
        self.stations = list(stations)
        self.rate = rate
        self.start_us = start_us
        rng = np.random.default_rng(seed)
        # Templates per (station, beam, variant): written once with write_fitacf, then patched per record.
        recs, keys = [], []
        for s in self.stations:
            for beam in range(N_BEAMS):
                for var in range(variants):
                    recs.append(synthetic_record(s, start_us, beam, 1 if beam == 0 else 0, rng))
                    keys.append((s, beam, var))
        blob = dmap.write_fitacf(recs)
        self.templates: dict[tuple[str, int, int], _Template] = {}
        pos = 0
        for key in keys:
            size = struct.unpack_from("<i", blob, pos + 4)[0]
            data = bytearray(blob[pos : pos + size])
            self.templates[key] = _template(data)
            pos += size
        self.variants = variants
        self._rng = rng
        self._check()

    def _check(self) -> None:
        # Patching raw bytes is only safe if darn-dmap reads back exactly what was patched in.
        t_us = self.start_us + 123_456_789
        station, data = self.record(7, t_us)
        (rec,), bad = dmap.read_fitacf(bytes(data), mode="lax")
        if bad is not None or record_time_us(rec) != t_us:
            raise RuntimeError("synthetic record patching does not round-trip through darn-dmap")

    def time_of(self, i: int) -> int:
        return self.start_us + int(round(i * 1e6 / self.rate))

    def _patched(self, i: int, t_us: int) -> tuple[str, _Template]:
        ns = len(self.stations)
        station = self.stations[i % ns]
        beam = (i // ns) % N_BEAMS
        tpl = self.templates[(station, beam, (i // (ns * N_BEAMS)) % self.variants)]
        values = {**_time_fields(t_us), "noise.sky": 2.0 + (i * 7919) % 398}
        data = tpl.data
        for name, (off, fmt) in tpl.offsets.items():
            struct.pack_into(fmt, data, off, values[name])
        return station, tpl

    def record(self, i: int, t_us: int | None = None) -> tuple[str, bytes]:
        """Station and DMAP bytes of record ``i``."""
        station, tpl = self._patched(i, self.time_of(i) if t_us is None else t_us)
        return station, bytes(tpl.data)

    def messages(self, time_of: Callable[[int], int] | None = None) -> Iterator[tuple[list[bytes], int]]:
        """The wire frames (as :func:`~radar_assets.lib.feed.wire.encode` lays them out) and record time of
        records 0, 1, ...; the zlib stream of each is built without compressing (see the module doc).
        ``time_of(i)`` gives record ``i``'s time (default: its scheduled time, :meth:`time_of`)."""
        time_of = time_of or self.time_of
        encoded = {s: s.encode() for s in self.stations}
        i = 0
        while True:
            t = time_of(i)
            station, tpl = self._patched(i, t)
            yield [encoded[station], _zlib_frame(tpl)], t
            i += 1

    def __iter__(self) -> Iterator[tuple[str, bytes, int]]:
        i = 0
        while True:
            t = self.time_of(i)
            station, data = self.record(i, t)
            yield station, data, t
            i += 1


def station_of_file(path: Path, rec: dict[str, Any]) -> str:
    """Station code from a SuperDARN file name (``20180404.0601.han.fitacf`` -> ``han``), else ``stidN``."""
    for part in path.name.split("."):
        if part.isalpha() and len(part) == 3 and part not in ("bz2",):
            return part
    return f"stid{rec.get('stid', 0)}"


def file_records(paths: Sequence[str | Path], start_us: int, loops: int = 1) -> list[tuple[str, bytes, int]]:
    """Real fitacf records, times shifted so the earliest record is at ``start_us``; sorted by new time.

    Each file is shifted separately (its first record lands at ``start_us``); each loop after the first is
    shifted further by the longest file span plus one minute, so times keep increasing. Every field other
    than the time is the file's own.
    """
    per_file = []
    for p in map(Path, paths):
        src: str | bytes = str(p)
        if p.suffix == ".bz2":  # decompress ourselves: works for any darn-dmap version
            src = bz2.decompress(p.read_bytes())
        recs, bad = dmap.read_fitacf(src, mode="lax")
        if not recs:
            raise ValueError(f"{p}: no fitacf records (corrupt from byte {bad})")
        per_file.append((p, recs))
    # Each file is shifted on its own so that its first record is at start_us: files from different
    # years replay side by side, as live stations would.
    spans = [(min(map(record_time_us, recs)), max(map(record_time_us, recs))) for _, recs in per_file]
    span = max(t1 - t0 for t0, t1 in spans) + 60_000_000
    out: list[tuple[str, dict[str, Any], int]] = []
    for loop in range(loops):
        for (p, recs), (t0, _t1) in zip(per_file, spans, strict=True):
            shift = start_us - t0 + loop * span
            for r in recs:
                t = record_time_us(r) + shift
                out.append((station_of_file(p, r), {**r, **_time_fields(t)}, t))
    out.sort(key=lambda x: x[2])
    blob = dmap.write_fitacf([r for _, r, _ in out])
    result, pos = [], 0
    for station, _r, t in out:
        size = struct.unpack_from("<i", blob, pos + 4)[0]
        result.append((station, blob[pos : pos + size], t))
        pos += size
    return result


def wait_for_subscribers(sock: zmq.Socket, n: int, timeout: float) -> int:
    """Count subscription messages on an XPUB socket until ``n`` arrived or ``timeout`` passed."""
    seen = 0
    deadline = time.monotonic() + timeout
    while seen < n and time.monotonic() < deadline:
        if sock.poll(100, zmq.POLLIN):
            msg = sock.recv()
            if msg[:1] == b"\x01":
                seen += 1
    return seen


def publish(
    endpoint: str,
    records: Iterable[tuple[str, bytes, int]] | Callable[[int], Iterable[tuple[str, bytes, int]]],
    *,
    rate: float | None,
    count: int | None = None,
    subscribers: int = 1,
    wait_timeout: float = 30.0,
    realtime: bool = False,
    on_progress=None,
    encoded: bool = False,
) -> dict[str, Any]:
    """Bind ``endpoint`` and publish ``records`` (station, DMAP bytes, record time) as two-frame messages.

    With ``encoded`` the records are ``(frames, record time)`` ready to send (:meth:`SyntheticFeed.messages`);
    a :class:`SyntheticFeed` itself is sent that way.

    Pacing: at ``rate`` records/s when given; with ``realtime`` the gaps between record times are kept
    instead. ``records`` may be a function of the start time (us) called once the subscribers are there,
    so that record times start when publishing does. Returns the number published and the achieved rate.
    """
    ctx = zmq.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.SNDBUF, 8 << 20)
    sock.setsockopt(zmq.LINGER, -1)  # deliver everything queued before closing
    sock.bind(endpoint)
    got = wait_for_subscribers(sock, subscribers, wait_timeout) if subscribers else 0
    if subscribers:
        time.sleep(0.2)  # the subscription reached us; let the peer finish setting up
    if callable(records):
        records = records(time.time_ns() // 1000)
    if isinstance(records, SyntheticFeed):
        records, encoded = records.messages(), True
    messages = records if encoded else ((encode(station, data), t_us) for station, data, t_us in records)
    sent = 0
    t_start = time.monotonic()
    first_t: int | None = None
    try:
        for frames, t_us in messages:
            if count is not None and sent >= count:
                break
            if first_t is None:
                first_t = t_us
            if rate:
                due = t_start + sent / rate
            elif realtime:
                due = t_start + (t_us - first_t) / 1e6
            else:
                due = 0
            delay = due - time.monotonic()
            if delay > 0.002:
                time.sleep(delay)
            sock.send_multipart(frames)
            sent += 1
            if on_progress and sent % 10000 == 0:
                on_progress(sent)
    finally:
        elapsed = time.monotonic() - t_start
        sock.close()  # LINGER -1: blocks until queued messages went out
        ctx.term()
    return {
        "published": sent,
        "subscribers": got,
        "seconds": round(elapsed, 3),
        "rate_per_s": round(sent / elapsed, 1) if elapsed > 0 else None,
        "first_record_us": first_t,
    }
