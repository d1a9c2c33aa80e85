"""Properties of the weather model that make the synthetic data look and behave like weather.

Invariants checked
------------------
- storms live in an earth-fixed frame: two radars see the same systems at the same latitude/longitude;
- systems move with their motion vector and are deterministic for a seed (different seeds differ);
- beam geometry: higher elevations see less (echo coverage shrinks with elevation for the same scene);
- reflectivity of convective cores reaches 45+ dBZ while stratiform stays within about 10-40 dBZ.
"""

from __future__ import annotations

import math

import numpy as np

from radar_assets.lib.sites import site
from radar_assets.lib.synth import weather
from radar_assets.lib.synth.archive2 import to_epoch_ms
from radar_assets.lib.synth.vcp import beam_height_m, get_vcp

from .conftest import CASES


def _t(case) -> float:
    return to_epoch_ms(case.when) / 1000.0


def test_same_storms_seen_from_two_radars():
    case = CASES[0]
    a, b = site("KLOT"), site("KMKX")
    sa = {id(s): s for s in weather.systems_near(case.seed, a.lat, a.lon, _t(case))}
    sb = {id(s): s for s in weather.systems_near(case.seed, b.lat, b.lon, _t(case))}
    shared = set(sa) & set(sb)
    assert shared, "neighbouring radars must share systems"
    for key in shared:
        lat, lon = sa[key].center(_t(case))
        pa = weather.local_xy(a.lat, a.lon, lat, lon)  # the system in radar A's plane
        pb = weather.local_xy(b.lat, b.lon, lat, lon)  # ... and in radar B's
        ba = weather.local_xy(a.lat, a.lon, b.lat, b.lon)  # radar B in radar A's plane
        # distance B -> system measured in A's plane equals what B itself sees (projection error < 1%)
        d_in_a = math.hypot(pa[0] - ba[0], pa[1] - ba[1])
        assert abs(d_in_a - math.hypot(*pb)) < 0.5 + 0.01 * math.hypot(*pb)


def test_systems_move_and_are_seeded():
    case = CASES[0]
    st = site(case.site)
    systems = weather.systems_near(case.seed, st.lat, st.lon, _t(case))
    assert systems
    s = systems[0]
    lat0, lon0 = s.center(_t(case))
    lat1, lon1 = s.center(_t(case) + 3600)
    dx, dy = weather.local_xy(lat0, lon0, lat1, lon1)
    assert math.hypot(dx - s.u * 3.6, dy - s.v * 3.6) < 0.05 * max(1.0, math.hypot(s.u, s.v) * 3.6)
    again = weather.systems_near(case.seed, st.lat, st.lon, _t(case))
    assert [(x.lat0, x.lon0, x.t0) for x in again] == [(x.lat0, x.lon0, x.t0) for x in systems]
    other = weather.systems_near(case.seed + 1, st.lat, st.lon, _t(case))
    assert [(x.lat0, x.lon0) for x in other] != [(x.lat0, x.lon0) for x in systems]


def test_higher_elevations_see_less(generated):
    vol = generated.vol
    echoes = {sw.cut.elevation: int(np.count_nonzero(~np.isnan(sw.coarse.dbz))) for sw in vol.sweeps}
    elevs = sorted(echoes)
    assert echoes[elevs[-1]] < echoes[elevs[len(elevs) // 2]] < echoes[elevs[0]]
    # 4/3 earth: the top of the lowest beam at 460 km is above 15 km, at 100 km about 2 km
    assert beam_height_m(460_000, 0.5) > 15_000
    assert 1_300 < float(beam_height_m(100_000, 0.5)) < 1_600
    assert get_vcp(vol.vcp.number).elevations == elevs


def test_reflectivity_ranges_by_kind(generated):
    case = generated.case
    st = site(case.site)
    comps = weather.scene(case.seed, st.lat, st.lon, st.elev_m, _t(case))
    cells = [c for c in comps if c.vkind == "cell"]
    strat = [c for c in comps if c.vkind == "strat"]
    assert cells and max(c.dbz for c in cells) >= 45.0
    assert max(c.dbz for c in cells) <= 62.0
    assert all(5.0 <= c.dbz <= 35.0 for c in strat)


def test_clear_air_echo_is_opt_in_and_only_adds_echo_near_the_radar():
    from radar_assets.lib.synth.archive2 import build_volume

    t = to_epoch_ms(__import__("datetime").datetime(2024, 5, 1, 6, 0, tzinfo=__import__("datetime").UTC))
    plain = build_volume("KLOT", t, 212, seed=4)
    with_bl = build_volume("KLOT", t, 212, seed=4, clear_air_echo=True)
    a = plain.sweeps[0].codes("REF")
    b = with_bl.sweeps[0].codes("REF")
    assert (b > 0).sum() > (a > 0).sum()  # boundary-layer returns add echo
    near = 800  # gates: the first 200 km (the layer is below ~2 km, the 0.5° beam passes it by then)
    assert ((b > 0) & (a == 0))[:, near:].sum() < 0.02 * ((b > 0) & (a == 0)).sum()
