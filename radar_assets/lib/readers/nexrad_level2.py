"""Fast reader for NEXRAD (WSR-88D) Level II Archive II volumes.

Format reference
----------------
* NOAA ROC, *Interface Control Document for the RDA/RPG*, ICD 2620002 (Build 19.0 and earlier revisions):
  section 3.2.4.17 "Digital Radar Data Generic Format" (Message Type 31, Table XVII-A to XVII-I),
  Table III "Digital Radar Data" (Message Type 1, pre-Build 10 volumes), Table XI "Volume Coverage
  Pattern Data" (Message Type 5) and Table II "Message Header Data".
* NOAA ROC, *Interface Control Document for the Archive II/User*, ICD 2620010: the 24-byte volume
  header record and the LDM "compressed record" layout (a 4-byte big-endian control word giving the
  byte count of a bzip2-compressed record, negative on the last record of a volume).

Layout handled here
-------------------
``[24-byte volume header][records]`` where the records are either

* LDM records: ``[int32 control word][bzip2 stream]`` repeated (every volume since 2008), or
* the uncompressed message stream itself (older volumes, usually distributed whole-file gzipped).

A whole-file gzip wrapper (``.gz`` keys in the archive) is removed first. Decompressing the records
concatenates into one message stream in which every message is preceded by a 12-byte CTM header;
message 31 is variable length (``size`` halfwords), all other messages are fixed 2432-byte frames.

Compatibility contract
----------------------
Values, masks, angles, sweep splitting and metadata are defined to equal those of Py-ART's
``pyart.io.read_nexrad_archive`` (the reference reader the platform used before), which the test
suite checks gate by gate on every real volume in ``../shared/data/level2``:

* a sweep is the set of radials sharing one ``elevation_number`` (in file order); elevation numbers
  with fewer than two radials are not sweeps;
* a gate value is ``(code - offset) / scale`` in float32; codes 0 (below threshold) and 1 (range
  folded) are masked;
* the volume start time is the collection time of the first radial truncated to the second;
* fixed angles come from the Message 5 cut table (Message 31) or the rounded first-radial elevation
  (Message 1).

Speed: records are bzip2-decompressed in a thread pool (``bz2`` releases the GIL), message headers are
located by one pass over the size chain and all per-radial fields are then gathered with numpy fancy
indexing, never one Python object per radial and moment.
"""

from __future__ import annotations

import bz2
import gzip
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

import numpy as np

__all__ = [
    "MOMENTS",
    "Level2DecodeError",
    "Level2Stream",
    "Moment",
    "Sweep",
    "Volume",
    "decompress_level2",
    "read_level2",
    "read_level2_metadata",
]

#: Moment names of ICD 2620002 Table XVII-B, in the order Py-ART lists them.
MOMENTS = ("REF", "VEL", "SW", "ZDR", "PHI", "RHO", "CFP")

#: Units of each moment, for captions and metadata.
MOMENT_UNITS = {
    "REF": "dBZ",
    "VEL": "m/s",
    "SW": "m/s",
    "ZDR": "dB",
    "PHI": "degrees",
    "RHO": "unitless",
    "CFP": "unitless",
}

_VOLUME_HEADER_SIZE = 24
_CTM_SIZE = 12  # Channel Terminal Manager header that precedes every message
_MSG_HEADER_SIZE = 16  # ICD 2620002 Table II
_FRAME_SIZE = 2432  # fixed frame of every message other than 31 (CTM + header + 2404 bytes)

# ICD 2620002 Table XVII-A: message 31 header (up to 10 data block pointers).
_MSG31_DTYPE = np.dtype(
    [
        ("id", "S4"),
        ("collect_ms", ">u4"),
        ("collect_date", ">u2"),
        ("azimuth_number", ">u2"),
        ("azimuth_angle", ">f4"),
        ("compress_flag", "u1"),
        ("spare_0", "u1"),
        ("radial_length", ">u2"),
        ("azimuth_resolution", "u1"),
        ("radial_status", "u1"),
        ("elevation_number", "u1"),
        ("cut_sector", "u1"),
        ("elevation_angle", ">f4"),
        ("radial_blanking", "u1"),
        ("azimuth_mode", "i1"),
        ("block_count", ">u2"),
        ("pointers", ">u4", (10,)),
    ]
)

# ICD 2620002 Table XVII-B: generic moment data block header (data follows).
_MOMENT_DTYPE = np.dtype(
    [
        ("block_type", "S1"),
        ("name", "S3"),
        ("reserved", ">u4"),
        ("ngates", ">u2"),
        ("first_gate", ">i2"),
        ("gate_spacing", ">i2"),
        ("thresh", ">i2"),
        ("snr_thresh", ">i2"),
        ("flags", "u1"),
        ("word_size", "u1"),
        ("scale", ">f4"),
        ("offset", ">f4"),
    ]
)

# ICD 2620002 Table III: message 1 header (the digital radar data follows at the given pointers).
_MSG1_DTYPE = np.dtype(
    [
        ("collect_ms", ">u4"),
        ("collect_date", ">u2"),
        ("unambig_range", ">i2"),
        ("azimuth_angle", ">u2"),
        ("azimuth_number", ">u2"),
        ("radial_status", ">u2"),
        ("elevation_angle", ">u2"),
        ("elevation_number", ">u2"),
        ("sur_range_first", ">u2"),
        ("doppler_range_first", ">u2"),
        ("sur_range_step", ">u2"),
        ("doppler_range_step", ">u2"),
        ("sur_nbins", ">u2"),
        ("doppler_nbins", ">u2"),
        ("cut_sector_num", ">u2"),
        ("calib_const", ">f4"),
        ("sur_pointer", ">u2"),
        ("vel_pointer", ">u2"),
        ("width_pointer", ">u2"),
        ("doppler_resolution", ">u2"),
        ("vcp", ">u2"),
    ]
)

# Message 1 angles are 16-bit binary angle codes (ICD 2620002 Table III note).
_MSG1_ANGLE_SCALE = 180.0 / (4096 * 8.0)
# Message 5 cut angles are 16-bit codes in units of 360/65536 degrees (ICD 2620002 Table XI).
_MSG5_ANGLE_SCALE = 360.0 / 65536.0
# Block names as 24-bit integers so that they can be compared as a numpy array.
_BLOCK_CODES = {name: int.from_bytes(name.ljust(3).encode(), "big") for name in MOMENTS}

# Extra zero bytes after the message stream so that fixed-width windows near its end stay in bounds.
_PAD = 2 * 4096


class Level2DecodeError(ValueError):
    """The bytes are not a complete, decodable Archive II volume (truncated, corrupt or another format)."""


@dataclass
class Moment:
    """One moment (field) of one sweep, kept as raw codes and decoded on demand.

    Attributes
    ----------
    name : str
        ICD moment name (``REF``, ``VEL``, ...).
    codes : numpy.ndarray
        Raw codes, shape ``(rays, gates)``, ``uint8`` or ``uint16``. Code 0 means below threshold,
        code 1 range folded (both masked); rays without this moment and gates past a ray's own gate
        count hold code 1, so they are masked too.
    scale, offset : float
        Decoding ``value = (code - offset) / scale`` in float32.
    first_gate_m : float
        Range from the antenna to the centre of the first gate, metres.
    gate_spacing_m : float
        Distance between gate centres, metres.
    units : str
        Units of the decoded values.
    lut : numpy.ndarray, optional
        Value of every code (NaN where masked) for formats whose codes are not linear (Level 3
        products); when set it replaces ``scale``/``offset``.

    Notes
    -----
    ``data`` is computed on first access and cached, so a caller that only renders (which works on
    codes through lookup tables) never pays for the float32 array.
    """

    name: str
    codes: np.ndarray
    scale: float
    offset: float
    first_gate_m: float
    gate_spacing_m: float
    units: str = ""
    lut: np.ndarray | None = None

    @cached_property
    def data(self) -> np.ma.MaskedArray:
        """Decoded values as a masked float32 array of shape ``(rays, gates)``."""
        if self.lut is not None:
            values = self.lut[self.codes]
            return np.ma.MaskedArray(values, mask=~np.isfinite(values))
        values = (self.codes.astype(np.float32) - np.float32(self.offset)) / np.float32(self.scale)
        return np.ma.MaskedArray(values, mask=self.codes <= 1)

    @property
    def ngates(self) -> int:
        return int(self.codes.shape[1])

    @property
    def ranges_m(self) -> np.ndarray:
        """Range to the centre of every gate, metres (float64)."""
        return self.first_gate_m + self.gate_spacing_m * np.arange(self.ngates, dtype=np.float64)

    def value_lut(self) -> np.ndarray:
        """Float32 value of every possible code (NaN for masked codes 0 and 1)."""
        if self.lut is not None:
            return self.lut.astype(np.float32)
        n = 256 if self.codes.dtype.itemsize == 1 else 65536
        lut = (np.arange(n, dtype=np.float32) - np.float32(self.offset)) / np.float32(self.scale)
        lut[:2] = np.nan
        return lut


@dataclass
class Sweep:
    """One sweep (all radials of one elevation number), rays in collection order.

    Attributes
    ----------
    index : int
        0-based position of the sweep in the volume.
    elevation_number : int
        Elevation number of the radials (1-based cut number in the VCP).
    fixed_angle : float
        Target elevation angle of the cut, degrees.
    elevation, azimuth : numpy.ndarray
        Per-ray float32 angles, degrees; ``azimuth`` in ``[0, 360)``.
    time : numpy.ndarray
        Per-ray float64 seconds since ``Volume.start_time`` (the convention of Py-ART's ``time``).
    start_time : datetime
        UTC collection time of the first ray of the sweep.
    moments : dict[str, Moment]
        Moments present in the sweep; every moment's arrays have ``len(azimuth)`` rows.
    """

    index: int
    elevation_number: int
    fixed_angle: float
    elevation: np.ndarray
    azimuth: np.ndarray
    time: np.ndarray
    start_time: datetime
    moments: dict[str, Moment] = field(default_factory=dict)

    @property
    def nrays(self) -> int:
        return int(self.azimuth.shape[0])


@dataclass
class Volume:
    """A decoded Archive II volume.

    Attributes
    ----------
    site : str
        ICAO id from the volume header (``KLOT``).
    lat, lon, alt_m : float
        Radar location (degrees, degrees, metres above MSL, antenna height included for Message 31).
    vcp : int or None
        Volume coverage pattern number (None when the volume carries no Message 5).
    start_time : datetime
        UTC time of the first radial, truncated to the second.
    sweeps : list[Sweep]
        Sweeps in elevation-number order.
    message_type : int
        31 or 1.
    location_from_site_table : bool
        True when the location came from :mod:`radar_assets.lib.sites` because the volume has none
        (Message 1) rather than from the volume's own data block.
    """

    site: str
    lat: float
    lon: float
    alt_m: float
    vcp: int | None
    start_time: datetime
    sweeps: list[Sweep]
    message_type: int
    location_from_site_table: bool = False


# --------------------------------------------------------------------------------------------------
# Container layer: gzip wrapper, volume header, LDM records
# --------------------------------------------------------------------------------------------------


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _strip_gzip(data: bytes) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except EOFError as exc:
        raise Level2DecodeError(f"gzip stream truncated ({len(data)} bytes): {exc}") from exc
    except (OSError, zlib.error) as exc:
        raise Level2DecodeError(f"gzip data corrupt: {exc}") from exc


def _check_volume_header(data: bytes) -> tuple[str, bool]:
    """Validate the 24-byte volume header; return the ICAO id and whether the records are bzip2."""
    head = bytes(data[:_VOLUME_HEADER_SIZE])
    if not (head.startswith(b"AR2V") or head.startswith(b"ARCHIVE2")):
        raise Level2DecodeError(f"not an Archive II file: header {head[:12]!r}")
    if len(data) < _VOLUME_HEADER_SIZE + _CTM_SIZE:
        raise Level2DecodeError(f"truncated Archive II file: only {len(data)} bytes")
    icao = head[20:24].decode("ascii", "replace").strip("\x00 ")
    marker = bytes(data[_VOLUME_HEADER_SIZE + 4 : _VOLUME_HEADER_SIZE + 6])
    if marker == b"BZ":
        return icao, True
    # Uncompressed volumes start with a CTM header whose bytes 4-5 are zero or the frame size 2432.
    if marker in (b"\x00\x00", b"\t\x80"):
        return icao, False
    raise Level2DecodeError(f"unknown compression record {marker!r} at byte {_VOLUME_HEADER_SIZE + 4}")


def _split_ldm_records(data: bytes) -> list[memoryview]:
    """Cut the bzip2 LDM records out of the file by their control words (no decompression)."""
    view = memoryview(data)
    records = []
    pos = _VOLUME_HEADER_SIZE
    end = len(data)
    while pos < end:
        if pos + 4 > end:
            raise Level2DecodeError(f"truncated LDM record at byte {pos}: incomplete control word")
        (size,) = struct.unpack_from(">i", data, pos)
        size = abs(size)  # negative marks the last record of a volume
        if size == 0:
            raise Level2DecodeError(f"empty LDM record at byte {pos}")
        start = pos + 4
        if start + size > end:
            raise Level2DecodeError(
                f"truncated LDM record at byte {pos}: control word announces {size} bytes, "
                f"only {end - start} remain"
            )
        if view[start : start + 3] != b"BZh":
            raise Level2DecodeError(f"LDM record {len(records)} at byte {pos} is not bzip2 data")
        records.append(view[start : start + size])
        pos = start + size
    return records


def _decompress_record(index: int, record: memoryview) -> bytes:
    out = []
    rest = bytes(record)
    # A record is normally one bzip2 stream; tolerate several back to back (as Py-ART does).
    while rest:
        dec = bz2.BZ2Decompressor()
        try:
            out.append(dec.decompress(rest))
        except (OSError, ValueError) as exc:
            raise Level2DecodeError(f"bzip2 data corrupt in record {index}: {exc}") from exc
        if not dec.eof:
            raise Level2DecodeError(f"bzip2 data truncated in record {index}")
        rest = dec.unused_data
    return b"".join(out)


def _decompress_records(records: list[memoryview]) -> list[bytes]:
    if len(records) <= 1:
        return [_decompress_record(i, r) for i, r in enumerate(records)]
    with ThreadPoolExecutor(_workers()) as pool:
        return list(pool.map(_decompress_record, range(len(records)), records))


def _message_stream(data: bytes) -> tuple[str, bytes]:
    """Return the ICAO id and the message stream (first message header at offset 0, zero padded)."""
    data = _strip_gzip(data)
    icao, compressed = _check_volume_header(data)
    if compressed:
        parts = _decompress_records(_split_ldm_records(data))
        if not parts:
            raise Level2DecodeError("Archive II file holds no records")
        first = parts[0]
        # The first decompressed record begins with the CTM of the first message; drop it so every
        # message header is followed (not preceded) by the next message's CTM, as in the stream.
        parts[0] = first[_CTM_SIZE:]
        parts.append(bytes(_PAD))
        return icao, b"".join(parts)
    return icao, bytes(data[_VOLUME_HEADER_SIZE + _CTM_SIZE :]) + bytes(_PAD)


@dataclass
class _Index:
    """Offsets of the messages the reader needs, found by walking the message size chain."""

    msg31: np.ndarray
    msg1: np.ndarray
    msg5: int | None


def _index_messages(buf: bytes) -> _Index:
    end = len(buf) - _PAD
    pos = 0
    msg31: list[int] = []
    msg1: list[int] = []
    msg5 = None
    unpack = struct.Struct(">HBB").unpack_from
    while pos < end:
        if pos + _MSG_HEADER_SIZE > end:
            raise Level2DecodeError(f"truncated message header at byte {pos} of the message stream")
        size, _channels, mtype = unpack(buf, pos)
        if mtype == 31:
            length = size * 2
            if length < _MSG_HEADER_SIZE + 68:
                raise Level2DecodeError(f"corrupt message 31 at byte {pos}: size {length} bytes")
            if pos + length > end:
                raise Level2DecodeError(
                    f"truncated message 31 at byte {pos}: needs {length} bytes, {end - pos} remain"
                )
            msg31.append(pos)
            pos += length + _CTM_SIZE
        elif mtype == 29:
            # Model data (ICD Table XVIII): variable length, possibly a 32-bit size in the segment fields.
            if size == 65535:
                seg, num = struct.unpack_from(">HH", buf, pos + 12)
                size = seg << 16 | num
            pos += _MSG_HEADER_SIZE + size
        else:
            # Fixed-frame messages: the frame must be complete (the next message's CTM may be absent
            # at the very end of the stream).
            if pos + _FRAME_SIZE - _CTM_SIZE > end:
                raise Level2DecodeError(
                    f"truncated message {mtype} at byte {pos}: needs {_FRAME_SIZE - _CTM_SIZE} bytes, "
                    f"{end - pos} remain"
                )
            if mtype == 1:
                msg1.append(pos)
            elif mtype == 5 and msg5 is None:
                msg5 = pos
            pos += _FRAME_SIZE
    return _Index(np.asarray(msg31, dtype=np.int64), np.asarray(msg1, dtype=np.int64), msg5)


def _gather(arr: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """Rows of ``width`` bytes starting at ``offsets`` (one copy, no Python loop)."""
    windows = np.lib.stride_tricks.sliding_window_view(arr, width)
    return windows[offsets]


def _read_msg5(buf: bytes, pos: int | None) -> tuple[int | None, np.ndarray]:
    """VCP number and cut elevation angles (degrees, float32) from Message 5 (ICD Table XI)."""
    if pos is None:
        return None, np.zeros(0, np.float32)
    body = pos + _MSG_HEADER_SIZE
    _size, _ptype, pattern, ncuts = struct.unpack_from(">HHHH", buf, body)
    # Each cut descriptor is 46 bytes after a 22-byte header; angle is its first halfword.
    if ncuts > 64:
        raise Level2DecodeError(f"corrupt message 5: {ncuts} cuts")
    codes = np.array([struct.unpack_from(">H", buf, body + 22 + 46 * i)[0] for i in range(ncuts)])
    angles = np.array([np.float32(c * _MSG5_ANGLE_SCALE) for c in codes], dtype=np.float32)
    angles = np.where(angles > 180, angles - np.float32(360.0), angles).astype(np.float32)
    return int(pattern), angles


def _start_time(days: int, ms: int) -> datetime:
    # Julian date 1 is 1970-01-01 (ICD 2620002 Table II); Py-ART truncates to whole seconds.
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=int(days) - 1, seconds=int(ms / 1000.0))


def _split_sweeps(elev_numbers: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Radial indices of each sweep: one per elevation number present with at least two radials."""
    out = []
    if elev_numbers.size == 0:
        return out
    order = np.argsort(elev_numbers, kind="stable")
    sorted_nums = elev_numbers[order]
    numbers, starts, counts = np.unique(sorted_nums, return_index=True, return_counts=True)
    for num, start, count in zip(numbers, starts, counts, strict=True):
        if num < 1 or count < 2:
            continue
        out.append((int(num), order[start : start + count]))
    return out


# --------------------------------------------------------------------------------------------------
# Message 31 volumes
# --------------------------------------------------------------------------------------------------


class _Msg31:
    def __init__(self, buf: bytes, offsets: np.ndarray):
        self.arr = np.frombuffer(buf, dtype=np.uint8)
        self.body = offsets + _MSG_HEADER_SIZE
        raw = _gather(self.arr, self.body, _MSG31_DTYPE.itemsize)
        self.hdr = np.ascontiguousarray(raw).view(_MSG31_DTYPE)[:, 0]
        # Block pointers beyond block_count overlap the first data block: ignore them.
        count = np.minimum(self.hdr["block_count"].astype(np.int64), 10)
        ptrs = self.hdr["pointers"].astype(np.int64)
        valid = (np.arange(10)[None, :] < count[:, None]) & (ptrs > 0)
        sizes = _gather(self.arr, offsets, 2).astype(np.int64)
        body_len = (sizes[:, 0] << 8 | sizes[:, 1]) * 2 - _MSG_HEADER_SIZE
        valid &= ptrs + 4 <= body_len[:, None]
        self.ptrs = np.where(valid, ptrs, 0)
        name_at = self.body[:, None] + self.ptrs + 1
        names = self.arr[name_at].astype(np.int64) << 16
        names |= self.arr[name_at + 1].astype(np.int64) << 8
        names |= self.arr[name_at + 2].astype(np.int64)
        self.names = np.where(valid, names, -1)

    def block_offsets(self, name: str, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Absolute offset of the named block per radial (-1 where the radial lacks it)."""
        if name in _BLOCK_CODES:
            code = _BLOCK_CODES[name]
        else:
            code = int.from_bytes(name.encode(), "big")
        hit = self.names[rows] == code
        has = hit.any(axis=1)
        col = hit.argmax(axis=1)
        ptr = self.ptrs[rows][np.arange(hit.shape[0]), col]
        return np.where(has, self.body[rows] + ptr, -1)

    def volume_block(self) -> tuple[float, float, float, int]:
        off = int(self.block_offsets("VOL", slice(0, 1))[0])
        if off < 0:
            raise Level2DecodeError("message 31 without a volume data block (no site location)")
        # ICD 2620002 Table XVII-E: lat, lon (float32), site height (int16), feedhorn height (uint16).
        lat, lon, height, feedhorn = struct.unpack_from(">ffhH", self.arr, off + 8)
        (vcp,) = struct.unpack_from(">H", self.arr, off + 40)
        return float(lat), float(lon), float(height + feedhorn), int(vcp)

    def moment(self, name: str, rows: np.ndarray) -> Moment | None:
        offs = self.block_offsets(name, rows)
        present = offs >= 0
        if not present.any():
            return None
        blocks = np.ascontiguousarray(_gather(self.arr, np.where(present, offs, 0), 28)).view(_MOMENT_DTYPE)[
            :, 0
        ]
        first = int(np.argmax(present))
        word = int(blocks["word_size"][first])
        if word not in (8, 16):
            raise Level2DecodeError(f"unsupported {name} word size {word} bits")
        ngates = np.where(present, blocks["ngates"].astype(np.int64), 0)
        # Rays whose word size differs from the sweep's cannot share one array; treat them as absent.
        ngates = np.where(blocks["word_size"] == word, ngates, 0)
        width = int(ngates.max())
        nbytes = width * (word // 8)
        if nbytes > _PAD:
            raise Level2DecodeError(f"corrupt {name} block: {width} gates")
        raw = _gather(self.arr, np.where(present, offs + 28, 0), nbytes)
        if word == 8:
            codes = raw.copy()
        else:
            codes = np.ascontiguousarray(raw).view(">u2").astype(np.uint16)
        short = ngates < width
        if short.any():
            gate = np.arange(width)[None, :]
            codes[gate >= ngates[:, None]] = 1
        return Moment(
            name=name,
            codes=codes,
            scale=float(blocks["scale"][first]),
            offset=float(blocks["offset"][first]),
            first_gate_m=float(blocks["first_gate"][first]),
            gate_spacing_m=float(blocks["gate_spacing"][first]),
            units=MOMENT_UNITS.get(name, ""),
        )


def _volume_31(icao, buf, index, moments, sweeps_wanted) -> Volume:
    m = _Msg31(buf, index.msg31)
    hdr = m.hdr
    vcp, cut_angles = _read_msg5(buf, index.msg5)
    lat, lon, alt, _vol_vcp = m.volume_block()
    days = hdr["collect_date"].astype(np.int64)
    ms = hdr["collect_ms"].astype(np.int64)
    start = _start_time(days[0], ms[0])
    t0 = int(ms[0] / 1000.0)
    times = ms / 1000.0 - t0 + (days - days[0]) * 86400.0
    sweeps = []
    for num, rows in _split_sweeps(hdr["elevation_number"].astype(np.int64)):
        k = len(sweeps)
        if sweeps_wanted is not None and k not in sweeps_wanted:
            sweeps.append(None)
            continue
        fixed = float(cut_angles[num - 1]) if num - 1 < cut_angles.size else 0.0
        sweep = Sweep(
            index=k,
            elevation_number=num,
            fixed_angle=fixed,
            elevation=hdr["elevation_angle"][rows].astype(np.float32),
            azimuth=hdr["azimuth_angle"][rows].astype(np.float32),
            time=times[rows],
            start_time=_start_time(days[rows[0]], 0) + timedelta(milliseconds=int(ms[rows[0]])),
        )
        for name in moments:
            mom = m.moment(name, rows)
            if mom is not None:
                sweep.moments[name] = mom
        sweeps.append(sweep)
    return Volume(
        site=icao,
        lat=lat,
        lon=lon,
        alt_m=alt,
        vcp=vcp,
        start_time=start,
        sweeps=[s for s in sweeps if s is not None],
        message_type=31,
    )


# --------------------------------------------------------------------------------------------------
# Message 1 volumes
# --------------------------------------------------------------------------------------------------

# (moment, pointer field, gate count field, first gate field, spacing field, scale, offset)
_MSG1_MOMENTS = (
    ("REF", "sur_pointer", "sur_nbins", "sur_range_first", "sur_range_step", 2.0, 66.0),
    ("VEL", "vel_pointer", "doppler_nbins", "doppler_range_first", "doppler_range_step", 2.0, 129.0),
    ("SW", "width_pointer", "doppler_nbins", "doppler_range_first", "doppler_range_step", 2.0, 129.0),
)


def _msg1_moment(arr, hdr, offsets, rows, spec) -> Moment | None:
    name, pfield, nfield, ffield, sfield, scale, offset = spec
    h = hdr[rows]
    ptr = h[pfield].astype(np.int64)
    present = ptr > 0
    if not present.any():
        return None
    ngates = np.where(present, h[nfield].astype(np.int64), 0)
    # Data cannot extend past the fixed 2432-byte frame of the message.
    limit = _FRAME_SIZE - _CTM_SIZE - _MSG_HEADER_SIZE - ptr
    ngates = np.minimum(ngates, np.maximum(limit, 0))
    width = int(ngates.max())
    if width == 0:
        return None
    start = np.where(present, offsets[rows] + _MSG_HEADER_SIZE + ptr, 0)
    codes = _gather(arr, start, width).copy()
    codes[np.arange(width)[None, :] >= ngates[:, None]] = 1
    first = int(np.argmax(present))
    first_gate = int(h[ffield][first])
    if first_gate > 2**15:  # stored as a two's-complement halfword
        first_gate -= 2**16
    if name == "VEL" and int(h["doppler_resolution"][first]) == 4:
        scale = 1.0  # 1 m/s velocity resolution (ICD Table III)
    return Moment(
        name=name,
        codes=codes,
        scale=scale,
        offset=offset,
        first_gate_m=float(first_gate),
        gate_spacing_m=float(h[sfield][first]),
        units=MOMENT_UNITS[name],
    )


def _volume_1(icao, buf, index, moments, sweeps_wanted, site_hint) -> Volume:
    arr = np.frombuffer(buf, dtype=np.uint8)
    offsets = index.msg1
    raw = _gather(arr, offsets + _MSG_HEADER_SIZE, _MSG1_DTYPE.itemsize)
    hdr = np.ascontiguousarray(raw).view(_MSG1_DTYPE)[:, 0]
    vcp, _cuts = _read_msg5(buf, index.msg5)
    days = hdr["collect_date"].astype(np.int64)
    ms = hdr["collect_ms"].astype(np.int64)
    start = _start_time(days[0], ms[0])
    t0 = int(ms[0] / 1000.0)
    times = ms / 1000.0 - t0 + (days - days[0]) * 86400.0
    specs = [s for s in _MSG1_MOMENTS if s[0] in moments]
    sweeps = []
    for num, rows in _split_sweeps(hdr["elevation_number"].astype(np.int64)):
        k = len(sweeps)
        if sweeps_wanted is not None and k not in sweeps_wanted:
            sweeps.append(None)
            continue
        elev = (hdr["elevation_angle"][rows] * _MSG1_ANGLE_SCALE).astype(np.float32)
        sweep = Sweep(
            index=k,
            elevation_number=num,
            fixed_angle=float(np.round(np.float32(hdr["elevation_angle"][rows[0]] * _MSG1_ANGLE_SCALE), 1)),
            elevation=elev,
            azimuth=(hdr["azimuth_angle"][rows] * _MSG1_ANGLE_SCALE).astype(np.float32),
            time=times[rows],
            start_time=_start_time(days[rows[0]], 0) + timedelta(milliseconds=int(ms[rows[0]])),
        )
        for spec in specs:
            mom = _msg1_moment(arr, hdr, offsets, rows, spec)
            if mom is not None:
                sweep.moments[spec[0]] = mom
        sweeps.append(sweep)
    # Message 1 carries no site location (ICD Table III): take it from the site table.
    lat, lon, alt, from_table = _site_location(site_hint or icao)
    return Volume(
        site=icao or (site_hint or "").strip().upper(),
        lat=lat,
        lon=lon,
        alt_m=alt,
        vcp=vcp,
        start_time=start,
        sweeps=[s for s in sweeps if s is not None],
        message_type=1,
        location_from_site_table=from_table,
    )


def _site_location(site_id: str | None) -> tuple[float, float, float, bool]:
    """Location from the site table (Message 1 volumes); zeros, as Py-ART gives, when unknown."""
    sid = (site_id or "").strip().upper()
    if not sid:
        return 0.0, 0.0, 0.0, False
    from radar_assets.lib.sites import UnknownSiteError, site

    try:
        s = site(sid[:4])
    except UnknownSiteError:
        return 0.0, 0.0, 0.0, False
    return s.lat, s.lon, s.elev_m, True


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Level2Stream:
    """A volume's decompressed message stream, what every read of it starts from.

    Decompressing the bzip2 records is ~90% of the time of :func:`read_level2` and all of
    :func:`read_level2_metadata`, so a caller that reads one volume twice (the metadata at ingest, the moments
    at render) decompresses once and keeps this (:class:`radar_assets.lib.readers.stream_cache.StreamCache`).
    Both readers accept it in place of the file's bytes and give identical results.
    """

    icao: str
    buf: bytes  # first message header at offset 0, followed by _PAD zero bytes


def decompress_level2(data: bytes) -> Level2Stream:
    """Remove the gzip wrapper and decompress the bzip2 records of an Archive II file.

    Raises
    ------
    Level2DecodeError
        As :func:`read_level2` for a file that is not Archive II, truncated or corrupt.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"read_level2 expects bytes, got {type(data).__name__}")
    icao, buf = _message_stream(bytes(data) if isinstance(data, memoryview) else data)
    return Level2Stream(icao, buf)


def _decode(data: bytes | Level2Stream) -> tuple[str, bytes, _Index]:
    stream = data if isinstance(data, Level2Stream) else decompress_level2(data)
    icao, buf = stream.icao, stream.buf
    index = _index_messages(buf)
    if index.msg31.size == 0 and index.msg1.size == 0:
        raise Level2DecodeError("no radial messages (type 31 or 1) in the volume")
    return icao, buf, index


def read_level2(
    data: bytes | Level2Stream,
    moments: list[str] | tuple[str, ...] | None = None,
    *,
    site_hint: str | None = None,
    sweeps: list[int] | None = None,
) -> Volume:
    """Decode an Archive II volume.

    Parameters
    ----------
    data : bytes or Level2Stream
        The whole file: plain, whole-file gzip (``.gz``) or with bzip2 LDM records; or its
        :func:`decompress_level2` stream.
    moments : sequence of str, optional
        Moments to decode (``REF``, ``VEL``, ``SW``, ``ZDR``, ``PHI``, ``RHO``, ``CFP``); all when None.
    site_hint : str, optional
        Site id (e.g. from the file name) used to locate Message 1 volumes, which carry no location;
        the volume header's ICAO id is used when it is not given.
    sweeps : list of int, optional
        0-based sweep indices to decode (all when None). Skipped sweeps are absent from the result,
        the others keep their ``index``.

    Returns
    -------
    Volume
        Sweeps in elevation-number order; each holds only the requested moments it carries.

    Raises
    ------
    Level2DecodeError
        Not an Archive II file, a truncated file (mid-record or mid-message), corrupt bzip2 or gzip
        data, or a volume without radials. The message names the problem and where it was found.
    """
    wanted = MOMENTS if moments is None else tuple(m.upper() for m in moments)
    unknown = [m for m in wanted if m not in MOMENTS]
    if unknown:
        raise ValueError(f"unknown moment(s) {unknown}; expected some of {MOMENTS}")
    icao, buf, index = _decode(data)
    sweep_set = None if sweeps is None else set(sweeps)
    if index.msg31.size:
        return _volume_31(icao, buf, index, wanted, sweep_set)
    return _volume_1(icao, buf, index, wanted, sweep_set, site_hint)


def read_level2_metadata(data: bytes | Level2Stream, *, site_hint: str | None = None) -> dict:
    """Volume metadata without decoding any moment data.

    Parameters
    ----------
    data : bytes or Level2Stream
        The whole file (plain, gzip or bzip2 records), or its :func:`decompress_level2` stream.
    site_hint : str, optional
        Site id (e.g. from the file name), used when the volume header's ICAO id is blank (some
        Message 1 volumes) and to locate Message 1 volumes from the site table.

    Returns
    -------
    dict
        ``site`` (ICAO id, Py-ART's ``metadata['instrument_name']``), ``start_time`` (UTC datetime of
        the first radial truncated to the second, the base of Py-ART's ``time['units']``), ``vcp``
        (int or None, ``metadata['vcp_pattern']``), ``sweep_count`` (``nsweeps``), ``fixed_angles``
        (list of float, ``fixed_angle['data']``), ``elevations`` (same list, alias), ``message_type``
        (31 or 1), ``radial_count``, and the radar location ``lat``, ``lon``, ``alt_m`` with
        ``location_from_site_table`` (as in :class:`Volume`; zeros when a Message 1 volume's site is
        unknown). ``site`` is the header id stripped of blanks, or ``site_hint`` when it is blank.

    Raises
    ------
    Level2DecodeError
        As :func:`read_level2`. Every record is decompressed because the sweep count depends on the
        elevation number of every radial.
    """
    icao, buf, index = _decode(data)
    arr = np.frombuffer(buf, dtype=np.uint8)
    vcp, cut_angles = _read_msg5(buf, index.msg5)
    if index.msg31.size:
        body = index.msg31 + _MSG_HEADER_SIZE
        hdr = np.ascontiguousarray(_gather(arr, body, 32)).view(_msg31_head())[:, 0]
        split = _split_sweeps(hdr["elevation_number"].astype(np.int64))
        fixed = [float(cut_angles[n - 1]) if n - 1 < cut_angles.size else 0.0 for n, _ in split]
        mtype = 31
        lat, lon, alt, _ = _Msg31(buf, index.msg31[:1]).volume_block()
        from_table = False
    else:
        body = index.msg1 + _MSG_HEADER_SIZE
        hdr = np.ascontiguousarray(_gather(arr, body, _MSG1_DTYPE.itemsize)).view(_MSG1_DTYPE)[:, 0]
        split = _split_sweeps(hdr["elevation_number"].astype(np.int64))
        fixed = [
            float(np.round(np.float32(hdr["elevation_angle"][rows[0]] * _MSG1_ANGLE_SCALE), 1))
            for _, rows in split
        ]
        mtype = 1
        lat, lon, alt, from_table = _site_location(site_hint or icao)
    return {
        "site": icao or (site_hint or "").strip().upper(),
        "start_time": _start_time(hdr["collect_date"][0], hdr["collect_ms"][0]),
        "vcp": vcp,
        "sweep_count": len(split),
        "fixed_angles": fixed,
        "elevations": list(fixed),
        "message_type": mtype,
        "radial_count": int(hdr.shape[0]),
        "lat": lat,
        "lon": lon,
        "alt_m": alt,
        "location_from_site_table": from_table,
    }


def _msg31_head() -> np.dtype:
    """The first 32 bytes of the message 31 header (everything before the block pointers)."""
    names = [n for n in _MSG31_DTYPE.names if n != "pointers"]
    return np.dtype([(n, _MSG31_DTYPE.fields[n][0]) for n in names])
