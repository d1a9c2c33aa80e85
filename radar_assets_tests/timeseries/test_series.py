"""JSON fragments of stored series and the memory-bounded series cache of ``GET /timeseries``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np

from radar_assets.lib.timeseries.series import SeriesCache, floats_json, iso_json


def test_iso_json_writes_what_pydantic_writes_for_utc_datetimes():
    from pydantic_core import to_json

    rng = np.random.default_rng(3)
    us = rng.integers(-1_000_000_000_000_000, 250_000_000_000_000_000, 2000)
    us[::2] -= us[::2] % 1_000_000  # whole seconds: no fraction
    us[:3] = [0, 951_782_400_000_000, 951_868_799_999_999]  # epoch, 2000-02-29, its last microsecond
    expected = [datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(v)) for v in us]
    assert iso_json(us) == to_json(expected)
    assert iso_json(us[::2]) == to_json(expected[::2])  # the all-whole-seconds path
    assert json.loads(iso_json(us[:0])) == []


def test_floats_json_writes_null_for_missing_and_round_trips():
    values = np.array([1.0, np.nan, -2.5e-9, np.inf, 0.1 + 0.2])
    assert json.loads(floats_json(values)) == [1.0, None, -2.5e-9, None, 0.1 + 0.2]


def test_series_cache_is_bounded_and_least_recently_used_goes_first():
    cache = SeriesCache(max_bytes=100)
    cache.put("a", 1, 40)
    cache.put("b", 2, 40)
    assert cache.get("a") == 1  # b is now the least recently used
    cache.put("c", 3, 40)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert cache.size <= 100 and len(cache) == 2
    cache.put("huge", 4, 101)  # larger than the bound: never held
    assert cache.get("huge") is None and len(cache) == 2
    off = SeriesCache(max_bytes=0)
    off.put("a", 1, 1)
    assert off.get("a") is None
