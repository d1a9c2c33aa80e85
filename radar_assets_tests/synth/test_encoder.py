"""The fast Message 31 encoder writes exactly the words :meth:`SweepData.codes` defines.

Invariants checked: decompressing the LDM records and cutting them into radials gives, for every sweep and
moment, the (nrays, ngates) words of :meth:`SweepData.codes` (the sparse writer computes only echo bins,
from per-process header templates); the templates are not modified by encoding.
"""

from __future__ import annotations

import bz2
import struct

import numpy as np

from radar_assets.lib.synth import archive2 as a2


def _radial_bytes(data: bytes) -> bytes:
    pos, out = 24, []
    while pos < len(data):
        (size,) = struct.unpack(">i", data[pos : pos + 4])
        out.append(bz2.decompress(data[pos + 4 : pos + 4 + abs(size)]))
        pos += 4 + abs(size)
    return b"".join(out[1:])


def test_words_equal_dense_codes(generated):
    vol = generated.vol
    raw = _radial_bytes(generated.data)
    pos = 0
    for i, sw in enumerate(vol.sweeps):
        dt, _, _ = a2._msg31_dtype(sw.cut)
        n = sw.nrays
        arr = np.frombuffer(raw, dtype=dt, count=n, offset=pos)
        pos += n * dt.itemsize
        for m in sw.moments:
            np.testing.assert_array_equal(arr[f"{m}_data"], sw.codes(m), err_msg=f"{m} sweep {i}")
        template = a2._sweep_template(vol.site, vol.vcp.number, i)
        assert not template.flags.writeable
        for m in sw.moments:
            assert not template[f"{m}_data"].any()
    assert pos == len(raw)
