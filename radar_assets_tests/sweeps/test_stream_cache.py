"""The Level 2 stream cache: ingest decompresses a volume once and the renderer reuses it, with identical output."""

import os
import time

import pytest

from radar_assets.lib.keys import sha256_hex
from radar_assets.lib.readers.nexrad_level2 import (
    decompress_level2,
    read_level2,
    read_level2_metadata,
)
from radar_assets.lib.readers.stream_cache import StreamCache
from radar_assets.lib.scans import ingest_partition
from radar_assets.lib.seed import seed
from radar_assets.lib.store import LocalStore
from radar_assets.lib.sweeps import render_partition
from radar_assets_tests.conftest import shared_path

VOLUME = ("level2", "KLOT", "KLOT20190617_181704_V06")
OTHER = ("level2", "KCRP", "KCRP20200101_000431_V06")


@pytest.fixture(scope="module")
def volume():
    data = shared_path(*VOLUME).read_bytes()
    return data, sha256_hex(data)


def test_round_trip_gives_the_same_reads_and_consumes_the_entry(tmp_path, volume):
    data, digest = volume
    cache = StreamCache(tmp_path / "streams")
    assert cache.put(digest, decompress_level2(data))
    assert cache.total_bytes() > 0
    stream = cache.take(digest)
    assert stream is not None
    assert cache.take(digest) is None  # taken: a volume is rendered once
    assert cache.total_bytes() == 0
    assert read_level2_metadata(stream) == read_level2_metadata(data)
    a, b = read_level2(stream, ["REF"]), read_level2(data, ["REF"])
    assert (a.site, a.lat, a.lon, a.start_time) == (b.site, b.lat, b.lon, b.start_time)
    assert [s.index for s in a.sweeps] == [s.index for s in b.sweeps]
    for sa, sb in zip(a.sweeps, b.sweeps, strict=True):
        assert (sa.moments["REF"].codes == sb.moments["REF"].codes).all()


def test_a_stream_that_does_not_fit_is_not_kept(tmp_path, volume):
    data, digest = volume
    other = shared_path(*OTHER).read_bytes()
    probe = StreamCache(tmp_path / "probe", max_bytes=0)
    probe.put(digest, decompress_level2(data))
    one = probe.total_bytes()
    cache = StreamCache(tmp_path / "streams", max_bytes=one + 1000)
    assert cache.put(digest, decompress_level2(data))
    # Full of a fresh entry (its render is still to come): the next stream is skipped, not the first evicted.
    assert not cache.put(sha256_hex(other), decompress_level2(other))
    assert cache.total_bytes() <= cache.max_bytes
    assert cache.take(sha256_hex(other)) is None
    # An entry nobody took for stale_s is abandoned and makes room.
    old = time.time() - 2 * cache.stale_s
    os.utime(cache.root / f"stream-{digest}.lz4", (old, old))
    assert cache.put(sha256_hex(other), decompress_level2(other))
    assert cache.take(digest) is None
    assert cache.take(sha256_hex(other)) is not None


def test_corrupt_or_foreign_entries_are_misses(tmp_path, volume):
    data, digest = volume
    cache = StreamCache(tmp_path / "streams")
    cache.put(digest, decompress_level2(data))
    path = cache.root / f"stream-{digest}.lz4"
    path.write_bytes(path.read_bytes()[:5000])  # truncated
    assert cache.take(digest) is None
    assert not path.exists()
    path.write_bytes(b"not a stream at all")
    assert cache.take(digest) is None
    with pytest.raises(ValueError, match="hex digest"):
        cache.take("../escape")


def test_ingest_leaves_streams_that_render_consumes_with_identical_images(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    for rel in (VOLUME, OTHER):
        (loose / rel[-1]).write_bytes(shared_path(*rel).read_bytes())
    seed(loose, LocalStore(tmp_path / "source"), log=lambda _m: None)
    source = LocalStore(tmp_path / "source")
    outputs = {}
    for mode in ("cached", "plain"):
        store = LocalStore(tmp_path / f"store-{mode}")
        streams = StreamCache(tmp_path / "streams") if mode == "cached" else None
        images = {}
        for site, day in (("KLOT", "2019-06-17"), ("KCRP", "2020-01-01")):
            partition = f"{day}|{site}"
            ingested = ingest_partition(
                source, store, site, day, partition, level3_products=[], streams=streams
            )
            assert ingested.scans.num_rows == 1
            if streams is not None:
                assert streams.total_bytes() > 0  # left for the renderer
            result = render_partition(ingested.scans, store, partition, None, 256, ["REF"], streams=streams)
            assert result.rejects.num_rows == 0 and result.images > 0
            assert result.streams_reused == (1 if streams is not None else 0)
            if streams is not None:
                assert streams.total_bytes() == 0  # the renderer took it: decompressed once
            for key in (
                result.sweeps.column("png_key").to_pylist() + result.sweeps.column("cog_key").to_pylist()
            ):
                images[key] = store.get_bytes(key)
        outputs[mode] = images
    assert outputs["cached"] == outputs["plain"]
