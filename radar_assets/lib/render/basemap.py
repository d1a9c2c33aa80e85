"""US state lines for static map pictures, decoded from the TopoJSON shipped in ``data/states-10m.json``.

TopoJSON (https://github.com/topojson/topojson-specification, section 2.1.2-2.1.4): with a ``transform``,
every arc is a list of delta-encoded quantised positions; position ``i`` is the running sum of the deltas,
and ``lon = x * scale[0] + translate[0]``, ``lat = y * scale[1] + translate[1]``. Every arc is drawn once,
which is exactly the state-and-coast mesh (shared borders are one arc in a topology).

Invariants
----------
- Lines are in degrees (EPSG:4326), each an ``(n, 2)`` float array of (lon, lat), ``n >= 2``.
- Decoding reads only the package file: no network, no ``../shared``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

STATES_TOPOJSON = Path(__file__).parent / "data" / "states-10m.json"


def decode_arcs(topology: dict) -> list[np.ndarray]:
    """Every arc of a (quantised or not) TopoJSON topology as lon/lat arrays."""
    transform = topology.get("transform")
    out = []
    for arc in topology["arcs"]:
        pts = np.asarray(arc, dtype=np.float64)[:, :2]
        if transform:
            pts = np.cumsum(pts, axis=0) * np.asarray(transform["scale"]) + np.asarray(transform["translate"])
        if len(pts) >= 2:
            out.append(pts)
    return out


@lru_cache(maxsize=1)
def state_lines() -> tuple[np.ndarray, ...]:
    """State borders and coastlines of the shipped us-atlas topology."""
    return tuple(decode_arcs(json.loads(STATES_TOPOJSON.read_text())))


def lines_within(bounds: tuple[float, float, float, float], margin: float = 0.5) -> list[np.ndarray]:
    """The state lines with at least one vertex inside ``bounds`` (west, south, east, north) plus ``margin``°."""
    w, s, e, n = bounds
    keep = []
    for line in state_lines():
        lon, lat = line[:, 0], line[:, 1]
        inside = (lon >= w - margin) & (lon <= e + margin) & (lat >= s - margin) & (lat <= n + margin)
        if inside.any():
            keep.append(line)
    return keep
