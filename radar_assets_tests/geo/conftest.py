"""Real inputs for the geometry tests: a rendered KLOT reflectivity COG and the Illinois county polygons."""

from __future__ import annotations

import pytest

from radar_assets_tests.conftest import shared_path

KLOT_VOLUME = ("level2", "KLOT", "KLOT20210625_075154_V06")
ILLINOIS = ("boundaries", "derived", "illinois_counties.geojson")


@pytest.fixture(scope="session")
def klot_ref_cog() -> bytes:
    """COG of the lowest reflectivity sweep of a stormy KLOT volume, rendered by the platform's renderer."""
    from radar_assets.lib.readers.nexrad_level2 import read_level2
    from radar_assets.lib.render.sweep import render_sweep

    volume = read_level2(shared_path(*KLOT_VOLUME).read_bytes())
    sweep = next(s for s in volume.sweeps if "REF" in s.moments)
    return render_sweep(sweep, volume.lat, volume.lon, "REF", site=volume.site).cog


@pytest.fixture(scope="session")
def illinois_counties() -> dict:
    """County name -> EPSG:4326 polygon."""
    import geopandas as gpd

    frame = gpd.read_file(shared_path(*ILLINOIS))
    return dict(zip(frame["NAME"], frame.geometry, strict=True))
