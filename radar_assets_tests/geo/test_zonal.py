"""Exact coverage weights and zonal statistics, with exactextract as the oracle on real COGs and counties."""

from __future__ import annotations

import exactextract  # noqa: E402  (the oracle: a dev dependency, never skipped)
import numpy as np
import pytest
import shapely
from shapely import affinity

from radar_assets.lib.geo.zonal import (
    CellLimitError,
    WeightCache,
    ZonalIndex,
    coverage_weights,
    read_cog,
    stats_from_samples,
    to_mercator,
    weights_key,
)
from radar_assets.lib.render.cog import write_cog
from radar_assets.lib.render.grid import Grid


def _exactextract(values: np.ndarray, grid: Grid, geoms_3857: list, ops: list[str]):
    """exactextract on the decoded values (nodata -9999) of a grid, one row per geometry."""
    import geopandas as gpd
    import pyproj
    from exactextract.raster import NumPyRasterSource

    filled = np.where(np.isfinite(values), values, -9999.0)
    source = NumPyRasterSource(
        filled,
        grid.west,
        grid.south,
        grid.east,
        grid.north,
        nodata=-9999.0,
        srs_wkt=pyproj.CRS.from_epsg(3857).to_wkt(),
    )
    frame = gpd.GeoDataFrame(geometry=geoms_3857, crs="EPSG:3857")
    return exactextract.exact_extract(source, frame, ops, output="pandas")


@pytest.fixture(scope="module")
def test_shapes(illinois_counties) -> dict[str, shapely.Geometry]:
    """Real county polygons in EPSG:4326, including the three shapes the oracle test must cover."""
    c = illinois_counties
    ring = shapely.union_all([c["Cook"], c["Will"], c["Kane"], c["Kendall"]])  # DuPage is the hole
    multi = shapely.union_all([c["DuPage"], c["Kankakee"]])
    tiny = affinity.scale(c["DuPage"], 0.002, 0.002, origin="centroid")  # about 70 m across
    shapes = {
        "ring_around_dupage": ring,
        "dupage_and_kankakee": multi,
        "tiny_dupage": tiny,
        "Cook": c["Cook"],
        "LaSalle": c["LaSalle"],
        "Lake": c["Lake"],
    }
    assert ring.geom_type == "Polygon" and len(ring.interiors) >= 1
    assert multi.geom_type == "MultiPolygon"
    return shapes


def test_exactextract_agrees_on_real_cog_and_counties(klot_ref_cog, test_shapes):
    raster = read_cog(klot_ref_cog)
    assert raster.lut is not None and raster.data.dtype == np.uint8
    grid = raster.grid
    names = list(test_shapes)
    geoms = [to_mercator(test_shapes[n]) for n in names]
    tiny = geoms[names.index("tiny_dupage")]
    assert tiny.area < grid.pixel**2 / 10  # far smaller than one cell
    weights = [coverage_weights(grid, g) for g in geoms]
    stats = raster.stats(ZonalIndex(grid, weights))
    oracle = _exactextract(raster.values(), grid, geoms, ["count", "mean", "min", "max"])
    # exactextract lists only cells with data: ask for the coverage on a raster without nodata.
    everywhere = _exactextract(np.ones(raster.data.shape), grid, geoms, ["cell_id", "coverage"])
    for i, name in enumerate(names):
        # Cell by cell: exactly the cells exactextract covers, with its fractions (it stores float32).
        cells = np.asarray(everywhere["cell_id"][i], dtype=np.int64)
        cover = np.asarray(everywhere["coverage"][i], dtype=np.float64)
        ours = dict(zip(weights[i].indices.tolist(), weights[i].weights.tolist(), strict=True))
        theirs = dict(zip(cells.tolist(), cover.tolist(), strict=True))
        # Cells either side reports alone carry slivers below 1e-6 of a cell (exactextract misses one
        # such corner of Cook in the union whose part Cook is, though it reports it for Cook itself).
        only = set(ours) ^ set(theirs)
        assert all(ours.get(k, 0.0) < 1e-6 and theirs.get(k, 0.0) < 1e-6 for k in only), name
        assert len(only) <= 2, name
        common = sorted(set(ours) & set(theirs))
        np.testing.assert_allclose(
            [ours[k] for k in common], [theirs[k] for k in common], atol=1e-6, err_msg=name
        )
        assert stats["count"][i] == pytest.approx(oracle["count"][i], rel=1e-6, abs=1e-6), name
        if oracle["count"][i] > 0:
            for stat in ("mean", "min", "max"):
                assert abs(stats[stat][i] - oracle[stat][i]) <= 1e-6, (name, stat)
        else:
            assert np.isnan(stats["mean"][i]) and stats["cells"][i] == 0
    # The shapes carry echo, so the comparison is not vacuous.
    assert sum(stats["cells"] > 0) >= 4


def test_float_and_code_paths_agree(klot_ref_cog, test_shapes):
    raster = read_cog(klot_ref_cog)
    index = ZonalIndex(
        raster.grid, [coverage_weights(raster.grid, to_mercator(g)) for g in test_shapes.values()]
    )
    by_codes = index.stats_codes(raster.data, raster.lut)
    by_values = index.stats_values(raster.values().astype(np.float32))
    for name in by_codes:
        np.testing.assert_allclose(by_codes[name], by_values[name], rtol=1e-9, atol=1e-9, err_msg=name)


def test_weights_of_aligned_shapes_are_exact_fractions():
    grid = Grid(west=0.0, north=4.0, pixel=1.0, width=4, height=4)
    # A square from (0.5, 0.5) to (2.5, 2.5) with a (1, 1)-(2, 2) hole: quarter corners, half edges.
    shape = shapely.Polygon(
        [(0.5, 0.5), (2.5, 0.5), (2.5, 2.5), (0.5, 2.5)], [[(1, 1), (2, 1), (2, 2), (1, 2)]]
    )
    w = coverage_weights(grid, shape)
    dense = np.zeros(16)
    dense[w.indices] = w.weights
    expected = np.array(
        [
            [0, 0, 0, 0],
            [0.25, 0.5, 0.25, 0],
            [0.5, 0.0, 0.5, 0],
            [0.25, 0.5, 0.25, 0],
        ]
    ).ravel()
    np.testing.assert_allclose(dense, expected, atol=1e-12)
    assert 9 not in w.indices.tolist()  # the hole's cell is absent, not zero
    assert w.total == pytest.approx(3.0) and w.area_cells == pytest.approx(3.0)


def test_polygon_beyond_the_grid_counts_only_its_part_on_the_grid():
    grid = Grid(west=0.0, north=10.0, pixel=1.0, width=10, height=10)
    huge = shapely.box(-1000.0, -1000.0, 5.5, 1000.0)
    w = coverage_weights(grid, huge)
    assert w.total == pytest.approx(55.0)
    assert w.area_cells == pytest.approx(1005.5 * 2000.0)
    assert coverage_weights(grid, shapely.box(20, 20, 30, 30)).size == 0
    with pytest.raises(CellLimitError, match="limit of 10"):
        coverage_weights(grid, huge, max_cells=10)


def test_points_weigh_their_cell():
    grid = Grid(west=0.0, north=10.0, pixel=1.0, width=10, height=10)
    w = coverage_weights(grid, shapely.MultiPoint([(2.5, 7.5), (2.6, 7.4), (50, 50)]))
    assert w.indices.tolist() == [2 * 10 + 2] and w.weights.tolist() == [1.0]


def test_weighted_quantiles_and_threshold_follow_their_definitions():
    # One boundary, values 10, 20, 30, 40 with covered fractions 0.5, 1, 1, 0.5 (count 3), area 4 cells.
    v = np.array([40.0, 10.0, 30.0, 20.0])
    w = np.array([0.5, 0.5, 1.0, 1.0])
    out = stats_from_samples(v, w, np.zeros(4, np.int64), 1, np.array([4.0]))
    assert out["count"][0] == 3.0 and out["cells"][0] == 4
    assert out["mean"][0] == pytest.approx((40 * 0.5 + 10 * 0.5 + 30 + 20) / 3)
    # Cumulative weights in value order: 0.5 (10), 1.5 (20), 2.5 (30), 3 (40).
    assert out["p50"][0] == 20.0  # first to reach 1.5
    assert out["p90"][0] == 40.0  # 2.7 is reached only at 40
    assert out["frac_ge_20dbz"][0] == pytest.approx(2.5 / 4)
    assert out["coverage_fraction"][0] == pytest.approx(3 / 4)
    assert (out["min"][0], out["max"][0]) == (10.0, 40.0)


@pytest.mark.parametrize(
    ("dtype", "nodata", "shape"),
    [
        (np.uint8, 0, (6, 6)),  # 36 cells: the raster ends in a partial word
        (np.uint8, 3, (29, 37)),  # a nodata code other than 0 is what a run's outside bytes read as
        (np.uint8, None, (16, 24)),  # no nodata code: every byte is counted one by one
        (np.uint16, 0, (29, 37)),
    ],
)
def test_histogram_path_matches_sample_path_on_codes(dtype, nodata, shape):
    h, w = shape
    grid = Grid(west=0.0, north=float(h), pixel=1.0, width=w, height=h)
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 6, size=shape).astype(dtype)
    codes[: h // 2, : w // 2] = 2  # long runs of one code, read 8 at a time
    lut = np.array([-1.0, -5.0, 12.5, 20.0, 31.0, 7.0])  # values not monotonic; codes >= 6 are nodata
    if nodata is not None:
        lut[nodata] = np.nan
    shapes = [
        shapely.Polygon([(0.2, 0.3), (w - 0.9, 0.9), (w * 0.7, h - 0.2)]),
        shapely.box(1.5, 1.5, w - 1.5, h - 1.5),
        shapely.box(0, 0, w, h),  # every cell whole, the raster's last one included
    ]
    index = ZonalIndex(grid, [coverage_weights(grid, s) for s in shapes])
    a = index.stats_codes(codes, lut)
    b = index.stats_values(np.concatenate([lut, [np.nan] * 60000])[codes])
    assert a["cells"][2] == np.isfinite(lut[codes]).sum()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, err_msg=name)


def test_the_kernel_on_two_threads_gives_what_one_thread_gives(klot_ref_cog, illinois_counties):
    raster = read_cog(klot_ref_cog)
    weights = [coverage_weights(raster.grid, to_mercator(g)) for g in illinois_counties.values()]
    one = ZonalIndex(raster.grid, weights, threads=1)
    two = ZonalIndex(raster.grid, weights, threads=2)
    assert len(one.chunks) == 1 and len(two.chunks) == 2
    a, b = raster.stats(one), raster.stats(two)
    assert np.nansum(a["count"]) > 100_000  # the counties are on the grid
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_the_kernel_is_compiled_once_and_loaded_from_disk_after(tmp_path):
    """A fresh process must load the compiled kernel from numba's cache, not compile it again (seconds)."""
    import os
    import subprocess
    import sys

    script = (
        "import numpy as np, shapely\n"
        "from radar_assets.lib.geo.zonal import ZonalIndex, coverage_weights, _zonal_kernel\n"
        "from radar_assets.lib.render.grid import Grid\n"
        "g = Grid(west=0.0, north=16.0, pixel=1.0, width=16, height=16)\n"
        "lut = np.arange(256.0); lut[0] = np.nan\n"
        "ZonalIndex(g, [coverage_weights(g, shapely.box(1, 1, 9.5, 9.5))]).stats_codes("
        "np.ones((16, 16), np.uint8), lut)\n"
        "print(sum(_zonal_kernel().stats.cache_hits.values()))\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    hits = [
        int(subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                           check=True).stdout.split()[-1])
        for _ in range(2)
    ]  # fmt: skip
    assert hits == [0, 1]


def test_weight_cache_reuses_and_invalidates(tmp_path, illinois_counties):
    grid = Grid(west=-9_900_000.0, north=5_200_000.0, pixel=1000.0, width=300, height=300)
    wkb = shapely.to_wkb(illinois_counties["DuPage"])
    cache = WeightCache(tmp_path)
    first = cache.get(grid, wkb)
    assert first.size > 0 and cache.computed == 1
    assert cache.get(grid, wkb) is first  # memory
    fresh = WeightCache(tmp_path)  # a new process: from disk
    again = fresh.get(grid, wkb)
    assert fresh.computed == 0 and fresh.loaded == 1
    np.testing.assert_array_equal(again.indices, first.indices)
    np.testing.assert_array_equal(again.weights, first.weights)
    # A different grid or geometry is a different key; a corrupt file is recomputed.
    moved = Grid(grid.west + 1.0, grid.north, grid.pixel, grid.width, grid.height)
    assert weights_key(moved, wkb) != weights_key(grid, wkb)
    other = shapely.to_wkb(illinois_counties["Cook"])
    assert weights_key(grid, other) != weights_key(grid, wkb)
    for path in tmp_path.glob("weights-*.npz"):
        path.write_bytes(b"not a numpy file")
    broken = WeightCache(tmp_path)
    np.testing.assert_array_equal(broken.get(grid, wkb).weights, first.weights)
    assert broken.computed == 1


def test_weight_cache_on_disk_is_bounded_least_recently_used_first(tmp_path, illinois_counties):
    grid = Grid(west=-9_900_000.0, north=5_200_000.0, pixel=1000.0, width=300, height=300)
    wkbs = [shapely.to_wkb(illinois_counties[name]) for name in ("DuPage", "Cook", "Will")]
    probe = WeightCache(tmp_path / "probe", max_bytes=0)
    sizes = []
    for wkb in wkbs:
        probe.get(grid, wkb)
        sizes.append((tmp_path / "probe" / f"weights-{weights_key(grid, wkb)}.npz").stat().st_size)
    cache = WeightCache(tmp_path / "bounded", max_bytes=sizes[0] + sizes[2])  # not room for all three
    first, second = cache.get(grid, wkbs[0]), cache.get(grid, wkbs[1])
    WeightCache(tmp_path / "bounded", max_bytes=cache.max_bytes).get(grid, wkbs[0])  # a use of the first
    cache.get(grid, wkbs[2])
    left = {p.name for p in (tmp_path / "bounded").glob("weights-*.npz")}
    assert left == {f"weights-{weights_key(grid, w)}.npz" for w in (wkbs[0], wkbs[2])}
    assert first.size > 0 and second.size > 0


def test_the_zonal_resource_bounds_the_weights_cache_by_the_setting(tmp_path):
    from radar_assets.defs.timeseries import build_defs
    from radar_assets.settings import load_settings

    settings = load_settings(home=str(tmp_path), render={"weights_cache_max_bytes": 12345})
    zonal = build_defs(settings).resources["zonal"]
    assert zonal.weight_cache().max_bytes == 12345


def test_float_cog_reads_values_with_nan_nodata():
    grid = Grid(west=0.0, north=512.0, pixel=1.0, width=512, height=512)
    values = np.full((512, 512), np.nan, dtype=np.float32)
    values[100:200, 100:200] = 2.5
    raster = read_cog(write_cog(values, grid))
    assert raster.lut is None and raster.grid == grid
    index = ZonalIndex(grid, [coverage_weights(grid, shapely.box(150, 312, 250, 412))])
    stats = raster.stats(index)
    # Rows 100..200 from the top are y 412..312; the box covers x 150..200 of the valued block.
    assert stats["count"][0] == pytest.approx(50 * 100)
    assert stats["mean"][0] == 2.5 and stats["coverage_fraction"][0] == pytest.approx(0.5)


def test_compiled_kernels_and_numpy_path_agree(klot_ref_cog, test_shapes):
    from radar_assets.lib.geo.zonal import _zonal_kernel

    assert _zonal_kernel() is not None  # numba is a dependency: the fast path is the one measured
    raster = read_cog(klot_ref_cog)
    index = ZonalIndex(
        raster.grid, [coverage_weights(raster.grid, to_mercator(g)) for g in test_shapes.values()]
    )
    fast_area, fast_cells = index.histograms(raster.data, raster.lut)
    fast = index.stats_codes(raster.data, raster.lut)
    index.use_kernel = False
    slow_area, slow_cells = index.histograms(raster.data, raster.lut)
    slow = index.stats_codes(raster.data, raster.lut)
    assert fast_cells[:, 1:].sum() > 0  # the shapes see echoes: the comparison is not of empty tables
    # Cell counts are identical; areas and statistics are sums in another order, equal to the last bits.
    np.testing.assert_array_equal(fast_cells, slow_cells)
    np.testing.assert_allclose(fast_area, slow_area, rtol=1e-12, atol=1e-12)
    for name in fast:
        np.testing.assert_allclose(fast[name], slow[name], rtol=1e-12, atol=0, err_msg=name)
    np.testing.assert_array_equal(fast["cells"], slow["cells"])
