"""Serving stored time series fast: JSON fragments built from numpy columns, and a memory-bounded LRU.

``GET /timeseries`` answers thousands of points per request (30 days of 5-minute scans are 8,640). Building
a Python object per value and formatting every time with ``datetime`` costs more than the query; here the
columns stay numpy arrays, times become ISO text in one vectorised pass, and float columns are written by
pydantic-core (NaN as ``null``) from plain lists.

Invariants
----------
- :func:`iso_json` writes exactly the text :func:`radar_assets.api.snapshot._iso` and pydantic write for
  UTC datetimes: ``YYYY-MM-DDTHH:MM:SSZ``, with ``.ffffff`` only when the microseconds are not zero.
- :class:`SeriesCache` holds at most ``max_bytes`` (as reported by its entries); ``max_bytes`` 0 holds
  nothing. Entries are immutable, so readers share them without copies.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np
from pydantic_core import to_json

_US_PER_DAY = 86_400_000_000
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)


def _put(out: np.ndarray, col: int, value: np.ndarray, width: int) -> None:
    """Write ``value`` as ``width`` zero-padded decimal digits at column ``col`` of each row."""
    for k in range(width - 1, -1, -1):
        out[:, col + k] = _DIGITS[value % 10]
        value = value // 10


def iso_json(epoch_us: np.ndarray) -> bytes:
    """JSON array of ISO 8601 UTC texts of epoch microseconds (years 1..9999), built without Python
    objects per value."""
    us = np.asarray(epoch_us, dtype=np.int64)
    if us.size == 0:
        return b"[]"
    days, within = np.divmod(us, _US_PER_DAY)
    date = days.astype("datetime64[D]")
    year = date.astype("datetime64[Y]")
    month = date.astype("datetime64[M]")
    y = year.astype(np.int64) + 1970
    if (y < 1).any() or (y > 9999).any():
        raise ValueError("times outside years 1..9999 have no ISO 8601 text")
    m = month.astype(np.int64) % 12 + 1
    d = (date - month).astype(np.int64) + 1
    seconds, micro = np.divmod(within, 1_000_000)
    hh, rest = np.divmod(seconds, 3600)
    mi, ss = np.divmod(rest, 60)
    # One row per value: '"YYYY-MM-DDTHH:MM:SS.ffffffZ",' (30 bytes); whole seconds drop ".ffffff".
    whole = micro == 0
    fraction = not whole.all()
    template = b'"0000-00-00T00:00:00.000000Z",' if fraction else b'"0000-00-00T00:00:00Z",'
    out = np.empty((us.size, len(template)), dtype=np.uint8)
    out[:] = np.frombuffer(template, dtype=np.uint8)
    _put(out, 1, y, 4)
    _put(out, 6, m, 2)
    _put(out, 9, d, 2)
    _put(out, 12, hh, 2)
    _put(out, 15, mi, 2)
    _put(out, 18, ss, 2)
    if not fraction:
        return b"[" + out.tobytes()[:-1] + b"]"
    _put(out, 21, micro, 6)
    keep = np.ones(out.shape, dtype=bool)
    keep[whole, 20:27] = False
    return b"[" + out[keep].tobytes()[:-1] + b"]"


def floats_json(values: np.ndarray) -> bytes:
    """JSON array of float64 values, ``null`` for NaN and infinities (shortest round-trip text)."""
    return to_json(np.asarray(values, dtype=np.float64).tolist(), inf_nan_mode="null")


def object_json(values: Any) -> bytes:
    """JSON of any value pydantic-core serialises (lists of strings, scalars, dicts)."""
    return to_json(values, inf_nan_mode="null")


class SeriesCache:
    """Thread-safe LRU of immutable entries bounded by their total size in bytes.

    Keys must name everything an entry depends on (for the API: the catalog snapshot's version, which
    never changes content, plus the query). ``max_bytes`` 0 disables the cache.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> None:
        if nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._entries[key] = (value, nbytes)
            self._size += nbytes
            while self._size > self.max_bytes and self._entries:
                _, (_, size) = self._entries.popitem(last=False)
                self._size -= size

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._entries)
