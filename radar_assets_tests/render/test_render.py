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


def _pyart_pixels(grid, volume, sweep, moment, edges):
    """Fractional pixel (col, row) of Py-ART's gate centres (``edges=False``, the computation behind
    ``Radar.gate_longitude``/``gate_latitude``) or gate corners (``edges=True``) of one sweep."""
    from pyart.core import antenna_vectors_to_cartesian, cartesian_to_geographic

    m = sweep.moments[moment]
    x, y, _ = antenna_vectors_to_cartesian(m.ranges_m, sweep.azimuth, sweep.elevation, edges=edges)
    projparams = {"proj": "pyart_aeqd", "lon_0": volume.lon, "lat_0": volume.lat}
    lon, lat = cartesian_to_geographic(x, y, projparams)
    return grid.pixel_of(*lonlat_to_mercator(lon, lat))


@pytest.mark.parametrize("path", L2, ids=[p.name for p in L2])
def test_painted_gates_land_within_one_pixel_of_pyart_geolocation(path):
    """Every sampled painted pixel lies within one pixel of its gate's footprint as Py-ART locates it
    (the gate's four corners), and gates larger than a pixel are painted over their Py-ART centre."""
    path = _local(path)
    volume = read_level2(path.read_bytes(), moments=["REF"], site_hint=path.name[:4])
    rng = np.random.default_rng(0)
    for sweep in (volume.sweeps[0], volume.sweeps[-1]):
        m = sweep.moments["REF"]
        grid, ray_img, gate_img = gate_index_image(sweep, "REF", volume.lat, volume.lon, 2048)
        # (a) painted pixel -> Py-ART footprint of its gate.
        rows, cols = np.nonzero((ray_img < sweep.nrays) & (gate_img < m.ngates))
        pick = rng.choice(rows.size, 3000, replace=False)
        rows, cols = rows[pick], cols[pick]
        rays, gates = ray_img[rows, cols], gate_img[rows, cols]
        # Py-ART interpolates ray edges between consecutive rays; skip the sweep's first and last rays
        # whose outer edges it extrapolates.
        keep = (rays > 0) & (rays < sweep.nrays - 1)
        rows, cols, rays, gates = rows[keep], cols[keep], rays[keep], gates[keep]
        ex, ey = _pyart_pixels(grid, volume, sweep, "REF", edges=True)
        corners = [(rays, gates), (rays, gates + 1), (rays + 1, gates + 1), (rays + 1, gates)]
        qx = np.stack([ex[r, g] for r, g in corners], axis=1)
        qy = np.stack([ey[r, g] for r, g in corners], axis=1)
        px, py = cols + 0.5, rows + 0.5
        # Signed distance of the pixel centre to each edge of the (convex) footprint, inside >= 0.
        nx, ny = np.roll(qx, -1, axis=1) - qx, np.roll(qy, -1, axis=1) - qy
        length = np.hypot(nx, ny)
        with np.errstate(invalid="ignore", divide="ignore"):
            cross = (nx * (py[:, None] - qy) - ny * (px[:, None] - qx)) / length
        # A gate starting at the antenna has a zero-length inner edge: it constrains nothing.
        cross = np.where(length > 0, cross, np.nan)
        orientation = np.sign(np.nanmedian(cross, axis=1, keepdims=True))
        outside = -np.nanmin(cross * orientation, axis=1)
        assert outside.max() <= 1.0, (
            f"sweep {sweep.index}: painted {outside.max():.2f} px outside Py-ART's gate"
        )
        # (b) gate centre -> painted there (within one pixel) for gates at least a pixel deep.
        cx, cy = _pyart_pixels(grid, volume, sweep, "REF", edges=False)
        if m.gate_spacing_m >= grid.pixel:
            # Only gates wider than a pixel across the beam too (short-range gates are narrower).
            beam = np.radians(np.median(np.diff(np.sort(sweep.azimuth))))
            first = int(np.ceil((1.5 * grid.pixel / beam - m.first_gate_m) / m.gate_spacing_m))
            sample_r = rng.integers(0, sweep.nrays, 300)
            sample_g = rng.integers(min(max(first, 0), m.ngates - 1), m.ngates, 300)
            col = np.floor(cx[sample_r, sample_g]).astype(int) + 1
            row = np.floor(cy[sample_r, sample_g]).astype(int) + 1
            key_img = np.pad(ray_img.astype(np.int64) * (m.ngates + 1) + gate_img, 1, constant_values=-1)
            keys = sample_r.astype(np.int64) * (m.ngates + 1) + sample_g
            near = np.stack([key_img[row + dr, col + dc] for dr in (-1, 0, 1) for dc in (-1, 0, 1)], axis=1)
            assert (near == keys[:, None]).any(axis=1).all()


COG_SAMPLES = [
    p
    for p in L2
    if p.name in ("KLOT20220317_000842_V06", "KLOT19950413_132143.gz", "KTLX20190715_120037_V06")
]


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
    # Default moments: REF on every sweep that has it, VEL on every sweep that carries it.
    for moment in ("REF", "VEL"):
        expected = {s.index for s in volume.sweeps if moment in s.moments}
        assert expected
        assert {r.sweep_index for r in results if r.moment == moment} == expected
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
    path = shared_path("level2", "other", "KTLX20140101_000624_V06.gz")
    volume = read_level2(path.read_bytes(), moments=["REF"])
    r = render_sweep(volume.sweeps[0], volume.lat, volume.lon, "REF", cog=False)
    assert max(r.bounds["width"], r.bounds["height"]) == 2048
    assert r.cog == b""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Image.open(io.BytesIO(r.png)).load()
