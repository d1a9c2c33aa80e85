"""Byte-level structure of the generated Archive II volumes (ICD 2620002 / 2620010).

Invariants checked
------------------
- volume header ``AR2V0006.NNN`` + Julian date + ms of day + ICAO, equal to the first radial's time;
- LDM records: big-endian sizes, the last one negative, each a complete bzip2 stream;
- record 0: 134 segments of 2432 bytes carrying Messages 15, 18, 3, 5, 2 (Message 5 with the VCP cuts);
- radial records: at most 120 Message 31 radials each, message size = 16 + radial length;
- radial status 3 / 0 at the start of a cut, 2 at its end, 4 at the end of the volume, 1 elsewhere;
  azimuth numbers 1..n per cut; elevation numbers 1..ncuts in order; data block names and pointers.
"""

from __future__ import annotations

import bz2
import struct

import numpy as np

from radar_assets.lib.synth import archive2 as a2


def _records(data: bytes) -> list[tuple[int, bytes]]:
    pos, out = 24, []
    while pos < len(data):
        (size,) = struct.unpack(">i", data[pos : pos + 4])
        out.append((size, bz2.decompress(data[pos + 4 : pos + 4 + abs(size)])))
        pos += 4 + abs(size)
    assert pos == len(data)
    return out


def _radials(records):
    for _, rec in records[1:]:
        pos, n = 0, 0
        while pos < len(rec):
            size, _ch, mtype = struct.unpack(">HBB", rec[pos + 12 : pos + 16])
            assert mtype == 31
            body = rec[pos + 28 : pos + 12 + 2 * size]
            yield body
            pos += 12 + 2 * size
            n += 1
        assert pos == len(rec) and n <= a2.RADIALS_PER_RECORD


def test_volume_header_and_records(generated):
    data, vol = generated.data, generated.vol
    tape, num, date, ms, icao = struct.unpack(">9s3sII4s", data[:24])
    assert tape == b"AR2V0006." and num.isdigit()
    assert icao.decode() == vol.site.id
    first = int(vol.sweeps[0].time_ms[0])
    assert first == vol.start_ms and (date, ms) == a2.mjd_ms(first)
    assert vol.key.endswith(f"{vol.site.id}{vol.time:%Y%m%d_%H%M%S}_V06")
    recs = _records(data)
    assert all(s > 0 for s, _ in recs[:-1]) and recs[-1][0] < 0
    meta = recs[0][1]
    assert len(meta) == 134 * 2432
    types = [meta[i * 2432 + 15] for i in range(134)]
    assert {15, 18, 3, 5, 2} <= set(types)
    assert types[131:] == [3, 5, 2]
    i5 = types.index(5) * 2432
    plen, ptype, number, ncuts = struct.unpack(">HHHH", meta[i5 + 28 : i5 + 36])
    assert (ptype, number, ncuts) == (2, vol.vcp.number, len(vol.vcp.cuts))
    assert plen == 11 + 23 * ncuts
    codes = [struct.unpack(">H", meta[i5 + 50 + 46 * k : i5 + 52 + 46 * k])[0] for k in range(ncuts)]
    assert codes == [c.elevation_code for c in vol.vcp.cuts]
    # radial records: one record per 120 radials, never mixing cuts
    assert len(recs) - 1 == sum(c.nrays // 120 for c in vol.vcp.cuts)


def test_radial_headers(generated):
    vol = generated.vol
    rows = []
    for body in _radials(_records(generated.data)):
        (rid, cms, cdate, aznum, az, _c, _s, rlen, azres, status, elnum, _sec, el, _b, _m, nblocks) = (
            struct.unpack(">4sIHHfBBHBBBBfBBH", body[:32])
        )
        assert rid.decode() == vol.site.id and rlen == len(body)
        ptrs = struct.unpack(">10I", body[32:72])
        names = [body[p + 1 : p + 4].decode() for p in ptrs[:nblocks]]
        assert names[:3] == ["VOL", "ELV", "RAD"] and all(p == 0 for p in ptrs[nblocks:])
        cut = vol.vcp.cuts[elnum - 1]
        assert names[3:] == [m.ljust(3) for m in cut.moments]
        for p, name in zip(ptrs[3:nblocks], names[3:], strict=True):
            ng, first, space = struct.unpack(">Hhh", body[p + 8 : p + 14])
            word, scale, offset = struct.unpack(">Bff", body[p + 19 : p + 28])
            assert (first, space, word) == (2125, 250, 8)
            assert ng == (cut.ref_gates if name == "REF" else cut.dop_gates)
            assert (scale, offset) == a2.MOMENT_SCALE[name.strip()]
        assert azres == (1 if cut.super_res else 2)
        rows.append((elnum, aznum, status, cdate * 86_400_000 + cms))
    el, aznum, status, t = (np.array(c) for c in zip(*rows, strict=True))
    assert np.all(np.diff(el) >= 0) and el[0] == 1 and el[-1] == len(vol.vcp.cuts)
    for n in range(1, len(vol.vcp.cuts) + 1):
        sel = el == n
        st = status[sel]
        assert st[0] == (3 if n == 1 else 0)
        assert st[-1] == (4 if n == len(vol.vcp.cuts) else 2)
        assert np.all(st[1:-1] == 1)
        np.testing.assert_array_equal(aznum[sel], np.arange(1, sel.sum() + 1))
    assert np.all(np.diff(t) >= 0), "collection times must not go backwards"
