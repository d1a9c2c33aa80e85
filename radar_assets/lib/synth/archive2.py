"""Synthetic NEXRAD Archive II volumes (Message 31), byte for byte in the public archive format.

References: WSR-88D *Interface Control Document for the RDA/RPG* (ICD 2620002, Build 19+: Message Header
Table II, Message 2 Table IV, Message 5 Table XI, Message 31 Tables XVII-A..I) and *Interface Control Document
for the Archive II/User* (ICD 2620010: volume header record, LDM compressed records).

File layout written here, as in real ``*_V06`` volumes from the NOAA archive:

1. 24-byte volume header: ``AR2V0006.`` + 3-digit volume number, modified Julian date (days since
   1969-12-31, big-endian uint32), milliseconds past midnight (uint32), ICAO (4 chars).
2. LDM records: a 4-byte big-endian signed size, then one bzip2 stream. The last record's size is negative,
   as in the archive. The first record holds 134 metadata segments of 2432 bytes (Message 15 clutter filter map,
   Message 18 RDA adaptation data, Message 3 performance data, Message 5 VCP, Message 2 RDA status, zero
   padding in between) -- every message is a 12-byte CTM header + 16-byte message header + payload.
3. Then records of 120 Message 31 radials each (a 720-radial super-resolution cut is six records, a 360-radial
   cut three). Each radial: CTM + message header + 72-byte data header (10 block pointers), VOL (44 bytes),
   ELV (12), RAD (28) constant blocks, then REF / VEL / SW generic moment blocks (28-byte descriptor +
   8-bit words). Scale/offset per ICD: REF 2 / 66 (0.5 dB), VEL 2 / 129 (0.5 m/s), SW 2 / 129. Code 0 is
   "below threshold", 1 "range folded" (not produced).

Values: the weather model's coarse fields (1 deg x 1 km bins, see :mod:`.weather`) are mapped to each
radial (collection order, starting azimuth varying per cut) and to 250 m gates (4 gates per bin, 8 beyond
150 km), with seeded noise of whole quantisation steps per ray and bin; velocity is folded into the cut's
Nyquist interval after the noise.

Cost (VCP 212, one volume, one core): bzip2 is almost all of it, ~0.3 s for ~22.6 MB of Message 31
radials -- ~0.09 s feeding the bytes through bzip2's run-length stage (mostly zero gates), ~0.1 s sorting the
repetitive radial headers, ~0.03 s fixed cost per LDM record, ~0.09 s for the clear-air echo (about 2.4 MB
of non-zero gates at night, more than all the precipitation) and little for the rest. ``compresslevel`` and
bzip2's work factor change neither the time nor (beyond level 1) the size: every record's block is
< 200 kB after the run-length stage. Building the fields (~0.025 s) and the radials (~0.025 s: per-process
header templates, words computed only for bins with an echo) come on top.

Radial status: 3 start of volume, 0 start of elevation, 1 intermediate, 2 end of elevation, 4 end of
volume. Azimuth numbers run 1..n within a cut; collection times (ms past midnight + Julian date) increase
through the volume.

Invariants
----------
- ``encode_volume(build_volume(...))`` is a pure function of (site, volume start, VCP, seed): no wall clock,
  byte-identical on every run.
- :meth:`SweepData.physical` is what a correct reader returns after applying scale/offset, to within half a
  quantisation step (0.25 dBZ or m/s); NaN marks "no data" (code 0).
- Volume starts follow a fixed per-site schedule (``period_s`` of the VCP plus < 4 s jitter), so two runs
  over overlapping ranges produce the same keys.
"""

from __future__ import annotations

import bz2
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np

from ..sites import Site
from ..sites import site as lookup_site
from . import weather
from .vcp import FIRST_GATE_M, GATE_SPACING_M, VCP, Cut, get_vcp

RECORD_SEGMENT = 2432
METADATA_SEGMENTS = 134
RADIALS_PER_RECORD = 120
FEEDHORN_M = 20
MS_PER_DAY = 86_400_000
MOMENT_SCALE = {"REF": (2.0, 66.0), "VEL": (2.0, 129.0), "SW": (2.0, 129.0)}
NOISE_N = 1 << 21
DEFAULT_COMPRESSLEVEL = 5


# ---------------------------------------------------------------------------------------------------------
# time helpers


def mjd_ms(epoch_ms: int) -> tuple[int, int]:
    """NEXRAD modified Julian date (1 = 1970-01-01) and milliseconds past midnight of an epoch time."""
    return epoch_ms // MS_PER_DAY + 1, epoch_ms % MS_PER_DAY


def to_epoch_ms(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(round(when.timestamp() * 1000))


def volume_key(site_id: str, start_ms: int) -> str:
    """Public Level 2 key: ``YYYY/MM/DD/SITE/SITEYYYYMMDD_HHMMSS_V06`` (time truncated to the second)."""
    t = datetime.fromtimestamp(start_ms // 1000, tz=UTC)
    return f"{t:%Y/%m/%d}/{site_id}/{site_id}{t:%Y%m%d_%H%M%S}_V06"


def _mix(*vals: int) -> int:
    """Deterministic 32-bit hash of integers (for schedule jitter and noise offsets)."""
    return zlib.crc32(struct.pack(f">{len(vals)}q", *vals))


def volume_schedule(site_id: str, vcp_number: int, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """Volumes ``(number, start_ms)`` whose start lies in ``[start_ms, end_ms)``.

    Starts are ``anchor + k * period + jitter_k`` with a per-site anchor and 0-4 s jitter, independent of
    the requested range (so overlapping runs agree) and of the seed.
    """
    vcp = get_vcp(vcp_number)
    period = int(vcp.period_s * 1000)
    anchor = zlib.crc32(site_id.encode()) % period
    k0 = max(0, (start_ms - anchor) // period - 1)
    out = []
    k = k0
    while True:
        t = anchor + k * period + _mix(k, zlib.crc32(site_id.encode())) % 4000
        if t >= end_ms:
            break
        if t >= start_ms:
            out.append((k, t))
        k += 1
    return out


# ---------------------------------------------------------------------------------------------------------
# sweeps


@lru_cache(maxsize=8)
def _noise(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded noise tables in physical units: +-1 dB / m/s in 0.5 steps (wide) and +-0.5 (narrow, SW)."""
    rng = np.random.default_rng([seed, 0x701])
    steps = rng.integers(-1, 2, NOISE_N) + rng.integers(-1, 2, NOISE_N)  # triangular -2..2 steps
    wide = (steps * 0.5).astype(np.float32)
    narrow = (np.clip(steps, -1, 1) * 0.5).astype(np.float32)
    return wide, narrow


FAR_KM = 150.0


@lru_cache(maxsize=64)
def _far_pairing(nbins: int) -> np.ndarray:
    """Index map of coarse bins: identity up to FAR_KM, then each odd bin takes its even neighbour's value."""
    j = np.arange(nbins)
    far = int((FAR_KM * 1000.0 - FIRST_GATE_M) / (GATE_SPACING_M * weather.COARSE))
    j[far:] = far + ((j[far:] - far) // 2) * 2
    return j


def _repeat4_u8(a: np.ndarray) -> np.ndarray:
    """Repeat every column of a C-contiguous uint8 array four times (one uint32 multiply)."""
    a = np.ascontiguousarray(a)
    return (a.astype(np.uint32) * np.uint32(0x01010101)).view(np.uint8).reshape(a.shape[0], -1)


@dataclass
class SweepData:
    """One cut of a synthetic volume: radial geometry, times and the fields the writer encodes.

    Arrays are in collection order (the order of the Message 31 radials in the file).
    """

    cut: Cut
    elevation_number: int  # 1-based, split cuts numbered separately (as in Message 31)
    azimuth: np.ndarray  # float32 degrees, ray centres
    elevation: np.ndarray  # float32 degrees
    time_ms: np.ndarray  # int64 epoch milliseconds
    coarse: weather.CoarseFields
    coarse_az: np.ndarray  # coarse-grid azimuth bin of each ray
    noise_offset: dict[str, int]
    seed: int

    @property
    def nrays(self) -> int:
        return len(self.azimuth)

    @property
    def moments(self) -> tuple[str, ...]:
        return self.cut.moments

    def ngates(self, moment: str) -> int:
        return self.cut.ref_gates if moment == "REF" else self.cut.dop_gates

    first_gate_m = FIRST_GATE_M
    gate_spacing_m = GATE_SPACING_M

    def _rows(self, moment: str) -> np.ndarray:
        """Physical values per ray (collection order) and coarse bin, noise added, velocity folded.

        Noise is an integer number of quantisation steps per ray and coarse bin (deterministic slice of a
        seeded table), so it never moves a value by less than the format can represent.
        """
        coarse = {"REF": self.coarse.dbz, "VEL": self.coarse.vel, "SW": self.coarse.sw}[moment]
        rows = coarse[self.coarse_az]
        wide, narrow = _noise(self.seed)
        table = narrow if moment == "SW" else wide
        n = rows.size
        off = self.noise_offset[moment] % (NOISE_N - n)
        rows = rows + table[off : off + n].reshape(rows.shape)
        if moment == "VEL":
            two_vn = np.float32(2.0 * self.cut.nyquist_ms)
            rows = rows - two_vn * np.round(rows / two_vn)
        # beyond FAR_KM the beam is wider than 2.5 km: bins are paired (2 km range resolution), which
        # halves what bzip2 has to sort there without a visible difference
        return rows[:, _far_pairing(rows.shape[1])].astype(np.float32)

    def codes(self, moment: str) -> np.ndarray:
        """The 8-bit words written for ``moment``: (nrays, ngates) uint8, 0 = below threshold."""
        scale, offset = MOMENT_SCALE[moment]
        c = self._rows(moment) * np.float32(scale) + np.float32(offset)
        c[np.isnan(c)] = 0.0
        np.rint(c, out=c)
        assert weather.COARSE == 4
        return _repeat4_u8(c.astype(np.uint8))[:, : self.ngates(moment)]

    def physical(self, moment: str) -> np.ndarray:
        """The physical values the generator intends (dBZ, m/s): float32 (nrays, ngates), NaN = no data."""
        return np.repeat(self._rows(moment), weather.COARSE, axis=1)[:, : self.ngates(moment)]


@dataclass
class SynthVolume:
    """A synthetic volume before encoding; ``sweeps`` in file order."""

    site: Site
    vcp: VCP
    seed: int
    number: int
    start_ms: int
    sweeps: list[SweepData] = field(default_factory=list)

    @property
    def key(self) -> str:
        return volume_key(self.site.id, self.start_ms)

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.start_ms / 1000, tz=UTC)


def build_volume(
    site_id: str,
    start_ms: int,
    vcp_number: int = 212,
    seed: int = 0,
    number: int = 0,
    clear_air_echo: bool = False,
) -> SynthVolume:
    """Radial geometry, timing and weather fields of one volume starting at ``start_ms`` (epoch ms).

    ``clear_air_echo`` adds weak boundary-layer returns (insects, Bragg scatter) around the radar; off by
    default, where there is no precipitation there is no echo.
    """
    st = lookup_site(site_id)
    vcp = get_vcp(vcp_number)
    vol = SynthVolume(st, vcp, seed, number, start_ms)
    offsets = vcp.cut_start_offsets_s()
    fields_by_elev: dict[float, weather.CoarseFields] = {}
    # one scene per volume (at its middle); each elevation moves the echoes to the time of its cuts
    t_vol = start_ms / 1000.0 + vcp.scan_duration_s / 2
    comps = weather.scene(seed, st.lat, st.lon, st.elev_m, t_vol, clear_air_echo=clear_air_echo)
    for elev in vcp.elevations:
        idx = [i for i, c in enumerate(vcp.cuts) if c.elevation == elev]
        t_mid = start_ms / 1000.0 + (offsets[idx[0]] + offsets[idx[-1]] + vcp.cuts[idx[-1]].duration_s) / 2
        ngates = max(vcp.cuts[i].ref_gates for i in idx)
        nb = -(-ngates // weather.COARSE)
        geom = weather.coarse_geometry(elev, nb, st.elev_m)
        fields_by_elev[elev] = weather.evaluate(seed, comps, geom, t_mid, st.lat, st.lon, dt_s=t_mid - t_vol)
    for i, cut in enumerate(vcp.cuts):
        n = cut.nrays
        start_idx = _mix(number, i, 77) % n
        ray_idx = (start_idx + np.arange(n)) % n
        az = ((ray_idx + 0.5) * cut.azimuth_spacing).astype(np.float32)
        wobble = 0.02 * np.sin(np.deg2rad(az) * 3.0 + number)
        el = (cut.elevation + wobble).astype(np.float32)
        step_ms = cut.duration_s * 1000.0 / n
        t = start_ms + int(offsets[i] * 1000) + np.floor(np.arange(n) * step_ms).astype(np.int64)
        coarse_az = (ray_idx * cut.azimuth_spacing).astype(np.int64) % 360
        noise_offset = {m: _mix(number, i, j, seed) * 2654435761 for j, m in enumerate(("REF", "VEL", "SW"))}
        vol.sweeps.append(
            SweepData(cut, i + 1, az, el, t, fields_by_elev[cut.elevation], coarse_az, noise_offset, seed)
        )
    return vol


# ---------------------------------------------------------------------------------------------------------
# encoding


def _msg31_dtype(cut: Cut) -> tuple[np.dtype, dict[str, int], int]:
    """Structured big-endian dtype of one CTM + message header + Message 31 radial for ``cut``."""
    fields: list[tuple] = [
        ("ctm", "u1", (12,)),
        # message header (Table II)
        ("size", ">u2"),
        ("channel", "u1"),
        ("type", "u1"),
        ("seq", ">u2"),
        ("hdate", ">u2"),
        ("hms", ">u4"),
        ("nseg", ">u2"),
        ("seg", ">u2"),
        # Message 31 data header (Table XVII-A)
        ("rid", "S4"),
        ("cms", ">u4"),
        ("cdate", ">u2"),
        ("aznum", ">u2"),
        ("az", ">f4"),
        ("compress", "u1"),
        ("spare0", "u1"),
        ("rlen", ">u2"),
        ("azres", "u1"),
        ("status", "u1"),
        ("elnum", "u1"),
        ("sector", "u1"),
        ("el", ">f4"),
        ("blank", "u1"),
        ("azidx", "u1"),
        ("nblocks", ">u2"),
        ("ptr", ">u4", (10,)),
        # VOL (Table XVII-E)
        ("vol_t", "S1"),
        ("vol_n", "S3"),
        ("vol_len", ">u2"),
        ("vol_maj", "u1"),
        ("vol_min", "u1"),
        ("lat", ">f4"),
        ("lon", ">f4"),
        ("height", ">i2"),
        ("feedhorn", ">u2"),
        ("calib", ">f4"),
        ("txh", ">f4"),
        ("txv", ">f4"),
        ("zdr_cal", ">f4"),
        ("phi0", ">f4"),
        ("vcp", ">u2"),
        ("proc", ">u2"),
        # ELV (Table XVII-F)
        ("elv_t", "S1"),
        ("elv_n", "S3"),
        ("elv_len", ">u2"),
        ("atmos", ">i2"),
        ("elv_cal", ">f4"),
        # RAD (Table XVII-H)
        ("rad_t", "S1"),
        ("rad_n", "S3"),
        ("rad_len", ">u2"),
        ("unamb", ">i2"),
        ("noise_h", ">f4"),
        ("noise_v", ">f4"),
        ("nyq", ">i2"),
        ("rflags", ">i2"),
        ("cal_h", ">f4"),
        ("cal_v", ">f4"),
    ]
    for m in cut.moments:
        ng = cut.ref_gates if m == "REF" else cut.dop_gates
        fields += [
            (f"{m}_t", "S1"),
            (f"{m}_n", "S3"),
            (f"{m}_res", ">u4"),
            (f"{m}_ng", ">u2"),
            (f"{m}_first", ">i2"),
            (f"{m}_space", ">i2"),
            (f"{m}_tover", ">i2"),
            (f"{m}_snr", ">i2"),
            (f"{m}_flags", "u1"),
            (f"{m}_word", "u1"),
            (f"{m}_scale", ">f4"),
            (f"{m}_offset", ">f4"),
            (f"{m}_data", "u1", (ng,)),
        ]
    dt = np.dtype(fields)
    base = dt.fields["rid"][1]
    ptrs = {
        name: dt.fields[f"{name.lower()}_t" if name in ("VOL", "ELV", "RAD") else f"{name}_t"][1] - base
        for name in ("VOL", "ELV", "RAD", *cut.moments)
    }
    rlen = dt.itemsize - base
    return dt, ptrs, rlen


@lru_cache(maxsize=128)
def _layout(cut: Cut) -> tuple[np.dtype, dict[str, int], int]:
    return _msg31_dtype(cut)


@lru_cache(maxsize=64)
def _sweep_template(st: Site, vcp_number: int, index: int) -> np.ndarray:
    """Every field of a cut's radials that does not change from volume to volume (read-only, per process).

    Sequence numbers, times, azimuths, elevations and the moment words are filled per volume; the words
    are zero (below threshold) here.
    """
    vcp = get_vcp(vcp_number)
    cut = vcp.cuts[index]
    dt, ptrs, rlen = _layout(cut)
    n = cut.nrays
    a = np.zeros(n, dtype=dt)
    a["size"] = (16 + rlen) // 2
    a["channel"] = 8
    a["type"] = 31
    a["nseg"], a["seg"] = 1, 1
    a["rid"] = st.id.encode()
    a["aznum"] = np.arange(1, n + 1)
    a["rlen"] = rlen
    a["azres"] = 1 if cut.super_res else 2
    status = np.ones(n, np.uint8)
    status[0] = 3 if index == 0 else 0
    status[-1] = 4 if index == len(vcp.cuts) - 1 else 2
    a["status"] = status
    a["elnum"] = index + 1
    a["sector"] = 1
    a["nblocks"] = len(ptrs)
    pt = np.zeros(10, np.uint32)
    pt[: len(ptrs)] = list(ptrs.values())
    a["ptr"] = pt
    a["vol_t"], a["vol_n"], a["vol_len"] = b"R", b"VOL", 44
    a["vol_maj"], a["vol_min"] = 1, 0
    a["lat"], a["lon"] = st.lat, st.lon
    a["height"] = int(round(st.elev_m))
    a["feedhorn"] = FEEDHORN_M
    a["calib"], a["txh"], a["txv"] = -44.6, 700.0, 700.0
    a["zdr_cal"], a["phi0"] = 0.3, 60.0
    a["vcp"] = vcp.number
    a["elv_t"], a["elv_n"], a["elv_len"] = b"R", b"ELV", 12
    a["atmos"], a["elv_cal"] = -12, -42.6
    a["rad_t"], a["rad_n"], a["rad_len"] = b"R", b"RAD", 28
    a["unamb"] = int(round(cut.unambiguous_range_km * 10))
    a["noise_h"], a["noise_v"] = -82.0, -82.3
    a["nyq"] = int(round(cut.nyquist_ms * 100))
    a["cal_h"], a["cal_v"] = -43.2, -42.7
    for m in cut.moments:
        scale, offset = MOMENT_SCALE[m]
        a[f"{m}_t"], a[f"{m}_n"] = b"D", m.ljust(3).encode()
        a[f"{m}_ng"] = cut.ref_gates if m == "REF" else cut.dop_gates
        a[f"{m}_first"] = FIRST_GATE_M
        a[f"{m}_space"] = GATE_SPACING_M
        a[f"{m}_tover"] = 50
        a[f"{m}_snr"] = 16 if m != "REF" else 0
        a[f"{m}_word"] = 8
        a[f"{m}_scale"], a[f"{m}_offset"] = scale, offset
    a.flags.writeable = False
    return a


def _write_words(a: np.ndarray, sw: SweepData) -> None:
    """Write the 8-bit words of every moment of ``sw`` into the radials ``a`` (whose words are zero).

    Only the coarse bins with an echo are computed (most of a sweep is "no data"), with exactly the float32
    operations of :meth:`SweepData.codes`, so the words are identical to it; each bin's word is written to
    its four gates with one unaligned 32-bit store.
    """
    cut = sw.cut
    valid = sw.coarse.valid  # (360, nb) bool, the same for the three moments
    nb = valid.shape[1]
    bins = {m: sw.ngates(m) // weather.COARSE for m in cut.moments}
    nb_out = max(bins.values())
    nb_dop = min(bins.values())
    src = _far_pairing(nb)[:nb_out]
    mask = valid[sw.coarse_az][:, src]
    # echo bins within the Doppler gates first, then the reflectivity-only ones: the Doppler moments use
    # a prefix of the (ray, bin) list
    r, j = np.nonzero(mask[:, :nb_dop])
    n_dop = r.size
    if nb_out > nb_dop:
        r2, j2 = np.nonzero(mask[:, nb_dop:])
        r, j = np.concatenate([r, r2]), np.concatenate([j, j2 + nb_dop])
    if not r.size:
        return
    s = src[j]
    cflat = sw.coarse_az[r] * nb + s
    nflat = r * nb + s
    wide, narrow = _noise(sw.seed)
    itemsize = a.dtype.itemsize
    buf = a.view(np.uint8).reshape(-1)
    fields = {"REF": sw.coarse.dbz, "VEL": sw.coarse.vel, "SW": sw.coarse.sw}
    for m in cut.moments:
        k = r.size if bins[m] == nb_out else n_dop
        table = narrow if m == "SW" else wide
        off = sw.noise_offset[m] % (NOISE_N - sw.nrays * nb)
        v = np.take(fields[m].reshape(-1), cflat[:k]) + np.take(table, nflat[:k] + off)
        if m == "VEL":
            two_vn = np.float32(2.0 * cut.nyquist_ms)
            v = v - two_vn * np.round(v / two_vn)
        scale, offset = MOMENT_SCALE[m]
        c = v * np.float32(scale) + np.float32(offset)
        np.rint(c, out=c)
        rk, jk = r[:k], j[:k]
        gap = np.isnan(c)  # none while the three fields share their "no data" bins (weather's invariant)
        if gap.any():
            c, rk, jk = c[~gap], rk[~gap], jk[~gap]
        word = c.astype(np.uint8).astype(np.uint32) * np.uint32(0x01010101)
        base = a.dtype.fields[f"{m}_data"][1]
        # an unaligned little-endian uint32 view of the gate words: (ray, bin) -> 4 identical bytes
        view = np.ndarray((sw.nrays, bins[m]), dtype="<u4", buffer=buf, offset=base, strides=(itemsize, 4))
        view[rk, jk] = word


_WORK = threading.local()


def _encode_sweep(vol: SynthVolume, sw: SweepData, seq0: int, last_cut: bool) -> np.ndarray:
    """The Message 31 radials of one sweep (CTM + message header + radial) as a structured array."""
    index = sw.elevation_number - 1
    assert vol.vcp.cuts[index] == sw.cut and last_cut == (index == len(vol.vcp.cuts) - 1)
    template = _sweep_template(vol.site, vol.vcp.number, index)
    # one reused buffer per thread and cut: fresh 22 MB per volume would cost page faults, not just a copy
    work = _WORK.__dict__.setdefault("buffers", {})
    a = work.get((vol.vcp.number, index))
    if a is None or a.dtype != template.dtype:
        a = work[(vol.vcp.number, index)] = np.empty_like(template)
    np.copyto(a.view(np.uint8), template.view(np.uint8))  # as bytes: a struct-wise copy is slow
    n = sw.nrays
    dates, mss = sw.time_ms // MS_PER_DAY + 1, sw.time_ms % MS_PER_DAY
    a["seq"] = (seq0 + np.arange(n)) % 65536
    a["hdate"], a["hms"] = dates, mss
    a["cms"], a["cdate"] = mss, dates
    a["az"] = sw.azimuth
    a["el"] = sw.elevation
    _write_words(a, sw)
    return a


def _segment(
    msg_type: int, payload: bytes, seq: int, date: int, ms: int, nseg: int = 1, segno: int = 1
) -> bytes:
    """One 2432-byte metadata segment: CTM + message header + payload, zero padded."""
    assert len(payload) <= RECORD_SEGMENT - 28
    hdr = struct.pack(">HBBHHIHH", (16 + len(payload)) // 2, 8, msg_type, seq, date, ms, nseg, segno)
    return (bytes(12) + hdr + payload).ljust(RECORD_SEGMENT, b"\0")


def _segments(msg_type: int, payload: bytes, seq: int, date: int, ms: int) -> list[bytes]:
    size = 2400
    parts = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
    return [_segment(msg_type, p, seq, date, ms, len(parts), i + 1) for i, p in enumerate(parts)]


def _msg5_payload(vcp: VCP) -> bytes:
    """Message 5 (Table XI): 11-halfword header + 23 halfwords per elevation cut."""
    ncuts = len(vcp.cuts)
    out = struct.pack(">HHHHBBBB10s", 11 + 23 * ncuts, 2, vcp.number, ncuts, 1, 1, 2, 2, b"\0" * 10)
    for c in vcp.cuts:
        rate_code = int(round(360.0 / c.duration_s / (22.5 / 16384.0)))
        waveform = {"CS": 1, "CD": 2, "B": 4}[c.waveform]
        surv_prf = 1 if c.waveform == "CS" else (3 if c.waveform == "B" else 0)
        dop_prf = 0 if c.waveform == "CS" else 7
        out += struct.pack(
            ">HBBBBHH6h" + "HHHH" * 3,
            c.elevation_code,
            2,  # channel configuration: SZ-2 phase coding
            waveform,
            0x0B if c.super_res else 0x00,
            surv_prf,
            15 if c.waveform == "CS" else 0,
            rate_code,
            *([16] * 6),
            *([0, dop_prf, 40 if dop_prf else 0, 0] * 3),
        )
    return out


def _msg2_payload(vcp: VCP) -> bytes:
    """Message 2 RDA status (Table IV): operate, online, super resolution on; 60 halfwords."""
    words = [16, 2, 4, 2, 830, 63, 0x1C, vcp.number, 0, 1910, 4, 2, 0x1F, 0x1A]
    return struct.pack(f">{len(words)}H", *words).ljust(120, b"\0")


def _msg15_payload() -> bytes:
    """Message 15 clutter filter map: date, time, 2 elevation segments x 360 radials x 1 zone (bypass)."""
    out = struct.pack(">HHH", 19000, 600, 2)
    radial = struct.pack(">HHH", 1, 1, 511)
    return out + radial * 720


def _msg18_payload(site: Site) -> bytes:
    """Message 18 RDA adaptation data: identification and site fields, zero elsewhere (4 segments)."""
    head = b"adapt_synth ".ljust(12) + b"RDA " + struct.pack(">f", 19.0) + b"01/01/70"
    body = bytearray(head.ljust(9468, b"\0"))
    body[1400:1404] = site.id.encode()
    return bytes(body)


def _metadata_record(vol: SynthVolume) -> bytes:
    date, ms = mjd_ms(vol.start_ms - 1000)
    seq = (vol.number * 9001) % 65536
    slots = [bytes(RECORD_SEGMENT)] * METADATA_SEGMENTS
    m15 = _segments(15, _msg15_payload(), seq, date - 3, 600 * 60000)
    slots[: len(m15)] = m15
    m18 = _segments(18, _msg18_payload(vol.site), (seq + 1) % 65536, date - 3, 600 * 60000)
    slots[126 : 126 + len(m18)] = m18
    slots[131] = _segment(3, bytes(960), (seq + 2) % 65536, date, ms)
    slots[132] = _segment(5, _msg5_payload(vol.vcp), (seq + 3) % 65536, date, ms)
    slots[133] = _segment(2, _msg2_payload(vol.vcp), (seq + 4) % 65536, date, ms)
    return b"".join(slots[:METADATA_SEGMENTS])


def volume_header(vol: SynthVolume) -> bytes:
    date, ms = mjd_ms(int(vol.sweeps[0].time_ms[0]) if vol.sweeps else vol.start_ms)
    return (
        b"AR2V0006." + b"%03d" % (vol.number % 999 + 1) + struct.pack(">II", date, ms) + vol.site.id.encode()
    )


def _record_views(vol: SynthVolume) -> list:
    """The LDM records before compression as buffers: metadata first, then 120 radials per record.

    The radial buffers are reused by the next call in the same thread: compress or copy them first.
    """
    records: list = [_metadata_record(vol)]
    seq = (vol.number * 9001 + 5) % 65536
    for i, sw in enumerate(vol.sweeps):
        arr = _encode_sweep(vol, sw, seq, i == len(vol.sweeps) - 1)
        seq = (seq + sw.nrays) % 65536
        raw = memoryview(arr.view(np.uint8).reshape(-1))
        step = RADIALS_PER_RECORD * arr.dtype.itemsize
        records.extend(raw[j : j + step] for j in range(0, len(raw), step))
    return records


def uncompressed_records(vol: SynthVolume) -> list[bytes]:
    """The LDM records before compression: metadata first, then 120 radials per record."""
    return [bytes(r) for r in _record_views(vol)]


_POOL: ThreadPoolExecutor | None = None


def _pool(threads: int) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL._max_workers != threads:  # noqa: SLF001
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="synth-bz2")
    return _POOL


def encode_volume(vol: SynthVolume, compresslevel: int = DEFAULT_COMPRESSLEVEL, threads: int = 1) -> bytes:
    """Archive II bytes of ``vol``: volume header + bzip2 LDM records (``threads`` compress in parallel).

    The output does not depend on ``threads``.
    """
    records = _record_views(vol)
    if threads > 1:
        blobs = list(_pool(threads).map(lambda r: bz2.compress(r, compresslevel), records))
    else:
        blobs = [bz2.compress(r, compresslevel) for r in records]
    out = [volume_header(vol)]
    for j, b in enumerate(blobs):
        size = len(b) if j < len(blobs) - 1 else -len(b)
        out.append(struct.pack(">i", size))
        out.append(b)
    return b"".join(out)


def generate_volume(
    site_id: str,
    start_ms: int,
    vcp_number: int = 212,
    seed: int = 0,
    number: int = 0,
    threads: int = 1,
    clear_air_echo: bool = False,
) -> tuple[str, bytes]:
    """Build and encode one volume: ``(key, bytes)``."""
    vol = build_volume(site_id, start_ms, vcp_number, seed, number, clear_air_echo)
    return vol.key, encode_volume(vol, threads=threads)


# ---------------------------------------------------------------------------------------------------------
# many volumes


@dataclass(frozen=True)
class VolumeJob:
    site_id: str
    number: int
    start_ms: int
    vcp: int
    seed: int
    clear_air_echo: bool = False

    @property
    def key(self) -> str:
        return volume_key(self.site_id, self.start_ms)


def plan(
    sites: list[str],
    start_ms: int,
    end_ms: int,
    vcp_number: int = 212,
    seed: int = 0,
    clear_air_echo: bool = False,
) -> list[VolumeJob]:
    """Every volume of ``sites`` starting in ``[start_ms, end_ms)``, site by site, in time order."""
    jobs = []
    for sid in sites:
        st = lookup_site(sid)
        for number, t in volume_schedule(st.id, vcp_number, start_ms, end_ms):
            jobs.append(VolumeJob(st.id, number, t, vcp_number, seed, clear_air_echo))
    return jobs


def run_job(job: VolumeJob) -> tuple[str, bytes]:
    """Build and encode one planned volume (a top-level function, so process pools can run it)."""
    vol = build_volume(job.site_id, job.start_ms, job.vcp, job.seed, job.number, job.clear_air_echo)
    return vol.key, encode_volume(vol)


def generate_many(jobs: list[VolumeJob], workers: int = 1):
    """Yield ``(key, bytes)`` for ``jobs`` in order; ``workers`` > 1 uses that many processes.

    The bytes do not depend on ``workers``.
    """
    if workers <= 1 or len(jobs) < 2:
        for job in jobs:
            yield run_job(job)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        yield from pool.map(run_job, jobs, chunksize=2)
