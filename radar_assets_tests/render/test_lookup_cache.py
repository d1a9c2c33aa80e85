"""The on-disk cache of polar lookups: a cached lookup equals a fresh one; bad files are rebuilt."""

from __future__ import annotations

import numpy as np
import pytest

from radar_assets.lib.render import grid as G


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    old = G.lookup_cache_dir()
    G.set_lookup_cache_dir(tmp_path / "lookups")
    G.polar_lookup.cache_clear()
    yield tmp_path / "lookups"
    G.polar_lookup.cache_clear()
    G.set_lookup_cache_dir(old)


def _case():
    lat, lon, radius = 41.6044, -88.0847, 60_000.0
    return G.grid_for_range(lat, lon, radius, 256), lat, lon, radius


def _assert_equal(a: G.PolarLookup, b: G.PolarLookup) -> None:
    assert (a.width, a.first, a.mirrored) == (b.width, b.first, b.mirrored)
    np.testing.assert_array_equal(a.az, b.az)
    np.testing.assert_array_equal(a.s, b.s)
    assert a.az.dtype == b.az.dtype == np.uint16 and a.s.dtype == np.uint16


def test_cached_lookup_equals_fresh_one(cache_dir):
    grid, lat, lon, radius = _case()
    fresh = G.compute_polar_lookup(grid, lat, lon, radius)
    first = G.polar_lookup(grid, lat, lon, radius)  # computes and stores
    files = list(cache_dir.glob("polar-*.npy"))
    assert len(files) == 1
    assert not list(cache_dir.glob("*.tmp"))
    G.polar_lookup.cache_clear()
    loaded = G._load_cached_lookup(files[0], grid, lat, lon)
    assert loaded is not None
    cached = G.polar_lookup(grid, lat, lon, radius)  # from disk
    for lk in (first, loaded, cached):
        _assert_equal(lk, fresh)
    assert not cached.az.flags.writeable and not cached.s.flags.writeable
    by_az = np.arange(G.N_AZ_BINS, dtype=np.int64) * 7
    by_s = np.arange(65536, dtype=np.int64)
    np.testing.assert_array_equal(cached.combine(by_az, by_s), fresh.combine(by_az, by_s))


def test_key_depends_on_inputs(cache_dir):
    grid, lat, lon, radius = _case()
    key = G._lookup_key(grid, lat, lon, radius)
    assert key != G._lookup_key(grid, lat + 1e-9, lon, radius)
    assert key != G._lookup_key(grid, lat, lon, radius + 10_000.0)
    other = G.grid_for_range(lat, lon, radius, 512)
    assert key != G._lookup_key(other, lat, lon, radius)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"not a numpy file"),
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),  # truncated
        lambda p: np.save(p, np.zeros((2, 3, 4), np.uint16)),  # wrong shape
        lambda p: np.save(p, np.zeros(1, np.float64)),  # wrong dtype
        lambda p: p.write_bytes(b""),
    ],
)
def test_corrupt_cache_file_is_ignored_and_rebuilt(cache_dir, damage):
    grid, lat, lon, radius = _case()
    fresh = G.compute_polar_lookup(grid, lat, lon, radius)
    G.polar_lookup(grid, lat, lon, radius)
    (path,) = cache_dir.glob("polar-*.npy")
    damage(path)
    G.polar_lookup.cache_clear()
    assert G._load_cached_lookup(path, grid, lat, lon) is None
    _assert_equal(G.polar_lookup(grid, lat, lon, radius), fresh)
    # The bad file was replaced by a good one.
    G.polar_lookup.cache_clear()
    loaded = G._load_cached_lookup(path, grid, lat, lon)
    assert loaded is not None
    _assert_equal(loaded, fresh)


def test_cache_can_be_disabled_or_unwritable(tmp_path, monkeypatch):
    grid, lat, lon, radius = _case()
    fresh = G.compute_polar_lookup(grid, lat, lon, radius)
    old = G.lookup_cache_dir()
    G.set_lookup_cache_dir(None)
    G.polar_lookup.cache_clear()
    _assert_equal(G.polar_lookup(grid, lat, lon, radius), fresh)
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    G.set_lookup_cache_dir(blocker / "sub")  # cannot be created
    G.polar_lookup.cache_clear()
    _assert_equal(G.polar_lookup(grid, lat, lon, radius), fresh)
    G.polar_lookup.cache_clear()
    G.set_lookup_cache_dir(old)
