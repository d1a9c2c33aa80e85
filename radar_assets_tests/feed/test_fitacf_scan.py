"""The listener's fast fitacf check against darn-dmap (the oracle): the same verdict, the same fields and the
same echo block on real and synthetic records, on fitacf-level faults and on thousands of corruptions."""

from __future__ import annotations

import bz2
import random
import struct

import pytest

from radar_assets.lib.feed.dmap_records import RecordError, check_record, pack_echoes, parse_one
from radar_assets.lib.feed.fitacf_scan import SCALARS_REQUIRED, VECTORS_MATCHED, Scanner
from radar_assets.lib.feed.simulate import SyntheticFeed
from radar_assets_tests.conftest import shared_path

FITACF = ["20180404.0601.han.test.fitacf.bz2", "20221107.1801.inv.2rec.fitacf"]


def _split(blob: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(blob):
        size = struct.unpack_from("<i", blob, pos + 4)[0]
        out.append(blob[pos : pos + size])
        pos += size
    return out


@pytest.fixture(scope="module")
def records() -> list[bytes]:
    recs = []
    for name in FITACF:
        path = shared_path("superdarn", name)
        data = bz2.decompress(path.read_bytes()) if path.suffix == ".bz2" else path.read_bytes()
        recs += _split(data)
    feed = SyntheticFeed(["sas", "pgr"], 1000, 1_700_000_000_000_000)
    recs += [feed.record(i)[1] for i in range(64)]
    return recs


def oracle(raw: bytes) -> tuple:
    try:
        rec = parse_one(raw)
        t = check_record(rec)
    except RecordError as exc:
        return (exc.reason,)
    fields = tuple(int(rec[k]) for k in ("stid", "channel", "bmnum", "scan"))
    return ("ok", t, *fields, pack_echoes(rec))


def fast(scanner: Scanner, raw: bytes) -> tuple:
    try:
        s = scanner.scan(raw)
    except RecordError as exc:
        return (exc.reason,)
    return ("ok", s.record_time_us, s.stid, s.channel, s.beam, s.scan_flag, s.echo_block)


def _fields(raw: bytes) -> tuple[list, list]:
    """(scalars, arrays) of one record as (name, type, value bytes) / (name, type, dims, data bytes)."""
    sizes = {1: 1, 2: 2, 3: 4, 4: 4, 8: 8, 10: 8, 16: 1, 17: 2, 18: 4, 19: 8}
    _c, _s, ns, na = struct.unpack_from("<iiii", raw)
    pos, scalars, arrays = 16, [], []
    for _ in range(ns):
        z = raw.index(b"\0", pos)
        name, t = raw[pos:z], raw[z + 1]
        pos = z + 2
        end = raw.index(b"\0", pos) + 1 if t == 9 else pos + sizes[t]
        scalars.append([name, t, raw[pos:end]])
        pos = end
    for _ in range(na):
        z = raw.index(b"\0", pos)
        name, t = raw[pos:z], raw[z + 1]
        nd = struct.unpack_from("<i", raw, z + 2)[0]
        dims = list(struct.unpack_from(f"<{nd}i", raw, z + 6))
        pos = z + 6 + 4 * nd
        count = 1
        for d in dims:
            count *= d
        arrays.append([name, t, dims, raw[pos : pos + count * sizes[t]]])
        pos += count * sizes[t]
    return scalars, arrays


def _build(scalars, arrays) -> bytes:
    body = b"".join(n + b"\0" + bytes([t]) + v for n, t, v in scalars) + b"".join(
        n + b"\0" + bytes([t]) + struct.pack(f"<i{len(d)}i", len(d), *d) + v for n, t, d, v in arrays
    )
    return struct.pack("<iiii", 65537, len(body) + 16, len(scalars), len(arrays)) + body


def _mutations(raw: bytes):
    """Records differing from a valid one in one fitacf-level way (structure stays valid DMAP)."""
    scalars, arrays = _fields(raw)
    yield "rebuilt", _build(scalars, arrays)
    for i, (name, _t, _v) in enumerate(scalars):
        yield f"drop {name!r}", _build(scalars[:i] + scalars[i + 1 :], arrays)
    for i, (name, _t, _d, _v) in enumerate(arrays):
        yield f"drop {name!r}", _build(scalars, arrays[:i] + arrays[i + 1 :])
    for i, (name, t, v) in enumerate(scalars):
        if t == 2:  # short -> int: same value, wrong fitacf type
            s2 = [list(x) for x in scalars]
            s2[i] = [name, 3, struct.pack("<i", struct.unpack("<h", v)[0])]
            yield f"retype {name!r}", _build(s2, arrays)
    for i, (name, t, d, v) in enumerate(arrays):
        if t == 4:
            a2 = [list(x) for x in arrays]
            a2[i] = [name, 8, d, b"".join(struct.pack("<d", x) for (x,) in struct.iter_unpack("<f", v))]
            yield f"retype {name!r}", _build(scalars, a2)
        if name in (b"v", b"slist") and d and d[0] > 1:  # one per-range vector shorter than the others
            a2 = [list(x) for x in arrays]
            w = len(v) // d[0]
            a2[i] = [name, t, [d[0] - 1], v[:-w]]
            yield f"shorten {name!r}", _build(scalars, a2)
    yield "extra scalar", _build([*scalars, [b"zzz", 2, b"\1\0"]], arrays)
    yield "extra vector", _build(scalars, [*arrays, [b"zzz", 2, [1], b"\1\0"]])
    yield "duplicate scalar", _build([*scalars, scalars[6]], arrays)
    yield "duplicate bmnum, another value", _build([*scalars, [b"bmnum", 2, struct.pack("<h", 9)]], arrays)
    yield "duplicate bmnum, another type", _build([*scalars, [b"bmnum", 3, struct.pack("<i", 9)]], arrays)
    yield "optional scalar", _build([*scalars, [b"tdiff", 4, struct.pack("<f", 0.5)]], arrays)
    yield "two records", raw + raw
    yield "record + garbage", raw + b"\x01\x00\x01\x00garbage"
    yield "empty", b""
    t = [list(x) for x in scalars]
    for k, (name, _t, _v) in enumerate(t):
        if name == b"time.mo":
            t[k][2] = struct.pack("<h", 13)
    yield "month 13", _build(t, arrays)
    t = [list(x) for x in scalars]
    for k, (name, _t, v) in enumerate(t):
        if name == b"origin.command":
            t[k][2] = b"\xff\xfe" + v
    yield "origin.command not UTF-8", _build(t, arrays)


def test_valid_records_give_darn_dmaps_fields_and_echo_block(records):
    scanner = Scanner()
    for raw in records * 2:  # the second pass goes through the layout cache
        got = fast(scanner, raw)
        assert got[0] == "ok"
        assert got == oracle(raw)
    assert scanner.hits >= len(records)


def test_fitacf_level_faults_get_darn_dmaps_verdict(records):
    # Every required field dropped, retyped, per-range vectors of different lengths, unknown fields, two
    # records, bad times: each verdict equals the oracle's, through a fresh scanner (full walk) and through one
    # that has the valid record's layout cached.
    seen_reasons = set()
    for raw in (records[0], records[-1]):
        warm = Scanner()
        warm.scan(raw)
        for what, mutated in _mutations(raw):
            want = oracle(mutated)
            seen_reasons.add(want[0])
            assert fast(Scanner(), mutated) == want, what
            assert fast(warm, mutated) == want, what
    assert {"ok", "bad_dmap", "multiple_records", "bad_time"} <= seen_reasons
    # Every required scalar is in the table the scanner checks, and the per-range vectors are optional.
    assert {k.decode() for k, _t, _v in _fields(records[0])[0]} >= set(SCALARS_REQUIRED) - {
        "mplgexs",
        "ifmode",
    }
    assert "slist" in VECTORS_MATCHED


def test_corrupted_bytes_get_darn_dmaps_verdict(records):
    # Bit flips, truncations, overwritten bytes, appended and random bytes: the fast check never accepts what
    # darn-dmap refuses, and accepts exactly the same values (darn-dmap panics on some of these: a panic is a
    # refusal).
    rng = random.Random(13)
    warm = Scanner()
    for raw in records:
        warm.scan(raw)
    verdicts = {"ok": 0, "refused": 0}
    for i in range(3000):
        r = bytearray(rng.choice(records))
        kind = i % 5
        if kind == 0:
            for _ in range(rng.randint(1, 3)):
                j = rng.randrange(len(r))
                r[j] ^= 1 << rng.randrange(8)
        elif kind == 1:
            r = r[: rng.randrange(len(r))]
        elif kind == 2:
            r[rng.randrange(len(r))] = rng.randrange(256)
        elif kind == 3:
            r += rng.randbytes(rng.randint(1, 40))
        else:
            r = bytearray(rng.randbytes(rng.randint(0, 3000)))
        mutated = bytes(r)
        try:
            want = oracle(mutated)
        except BaseException as exc:  # a darn-dmap panic (pyo3 PanicException is not an Exception)
            if isinstance(exc, KeyboardInterrupt):
                raise
            want = ("bad_dmap",)
        got = fast(warm, mutated)
        assert got == want, (i, kind)
        assert fast(Scanner(), mutated) == want, (i, kind)
        verdicts["ok" if want[0] == "ok" else "refused"] += 1
    assert verdicts["ok"] > 100 and verdicts["refused"] > 1000
