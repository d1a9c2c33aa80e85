"""A fast fitacf validator: one walk over the DMAP bytes, no Python object per field.

The listener must validate every record at thousands of records per second on a shared core. darn-dmap's
``read_fitacf`` (the reference reader, kept as the test oracle) builds a dict of numpy arrays per record
(~70-90 us); :func:`scan_record` instead walks the record's bytes once (~25 us), checking exactly what
makes darn-dmap refuse a record, and keeps only the offsets of the fields the feed needs. The echo block
(:func:`radar_assets.lib.feed.dmap_records.pack_echoes`'s layout) is then cut straight out of the record:
fitacf fixes the types of ``slist`` (i16), ``v``/``p_l``/``w_l``/``elv`` (f32) and ``gflg`` (i8), and DMAP is
little-endian, so their bytes are already the block's bytes.

A DMAP record is ``code i32 | size i32 | n_scalars i32 | n_arrays i32`` then ``n_scalars`` scalars
(``name\\0 | type i8 | value``; strings NUL-terminated) and ``n_arrays`` arrays
(``name\\0 | type i8 | ndims i32 | dims i32[ndims] | values``); ``size`` counts the whole record.

What is refused (``RecordError.reason``, the same as darn-dmap + ``check_record`` give):

- ``bad_dmap``: no record; a record whose ``size`` does not match its fields or runs past the bytes; an
  unknown type code; a name or string without its NUL or not UTF-8; a negative count or dimension; an array
  with no dimension; a field fitacf does not define; a fitacf field missing (required
  scalars and ``ptab``/``ltab``/``pwr0``) or of another type; the per-range vectors of different shapes;
  trailing bytes that are not a whole record.
- ``multiple_records``: two or more whole records.
- ``missing_fields``: ``slist`` without one of ``v``, ``p_l``, ``w_l``, ``gflg``.
- ``bad_time``: the time fields do not form a valid instant (:func:`record_time_us`'s rules).

``radar_assets_tests/feed/test_fitacf_scan.py`` checks the verdicts and the fields against darn-dmap on real
and synthetic records and on many kinds of corruption.
"""

from __future__ import annotations

import struct

import numpy as np

from radar_assets.lib.feed.dmap_records import ECHO_HEAD, RecordError, record_time_us

# DMAP type code -> value size in bytes (9 = NUL-terminated string).
SIZES = {1: 1, 2: 2, 3: 4, 4: 4, 8: 8, 10: 8, 16: 1, 17: 2, 18: 4, 19: 8}
CHAR, SHORT, INT, FLOAT, STRING = 1, 2, 3, 4, 9

# fitacf's fields and their DMAP types (darn-dmap's fitacf format: src/formats/fitacf.rs).
_S, _I, _F, _C, _T = SHORT, INT, FLOAT, CHAR, STRING
SCALARS_REQUIRED = {
    "radar.revision.major": _C, "radar.revision.minor": _C, "origin.code": _C, "origin.time": _T,
    "origin.command": _T, "cp": _S, "stid": _S, "time.yr": _S, "time.mo": _S, "time.dy": _S, "time.hr": _S,
    "time.mt": _S, "time.sc": _S, "time.us": _I, "txpow": _S, "nave": _S, "atten": _S, "lagfr": _S,
    "smsep": _S, "ercod": _S, "stat.agc": _S, "stat.lopwr": _S, "noise.search": _F, "noise.mean": _F,
    "channel": _S, "bmnum": _S, "bmazm": _F, "scan": _S, "offset": _S, "rxrise": _S, "intt.sc": _S,
    "intt.us": _I, "txpl": _S, "mpinc": _S, "mppul": _S, "mplgs": _S, "nrang": _S, "frang": _S, "rsep": _S,
    "xcf": _S, "tfreq": _S, "mxpwr": _I, "lvmax": _I, "combf": _T, "fitacf.revision.major": _I,
    "fitacf.revision.minor": _I, "noise.sky": _F, "noise.lag0": _F, "noise.vel": _F,
}  # fmt: skip
SCALARS_OPTIONAL = {"mplgexs": _S, "ifmode": _S, "algorithm": _T, "tdiff": _F}
VECTORS_REQUIRED = {"ptab": _S, "ltab": _S, "pwr0": _F}
#: The per-range vectors: all optional, all of one shape when present.
VECTORS_MATCHED = {
    "slist": _S, "nlag": _S, "qflg": _C, "gflg": _C, "p_l": _F, "p_l_e": _F, "p_s": _F, "p_s_e": _F,
    "v": _F, "v_e": _F, "w_l": _F, "w_l_e": _F, "w_s": _F, "w_s_e": _F, "sd_l": _F, "sd_s": _F, "sd_phi": _F,
    "x_qflg": _C, "x_gflg": _C, "x_p_l": _F, "x_p_l_e": _F, "x_p_s": _F, "x_p_s_e": _F, "x_v": _F,
    "x_v_e": _F, "x_w_l": _F, "x_w_l_e": _F, "x_w_s": _F, "x_w_s_e": _F, "phi0": _F, "phi0_e": _F,
    "elv": _F, "elv_fitted": _F, "elv_error": _F, "elv_low": _F, "elv_high": _F, "x_sd_l": _F,
    "x_sd_s": _F, "x_sd_phi": _F,
}  # fmt: skip
_SCALAR_TYPES = {k.encode(): v for k, v in {**SCALARS_REQUIRED, **SCALARS_OPTIONAL}.items()}
_VECTOR_TYPES = {k.encode(): v for k, v in {**VECTORS_REQUIRED, **VECTORS_MATCHED}.items()}
_MATCHED = frozenset(k.encode() for k in VECTORS_MATCHED)
_REQUIRED_SCALARS = frozenset(k.encode() for k in SCALARS_REQUIRED)
_REQUIRED_VECTORS = frozenset(k.encode() for k in VECTORS_REQUIRED)
_ECHO_NEEDED = (b"v", b"p_l", b"w_l", b"gflg")
_HEAD = struct.Struct("<iiii")
_I32 = struct.Struct("<i")
_SCALAR_STRUCT = {t: struct.Struct(f) for t, f in {CHAR: "<b", SHORT: "<h", INT: "<i", FLOAT: "<f"}.items()}
_WANTED = (
    "stid", "time.yr", "time.mo", "time.dy", "time.hr", "time.mt", "time.sc", "time.us",
    "bmnum", "scan", "channel", "tfreq", "noise.sky",
)  # fmt: skip
_FLAG = bytes([0] + [1] * 255)  # gflg != 0, as pack_echoes stores it


def _bad(detail: str) -> RecordError:
    return RecordError("bad_dmap", detail)


class _Layout:
    """The structure of one validated record: which bytes must be equal for another record to share it."""

    __slots__ = ("idx", "expected", "strings", "first", "wanted", "names", "echo")

    def __init__(self, data: bytes, runs: list[tuple[int, int]], strings, scalars, arrays):
        self.idx = np.concatenate([np.arange(a, b, dtype=np.intp) for a, b in runs])
        self.expected = np.frombuffer(data, np.uint8)[self.idx].tobytes()
        self.strings = strings  # (content start, NUL position) of each string scalar
        # One struct reads every wanted scalar: their types and offsets are the layout's (pad bytes between).
        fields = sorted((scalars[name.encode()], name) for name in _WANTED)
        fmt, pos = "<", fields[0][0]
        for off, _name in fields:
            code = _SCALAR_STRUCT[data[off - 1]].format[1:]
            fmt += f"{off - pos}x{code}" if off > pos else code
            pos = off + struct.calcsize("<" + code)
        self.first = fields[0][0]
        self.wanted = struct.Struct(fmt)
        self.names = [name for _off, name in fields]
        self.echo = _echo_layout(arrays)

    def matches(self, data: bytes) -> bool:
        if np.frombuffer(data, np.uint8)[self.idx].tobytes() != self.expected:
            return False
        find = data.find
        return all(find(b"\x00", a, b) < 0 for a, b in self.strings)


def _echo_layout(arrays) -> tuple | None | str:
    """(n, slist offset, v, p_l, w_l, gflg, elv offset or None); None without slist; a str: what is missing."""
    slist = arrays.get(b"slist")
    if slist is None:
        return None
    absent = [k.decode() for k in _ECHO_NEEDED if k not in arrays]
    if absent:
        return f"slist present but missing {', '.join(absent)}"
    n = _count(slist[1])
    elv = arrays.get(b"elv")
    return (n, slist[0], *(arrays[k][0] for k in _ECHO_NEEDED), elv[0] if elv else None)


def _walk(data: bytes, start: int, runs: list | None = None, strings: list | None = None):
    """Check one DMAP record at ``start``; returns its end, scalar value offsets, array (data offset, dims).

    With ``runs``/``strings`` it also notes the byte ranges that decided the walk (names, NULs, type codes,
    counts, dimensions) and the string contents (which must hold no NUL): a record equal to this one on
    those ranges walks the same way.
    """
    n = len(data)
    if start + 16 > n:
        raise _bad(f"{n - start} bytes left, less than a record header")
    _code, size, n_scalars, n_arrays = _HEAD.unpack_from(data, start)
    end = start + size
    if size < 16 or end > n:
        raise _bad(f"record size {size} at byte {start} does not fit the {n - start} bytes left")
    if n_scalars < 0 or n_arrays < 0:
        raise _bad(f"negative field counts ({n_scalars} scalars, {n_arrays} arrays)")
    note = runs is not None
    if note:
        runs.append((start, start + 16))
    find = data.find
    sizes = SIZES
    scalars: dict[bytes, int] = {}
    arrays: dict[bytes, tuple[int, tuple[int, ...]]] = {}
    types: dict[bytes, int] = {}
    pos = start + 16
    for _ in range(n_scalars):
        z = find(b"\x00", pos, end)
        if z < 0 or z + 1 >= end:
            raise _bad(f"scalar name at byte {pos} runs past the record")
        name = data[pos:z]
        t = data[z + 1]
        if note:
            runs.append((pos, z + 2))
        pos = z + 2
        if t == STRING:
            z = find(b"\x00", pos, end)
            if z < 0:
                raise _bad(f"string {name!r} runs past the record")
            if note:
                strings.append((pos, z))
                runs.append((z, z + 1))
            scalars[name] = -1
            types[name] = t
            arrays.pop(name, None)
            pos = z + 1
        else:
            w = sizes.get(t)
            if w is None:
                raise _bad(f"scalar {name!r} has unknown type code {t}")
            scalars[name] = pos
            pos += w
        types[name] = t  # a field given twice: the last one counts, as in darn-dmap
        arrays.pop(name, None)
    for _ in range(n_arrays):
        z = find(b"\x00", pos, end)
        if z < 0 or z + 6 > end:
            raise _bad(f"array name at byte {pos} runs past the record")
        name = data[pos:z]
        t = data[z + 1]
        nd = _I32.unpack_from(data, z + 2)[0]
        if nd <= 0 or z + 6 + 4 * nd > end:
            raise _bad(f"array {name!r} has {nd} dimensions")
        dims = struct.unpack_from(f"<{nd}i", data, z + 6)
        if note:
            runs.append((pos, z + 6 + 4 * nd))
        pos = z + 6 + 4 * nd
        count = 1
        for d in dims:
            if d < 0:
                raise _bad(f"array {name!r} has a negative dimension")
            count *= d
        if t == STRING:  # no fitacf vector is a string: refused below, so never part of a layout
            for _ in range(count):
                z = find(b"\x00", pos, end)
                if z < 0:
                    raise _bad(f"string array {name!r} runs past the record")
                pos = z + 1
        else:
            w = sizes.get(t)
            if w is None:
                raise _bad(f"array {name!r} has unknown type code {t}")
            if pos + w * count > end:
                raise _bad(f"array {name!r} runs past the record")
            arrays[name] = (pos, dims)
            pos += w * count
        types[name] = t
        scalars.pop(name, None)
    if pos != end:
        raise _bad(f"record declares {size} bytes but its fields end after {pos - start}")
    _check_names(data, types, scalars, arrays)
    return end, scalars, arrays


def _check_names(data, types, scalars, arrays) -> None:
    for name, t in types.items():
        want = _SCALAR_TYPES.get(name) if name in scalars else _VECTOR_TYPES.get(name)
        if want is None:
            try:
                name.decode()
            except UnicodeDecodeError:
                raise _bad(f"field name {name!r} is not UTF-8") from None
            raise _bad(f"{name.decode()!r} is not a fitacf {'scalar' if name in scalars else 'vector'}")
        if t != want:
            raise _bad(f"fitacf field {name.decode()} has type code {t}, expected {want}")
    missing = [k for k in _REQUIRED_SCALARS if k not in scalars] + [
        k for k in _REQUIRED_VECTORS if k not in arrays
    ]
    if missing:
        raise _bad(f"fitacf fields missing: {b', '.join(sorted(missing)).decode()}")
    shape = None
    for name in _MATCHED.intersection(arrays):
        dims = arrays[name][1]
        if shape is None:
            shape = dims
        elif dims != shape:
            raise _bad("the per-range vectors differ in shape")


class Scanned:
    """What the feed needs from one valid fitacf record (see :func:`scan_record`)."""

    __slots__ = ("record_time_us", "stid", "channel", "beam", "scan_flag", "echo_block")

    def __init__(self, record_time_us, stid, channel, beam, scan_flag, echo_block):
        self.record_time_us = record_time_us
        self.stid = stid
        self.channel = channel
        self.beam = beam
        self.scan_flag = scan_flag
        self.echo_block = echo_block


class Scanner:
    """:func:`scan_record` with a bounded cache of the record layouts already validated.

    A feed repeats a few layouts (one per station, mode and echo count), so after the first record of a
    layout the next ones are checked by comparing their structure bytes with it (one numpy gather) instead
    of walking ~90 fields in Python. A record that matches no cached layout is walked in full.
    """

    def __init__(self, max_layouts: int = 1024):  # ~14 kB each: ~15 MB at most
        self.max_layouts = max_layouts
        self._layouts: dict[tuple[int, int, int], list[_Layout]] = {}
        self.hits = 0
        self.walks = 0

    def scan(self, data: bytes) -> Scanned:
        """Validate bytes that must hold exactly one fitacf record; its key fields and echo block.

        Raises :class:`RecordError` with the reasons of the module docstring.
        """
        if len(data) < 16:
            raise _bad(f"{len(data)} bytes, less than a record header")
        key = _HEAD.unpack_from(data, 0)[1:]
        layout = None
        if key[0] == len(data):
            for cand in self._layouts.get(key, ()):
                if cand.matches(data):
                    layout = cand
                    self.hits += 1
                    break
        if layout is None:
            layout = self._walk_new(data, key)
        return _extract(data, layout)

    def _walk_new(self, data: bytes, key) -> _Layout:
        self.walks += 1
        runs: list[tuple[int, int]] = []
        strings: list[tuple[int, int]] = []
        end, scalars, arrays = _walk(data, 0, runs, strings)
        if end < len(data):
            nxt = end
            while nxt < len(data):
                nxt = _walk(data, nxt)[0]  # raises bad_dmap on trailing garbage, as darn-dmap's lax read does
            raise RecordError("multiple_records", "more than one fitacf record in one message")
        for a, b in strings:
            try:
                data[a:b].decode()
            except UnicodeDecodeError:
                raise _bad(f"string at byte {a} is not UTF-8") from None
        layout = _Layout(data, runs, strings, scalars, arrays)
        if isinstance(layout.echo, str):
            raise RecordError("missing_fields", layout.echo)
        if key not in self._layouts and len(self._layouts) >= self.max_layouts:
            self._layouts.pop(next(iter(self._layouts)))
        same = self._layouts.setdefault(key, [])
        same.append(layout)
        del same[:-4]  # a few layouts per (size, counts) at most: the cache stays bounded whatever arrives
        return layout


def _extract(data: bytes, layout: _Layout) -> Scanned:
    for a, b in layout.strings:  # the walk decoded them; a cached layout only knows they hold no NUL
        if not data[a:b].isascii():
            try:
                data[a:b].decode()
            except UnicodeDecodeError:
                raise _bad(f"string at byte {a} is not UTF-8") from None
    v = dict(zip(layout.names, layout.wanted.unpack_from(data, layout.first), strict=True))
    t_us = record_time_us(v)
    tfreq, noise = v["tfreq"], v["noise.sky"]
    echo = layout.echo
    if echo is None:
        block = ECHO_HEAD.pack(0, tfreq, noise, 0)
    else:
        n, o_s, o_v, o_p, o_w, o_g, o_e = echo
        parts = [
            ECHO_HEAD.pack(n, tfreq, noise, o_e is not None),
            data[o_s : o_s + 2 * n],
            data[o_v : o_v + 4 * n],
            data[o_p : o_p + 4 * n],
            data[o_w : o_w + 4 * n],
            data[o_g : o_g + n].translate(_FLAG),
        ]
        if o_e is not None:
            parts.append(data[o_e : o_e + 4 * n])
        block = b"".join(parts)
    return Scanned(t_us, v["stid"], v["channel"], v["bmnum"], v["scan"], block)


_DEFAULT = Scanner()


def scan_record(data: bytes) -> Scanned:
    """Validate one fitacf record (see :class:`Scanner`; a process-wide layout cache)."""
    return _DEFAULT.scan(data)


def _count(dims: tuple[int, ...]) -> int:
    c = 1
    for d in dims:
        c *= d
    return c
