"""Py-ART reads every generated volume and returns exactly what the generator intended.

Invariants checked
------------------
- site id, location (site table, 1e-3 deg), antenna height (site elevation + feedhorn), VCP number;
- one sweep per VCP cut, fixed angles equal to the VCP elevations (Message 5 angle codes);
- per sweep: ray count (720 super-res / 360), azimuth spacing (0.5 / 1.0 deg), per-ray azimuth and
  elevation, first gate 2125 m and 250 m spacing, Nyquist velocity;
- per sweep and moment: the "no data" mask and the decoded values (scale/offset applied) equal
  :meth:`SweepData.physical` within half a quantisation step (0.25 dBZ or m/s).
"""

from __future__ import annotations

import numpy as np

from radar_assets.lib.sites import site

FIELD = {"REF": "reflectivity", "VEL": "velocity", "SW": "spectrum_width"}
HALF_STEP = 0.25 + 1e-4


def test_site_location_and_vcp(generated, pyart_radar):
    st = site(generated.case.site)
    r = pyart_radar
    assert r.metadata["instrument_name"] == st.id
    assert r.metadata["vcp_pattern"] == generated.case.vcp
    assert abs(float(r.latitude["data"][0]) - st.lat) < 1e-3
    assert abs(float(r.longitude["data"][0]) - st.lon) < 1e-3
    assert abs(float(r.altitude["data"][0]) - (round(st.elev_m) + 20)) <= 1.0


def test_sweeps_fixed_angles_and_azimuths(generated, pyart_radar):
    r, vol = pyart_radar, generated.vol
    assert r.nsweeps == len(vol.vcp.cuts)
    np.testing.assert_allclose(r.fixed_angle["data"], [c.elevation for c in vol.vcp.cuts], atol=1e-4)
    for i, sw in enumerate(vol.sweeps):
        sl = r.get_slice(i)
        az = r.azimuth["data"][sl]
        assert az.size == sw.cut.nrays == (720 if sw.cut.super_res else 360)
        step = np.diff(az) % 360.0
        np.testing.assert_allclose(step, sw.cut.azimuth_spacing, atol=1e-4)
        np.testing.assert_allclose(az, sw.azimuth, atol=1e-5)
        np.testing.assert_allclose(r.elevation["data"][sl], sw.elevation, atol=1e-5)
        assert abs(float(np.median(r.elevation["data"][sl])) - sw.cut.elevation) < 0.05
        np.testing.assert_allclose(
            r.instrument_parameters["nyquist_velocity"]["data"][sl], sw.cut.nyquist_ms, atol=0.01
        )


def test_gate_geometry(generated, pyart_radar):
    rng = pyart_radar.range["data"]
    assert rng[0] == 2125.0
    np.testing.assert_allclose(np.diff(rng), 250.0)
    assert pyart_radar.ngates == max(sw.ngates("REF") for sw in generated.vol.sweeps) == 1832


def test_moment_values_equal_intended(generated, pyart_radar):
    r, vol = pyart_radar, generated.vol
    n_valid = {"REF": 0, "VEL": 0, "SW": 0}
    for i, sw in enumerate(vol.sweeps):
        sl = r.get_slice(i)
        for m in sw.moments:
            ng = sw.ngates(m)
            got = r.fields[FIELD[m]]["data"][sl]
            # gates beyond this cut's gate count are not data
            assert np.ma.getmaskarray(got[:, ng:]).all()
            got = got[:, :ng]
            want = sw.physical(m)
            mask = np.ma.getmaskarray(got)
            np.testing.assert_array_equal(mask, np.isnan(want), err_msg=f"mask of {m} sweep {i}")
            diff = np.abs(got.filled(0.0) - np.nan_to_num(want))
            assert diff.max() <= HALF_STEP, f"{m} sweep {i}: max |pyart - intended| = {diff.max()}"
            n_valid[m] += int((~mask).sum())
    # the cases are chosen with weather near the radar: the comparison is not vacuous
    assert all(v > 10_000 for v in n_valid.values()), n_valid


def test_weather_is_plausible(generated, pyart_radar):
    """Reflectivity spans clear air to convection; velocity stays inside the Nyquist interval."""
    r, vol = pyart_radar, generated.vol
    ref = r.fields["reflectivity"]["data"]
    assert float(ref.max()) >= 45.0  # convective cores
    assert float(ref.min()) < 15.0  # light echoes / clear air
    for i, sw in enumerate(vol.sweeps):
        if "VEL" not in sw.moments:
            continue
        vel = r.fields["velocity"]["data"][r.get_slice(i)]
        assert float(np.abs(vel).max()) <= sw.cut.nyquist_ms + 0.25 + 1e-3
        spw = r.fields["spectrum_width"]["data"][r.get_slice(i)]
        if spw.count():
            assert 0.0 <= float(spw.min()) and float(spw.max()) <= 13.0
