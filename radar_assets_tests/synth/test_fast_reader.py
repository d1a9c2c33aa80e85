"""The project's own Level 2 reader decodes generated volumes exactly like Py-ART and the generator.

Invariants checked: same site/location/VCP, sweep count, per-sweep azimuths, elevations, ray times,
fixed angles, gate geometry, and per-moment masks and values as Py-ART and as
:meth:`SweepData.physical` (within 0.25).
"""

from __future__ import annotations

import numpy as np
import pytest

reader = pytest.importorskip("radar_assets.lib.readers.nexrad_level2")

FIELD = {"REF": "reflectivity", "VEL": "velocity", "SW": "spectrum_width"}


def test_fast_reader_matches_pyart_and_intent(generated, pyart_radar):
    vol = reader.read_level2(generated.data)
    r, syn = pyart_radar, generated.vol
    assert vol.site == syn.site.id and vol.vcp == syn.vcp.number and vol.message_type == 31
    assert vol.lat == pytest.approx(float(r.latitude["data"][0]), abs=1e-5)
    assert vol.lon == pytest.approx(float(r.longitude["data"][0]), abs=1e-5)
    assert vol.alt_m == pytest.approx(float(r.altitude["data"][0]), abs=0.5)
    # the volume's start (first radial, to the second) is the time in its key
    assert vol.start_time == syn.time.replace(microsecond=0)
    assert len(vol.sweeps) == r.nsweeps == len(syn.sweeps)
    for i, (sw, want) in enumerate(zip(vol.sweeps, syn.sweeps, strict=True)):
        sl = r.get_slice(i)
        np.testing.assert_allclose(sw.azimuth, r.azimuth["data"][sl], atol=1e-5)
        np.testing.assert_allclose(sw.elevation, r.elevation["data"][sl], atol=1e-5)
        np.testing.assert_allclose(sw.time, r.time["data"][sl], atol=1e-3)
        assert sw.fixed_angle == pytest.approx(float(r.fixed_angle["data"][i]), abs=1e-4)
        assert set(sw.moments) == set(want.moments)
        for m in want.moments:
            mom = sw.moments[m]
            ng = want.ngates(m)
            assert (mom.first_gate_m, mom.gate_spacing_m, mom.ngates) == (2125.0, 250.0, ng)
            ours = mom.data
            theirs = r.fields[FIELD[m]]["data"][sl][:, :ng]
            np.testing.assert_array_equal(np.ma.getmaskarray(ours), np.ma.getmaskarray(theirs))
            np.testing.assert_array_equal(ours.filled(0), theirs.filled(0))
            intended = want.physical(m)
            assert np.abs(ours.filled(0) - np.nan_to_num(intended)).max() <= 0.25 + 1e-4
