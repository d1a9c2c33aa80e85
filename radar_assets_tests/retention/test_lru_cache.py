"""The lookup cache's size bound: least recently used first, never above the bound, on real files."""

from __future__ import annotations

import os

import pytest

from radar_assets.lib import lru_files
from radar_assets.lib.render import grid as G


def _file(root, name: str, size: int, used_ns: int):
    path = root / name
    path.write_bytes(b"x" * size)
    os.utime(path, ns=(used_ns, used_ns))
    return path


def test_evicts_least_recently_used_first_and_stays_within_the_bound(tmp_path):
    base = 1_700_000_000 * 10**9
    names = [f"polar-{i}.npy" for i in range(6)]
    for i, name in enumerate(names):
        _file(tmp_path, name, 100, base + i * 10**9)
    lru_files.touch(tmp_path / names[0])  # the oldest file is used again: now the newest
    other = _file(tmp_path, "notes.txt", 10_000, base)  # outside the pattern: never counted or removed
    removed = lru_files.evict(tmp_path, 350, "polar-*.npy")
    assert [p.name for p in removed] == names[1:4]
    left = sorted(p.name for p in tmp_path.glob("polar-*.npy"))
    assert left == sorted([names[0], names[4], names[5]])
    assert sum(p.stat().st_size for p in tmp_path.glob("polar-*.npy")) <= 350
    assert other.exists()
    assert lru_files.evict(tmp_path, 0, "polar-*.npy") == []  # 0: unbounded


def test_files_used_after_older_than_stay_even_above_the_bound(tmp_path):
    base = 1_700_000_000 * 10**9
    names = [f"stream-{i}.lz4" for i in range(4)]
    for i, name in enumerate(names):
        _file(tmp_path, name, 100, base + i * 10**9)
    removed = lru_files.evict(tmp_path, 100, "stream-*.lz4", older_than=(base + 10**9) / 1e9)
    assert [p.name for p in removed] == names[:2]  # the two newer ones stay: 200 bytes, over the bound
    assert sorted(p.name for p in tmp_path.glob("stream-*.lz4")) == names[2:]


@pytest.fixture
def bounded_cache(tmp_path):
    old_dir, old_limit = G.lookup_cache_dir(), G._CACHE_MAX_BYTES[0]
    G.set_lookup_cache_dir(tmp_path / "lookups")
    G.polar_lookup.cache_clear()
    yield tmp_path / "lookups"
    G.polar_lookup.cache_clear()
    G.set_lookup_cache_dir(old_dir)
    G.set_lookup_cache_limit(old_limit)


def test_renderer_cache_never_exceeds_its_bound_and_keeps_the_recently_used(bounded_cache):
    lat, lon = 41.6044, -88.0847
    # Three radars 0.1 degree apart, same grid size: three lookups of equal bytes.
    cases = [(G.grid_for_range(lat + d, lon, 60_000.0, 160), lat + d, lon, 60_000.0) for d in (0, 0.1, 0.2)]
    paths = [G._lookup_cache_path(*case).name for case in cases]
    G.polar_lookup(*cases[0])
    one = sum(p.stat().st_size for p in bounded_cache.glob("polar-*.npy"))
    G.set_lookup_cache_limit(int(one * 2.5))  # room for two
    G.polar_lookup(*cases[1])
    G.polar_lookup.cache_clear()  # a new process: the disk cache is what is shared
    G.polar_lookup(*cases[0])  # a hit: the first lookup becomes the most recently used
    G.polar_lookup(*cases[2])
    files = {p.name for p in bounded_cache.glob("polar-*.npy")}
    assert sum(p.stat().st_size for p in bounded_cache.glob("polar-*.npy")) <= one * 2.5
    assert files == {paths[0], paths[2]}, "the least recently used (second) lookup was evicted"
