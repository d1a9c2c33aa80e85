"""Sweep rendering: geolocation against Py-ART's gate geometry, COG values, every real file renders."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from radar_assets.lib.readers.nexrad_level2 import read_level2
from radar_assets.lib.readers.nexrad_level3 import read_level3
from radar_assets.lib.render import render_sweep, render_volume
from radar_assets.lib.render.grid import lonlat_to_mercator
from radar_assets.lib.render.sweep import gate_index_image
from radar_assets_tests.conftest import level2_samples, level3_samples, shared_path

L2 = level2_samples()
L3 = level3_samples()


def _local(path):
    return shared_path(*path.relative_to(path.parents[2]).parts)


def _pyart_gate_lonlat(volume, sweep, moment, rays, gates):
    """Py-ART's gate longitude/latitude (the computation behind ``Radar.gate_longitude``)."""
    from pyart.core import antenna_vectors_to_cartesian, cartesian_to_geographic

    m = sweep.moments[moment]
    ranges = m.first_gate_m + m.gate_spacing_m * np.asarray(gates, dtype=np.float64)
    x, y, _ = antenna_vectors_to_cartesian(ranges, sweep.azimuth[rays], sweep.elevation[rays], edges=False)
    # antenna_vectors_to_cartesian gives the full (rays, gates) product; keep the sampled pairs.
    idx = np.arange(len(rays))
    projparams = {"proj": "pyart_aeqd", "lon_0": volume.lon, "lat_0": volume.lat}
    lon, lat = cartesian_to_geographic(x[idx, idx], y[idx, idx], projparams)
    return lon, lat


@pytest.mark.parametrize("path", L2, ids=[p.name for p in L2])
def test_painted_gates_land_within_one_pixel_of_pyart_geolocation(path):
    path = _local(path)
    volume = read_level2(path.read_bytes(), moments=["REF"], site_hint=path.name[:4])
    rng = np.random.default_rng(0)
    for sweep in (volume.sweeps[0], volume.sweeps[-1]):
        m = sweep.moments["REF"]
        grid, ray_img, gate_img = gate_index_image(sweep, "REF", volume.lat, volume.lon, 2048)
        rays = rng.integers(0, sweep.nrays, 400)
        gates = rng.integers(m.ngates // 10, m.ngates, 400)
        lon, lat = _pyart_gate_lonlat(volume, sweep, "REF", rays, gates)
        col, row = grid.pixel_of(*lonlat_to_mercator(lon, lat))
        col, row = np.floor(col).astype(int), np.floor(row).astype(int)
        key_img = ray_img.astype(np.int64) * (m.ngates + 1) + gate_img
        keys = rays.astype(np.int64) * (m.ngates + 1) + gates
        painted = np.isin(key_img, keys)
        rr, cc = np.nonzero(painted)
        by_key = {}
        for r, c, k in zip(rr, cc, key_img[rr, cc], strict=True):
            by_key.setdefault(int(k), []).append((r, c))
        checked = 0
        for k, r0, c0 in zip(keys, row, col, strict=True):
            pixels = by_key.get(int(k))
            if not pixels:
                continue  # a gate smaller than a pixel may cover no pixel centre
            px = np.array(pixels)
            dist = np.max(np.abs(px - [r0, c0]), axis=1).min()
            assert dist <= 1, f"sweep {sweep.index} gate {k}: {dist} px from Py-ART's position"
            checked += 1
        assert checked >= 100, f"only {checked} sampled gates painted"


COG_SAMPLES = [p for p in L2 if p.name in ("KLOT20220317_000842_V06", "KLOT19950413_132143.gz", "KTLX20190715_120037_V06")]


@pytest.mark.parametrize("path", COG_SAMPLES, ids=[p.name for p in COG_SAMPLES])
def test_cog_values_equal_gate_values_and_cog_is_valid(path, tmp_path):
    from rasterio.io import MemoryFile
    from rio_cogeo.cogeo import cog_validate

    path = _local(path)
    volume = read_level2(path.read_bytes(), moments=["REF", "VEL"], site_hint=path.name[:4])
    for sweep in (volume.sweeps[0], volume.sweeps[-1]):
        for moment in [m for m in ("REF", "VEL") if m in sweep.moments]:
            out = render_sweep(sweep, volume.lat, volume.lon, moment, size=1024, site=volume.site)
            target = tmp_path / f"{sweep.index}_{moment}.tif"
            target.write_bytes(out.cog)
            valid, errors, _ = cog_validate(str(target), quiet=True)
            assert valid, errors
            grid, ray_img, gate_img = gate_index_image(sweep, moment, volume.lat, volume.lon, 1024)
            with MemoryFile(out.cog) as mem, mem.open() as ds:
                assert ds.crs.to_epsg() == 3857
                assert (ds.width, ds.height) == (grid.width, grid.height)
                assert ds.transform.almost_equals(grid.transform())
                raw = ds.read(1, masked=True)
                values = raw.astype(np.float64) * ds.scales[0] + ds.offsets[0]
            m = sweep.moments[moment]
            inside = (ray_img < sweep.nrays) & (gate_img < m.ngates)
            expected = np.ma.masked_all(values.shape, dtype=np.float64)
            gate_values = m.data
            expected[inside] = gate_values[ray_img[inside], gate_img[inside]]
            assert np.array_equal(np.ma.getmaskarray(values), np.ma.getmaskarray(expected))
            both = ~np.ma.getmaskarray(values)
            assert both.sum() > 0
            np.testing.assert_allclose(values[both], expected[both], atol=1e-4)


@pytest.mark.parametrize("path", L2, ids=[p.name for p in L2])
def test_every_level2_volume_renders(path):
    path = _local(path)
    volume = read_level2(path.read_bytes(), moments=["REF", "VEL"], site_hint=path.name[:4])
    results = render_volume(volume, size=256)
    assert {r.sweep_index for r in results if r.moment == "REF"} == {s.index for s in volume.sweeps}
    assert any(r.moment == "VEL" for r in results)
    for r in results:
        _check_product(r, 256)


@pytest.mark.parametrize("path", L3, ids=[p.name for p in L3])
def test_every_level3_product_renders(path):
    product = read_level3(_local(path).read_bytes())
    (r,) = render_volume(product, size=256)
    _check_product(r, 256)
    assert r.moment == product.moment


def _check_product(r, size):
    image = Image.open(io.BytesIO(r.png))
    assert image.format == "PNG" and max(image.size) == size
    rgba = np.asarray(image.convert("RGBA"))
    assert (rgba[..., 3] == 0).any(), "outside the coverage must be transparent"
    b = r.bounds
    json.dumps(b)
    assert b["coordinates"] == [
        [b["west"], b["north"]],
        [b["east"], b["north"]],
        [b["east"], b["south"]],
        [b["west"], b["south"]],
    ]
    assert b["west"] < b["radar_lon"] < b["east"] and b["south"] < b["radar_lat"] < b["north"]
    assert (b["width"], b["height"]) == image.size
    thumb = Image.open(io.BytesIO(r.thumbnail_png))
    assert max(thumb.size) <= 256
    assert r.cog[:4] in (b"II*\x00", b"MM\x00*")


def test_default_size_is_2048_on_the_long_side():
    path = shared_path("level2", "KTLX", "..", "other", "KTLX20140101_000624_V06.gz")
    volume = read_level2(path.read_bytes(), moments=["REF"])
    r = render_sweep(volume.sweeps[0], volume.lat, volume.lon, "REF", cog=False)
    assert max(r.bounds["width"], r.bounds["height"]) == 2048
    assert r.cog == b""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Image.open(io.BytesIO(r.png)).load()
