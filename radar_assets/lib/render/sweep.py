"""Render one radar sweep to a Web Mercator overlay (PNG + bounds JSON) and a COG of its values.

The renderer never rasterises polygons: every output pixel is mapped to the gate that covers it
(see :mod:`radar_assets.lib.render.grid`), so a sweep renders with a handful of numpy gathers:

``pixel -> (azimuth bin, ground-distance bin)``  cached per (site, grid)
``azimuth bin -> ray``, ``ground-distance bin -> gate``  small 1-D tables per sweep
``(ray, gate) -> code -> palette index / value``  one gather each

Both the PNG (palette indices) and the COG (values) are built from the same code image, so they agree
pixel for pixel. Everything is returned as bytes; callers store them atomically.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Protocol

import numpy as np

from .cog import write_cog
from .colors import palette_for_codes, table_for
from .grid import (
    N_AZ_BINS,
    Grid,
    gate_table,
    grid_for_range,
    polar_lookup,
    ray_table,
    s_bin_m,
    slant_to_ground,
)
from .png import encode_palette_png, thumbnail

#: Grids are sized for the sweep's maximum ground range rounded up to this step, so that sweeps and
#: volumes of one site share a few grids (and their cached pixel lookups).
RANGE_STEP_M = 10_000.0
DEFAULT_SIZE = 2048
THUMBNAIL_SIZE = 256

# Sweeps rendered in parallel often share a grid: compute its lookup once, not once per thread. One
# lock per lookup key, so that threads needing different grids build (or load) them concurrently.
_lookup_locks: dict[tuple, threading.Lock] = {}
_lookup_locks_guard = threading.Lock()


def _lookup(grid: Grid, lat: float, lon: float, radius: float):
    key = (grid, float(lat), float(lon), float(radius))
    with _lookup_locks_guard:
        lock = _lookup_locks.setdefault(key, threading.Lock())
    with lock:
        return polar_lookup(*key)


class _MomentLike(Protocol):
    codes: np.ndarray
    first_gate_m: float
    gate_spacing_m: float
    units: str

    def value_lut(self) -> np.ndarray: ...


class _SweepLike(Protocol):
    index: int
    fixed_angle: float
    elevation: np.ndarray
    azimuth: np.ndarray
    start_time: datetime
    moments: dict


@dataclass
class RenderedSweep:
    """Products of one (sweep, moment).

    Attributes
    ----------
    png : bytes
        Transparent palette PNG on the EPSG:3857 grid (``size`` px on the long side).
    bounds : dict
        ``coordinates`` (four ``[lon, lat]`` corners in MapLibre/Mapbox image-source order: top-left,
        top-right, bottom-right, bottom-left), ``west``/``south``/``east``/``north`` (degrees),
        ``bbox_3857``, ``width``/``height``, ``site``/``radar_lat``/``radar_lon``, ``sweep_index``,
        ``elevation`` (fixed angle), ``elevation_mean``, ``time`` (ISO 8601 UTC of the sweep's first ray),
        ``moment``, ``units``, ``colour_table``, ``value_range`` (colour scale limits) and
        ``data_range`` (min/max of the valid values, None when the sweep has none).
    cog : bytes
        Cloud-Optimized GeoTIFF of the values on the same grid (empty if not requested): Level 2
        moments as their codes with GDAL scale/offset and nodata 0, Level 3 products as float32 with
        NaN nodata (see :mod:`radar_assets.lib.render.cog`; ``bounds["cog_encoding"]`` says which).
    thumbnail_png : bytes
        The overlay downsampled to ``THUMBNAIL_SIZE`` px on its long side (same extent).
    sweep_index : int
        Index of the sweep in its volume.
    moment : str
        Moment name.
    """

    png: bytes
    bounds: dict
    cog: bytes
    thumbnail_png: bytes
    sweep_index: int = 0
    moment: str = ""
    grid: Grid | None = field(default=None, repr=False)


def _geometry_elevation(sweep: _SweepLike) -> float:
    # One elevation per sweep for the beam geometry (the median ray), rounded to 0.01 degree so that
    # the per-sweep gate tables are shared between volumes of one VCP.
    elev = np.asarray(sweep.elevation, dtype=np.float64)
    if elev.size == 0 or not np.isfinite(elev).any():
        return float(sweep.fixed_angle)
    return round(float(np.nanmedian(elev)), 2)


@lru_cache(maxsize=64)
def _grid(lat: float, lon: float, radius_m: float, size: int) -> Grid:
    return grid_for_range(lat, lon, radius_m, size)


def sweep_grid(sweep: _SweepLike, moment: str, site_lat: float, site_lon: float, size: int = DEFAULT_SIZE):
    """The EPSG:3857 grid a (sweep, moment) is rendered on, with its radius and geometry elevation."""
    m = sweep.moments[moment]
    elev = _geometry_elevation(sweep)
    last_edge = m.first_gate_m + (m.ngates - 0.5) * m.gate_spacing_m
    s_max = float(slant_to_ground(last_edge, elev))
    radius = max(RANGE_STEP_M, math.ceil(s_max / RANGE_STEP_M) * RANGE_STEP_M)
    return _grid(float(site_lat), float(site_lon), radius, int(size)), radius, elev


def gate_index_image(
    sweep: _SweepLike, moment: str, site_lat: float, site_lon: float, size: int = DEFAULT_SIZE
) -> tuple[Grid, np.ndarray, np.ndarray]:
    """Ray and gate index of every pixel (``nrays`` / ``ngates`` where no gate covers it).

    Exposed for tests and for callers that sample other per-gate arrays on the same grid.
    """
    grid, radius, elev = sweep_grid(sweep, moment, site_lat, site_lon, size)
    m = sweep.moments[moment]
    lookup = _lookup(grid, site_lat, site_lon, radius)
    ray_tab = ray_table(sweep.azimuth)
    gate_tab = gate_table(
        float(m.first_gate_m), float(m.gate_spacing_m), int(m.ngates), elev, s_bin_m(radius)
    )
    rays = lookup.combine(ray_tab, np.zeros(65536, np.int32))
    gates = lookup.combine(np.zeros_like(ray_tab), gate_tab)
    return grid, rays, gates


def _code_image(sweep: _SweepLike, moment: str, site_lat: float, site_lon: float, size: int):
    grid, radius, elev = sweep_grid(sweep, moment, site_lat, site_lon, size)
    m = sweep.moments[moment]
    nrays, ngates = m.codes.shape
    lookup = _lookup(grid, site_lat, site_lon, radius)
    # Pad one ray and one gate of code 0 (masked) so that "no ray"/"no gate" pixels gather a mask
    # value instead of needing a separate boolean pass.
    padded = np.zeros((nrays + 1, ngates + 1), dtype=m.codes.dtype)
    padded[:nrays, :ngates] = m.codes
    rays = ray_table(sweep.azimuth) * np.int32(ngates + 1)
    gates = gate_table(float(m.first_gate_m), float(m.gate_spacing_m), int(ngates), elev, s_bin_m(radius))
    kernel = _gather_kernel()
    if kernel is None:  # pragma: no cover - numba is a dependency; the numpy path gives the same codes
        return grid, elev, padded.ravel()[lookup.combine(rays, gates)]
    out = np.empty((lookup.az.shape[0], lookup.width), dtype=padded.dtype)
    mirror = lookup.first if lookup.mirrored else 0
    kernel(lookup.az, lookup.s, lookup.first, mirror, rays, gates, padded.ravel(), out)
    return grid, elev, out


@lru_cache(maxsize=1)
def _gather_kernel():
    """``padded[rays[az] + gates[s]]`` for every pixel in one compiled pass (None without numba).

    The same gathers as :meth:`PolarLookup.combine` followed by ``padded.ravel()[flat]``, without the three
    full-size int32 intermediates (the numpy path reads and writes ~80 MB per 2048 px sweep, this one ~20 MB).
    A mirrored lookup stores the eastern columns only: western column ``k`` is stored column
    ``width - 1 - first - k`` at azimuth bin ``N_AZ_BINS - az`` (modulo ``N_AZ_BINS``). Releases the GIL, so
    the sweeps of a volume gather in parallel threads. Compiled once per code dtype and cached on disk.
    """
    try:
        import numba
    except ImportError:  # pragma: no cover
        return None
    n_az = N_AZ_BINS

    @numba.njit(cache=True, nogil=True, boundscheck=False)
    def kernel(az, s, first, mirror, rays, gates, padded, out):
        height, stored = az.shape
        top = out.shape[1] - 1 - first
        for i in range(height):
            for j in range(stored):
                a = az[i, j]
                g = gates[s[i, j]]
                out[i, first + j] = padded[rays[a] + g]
                k = top - j
                if 0 <= k < mirror:
                    out[i, k] = padded[rays[(n_az - a) % n_az] + g]

    return kernel


def render_sweep(
    sweep: _SweepLike,
    site_lat: float,
    site_lon: float,
    moment: str,
    size: int = DEFAULT_SIZE,
    *,
    site: str | None = None,
    cog: bool = True,
) -> RenderedSweep:
    """Render one moment of one sweep.

    Parameters
    ----------
    sweep : Sweep
        A Level 2 sweep (:class:`radar_assets.lib.readers.nexrad_level2.Sweep`) or a Level 3 product's
        sweep; anything with ``azimuth``, ``elevation``, ``fixed_angle``, ``start_time``, ``index`` and
        ``moments`` of ``codes``/``first_gate_m``/``gate_spacing_m``/``value_lut()``.
    site_lat, site_lon : float
        Radar location, degrees.
    moment : str
        Moment to render (a key of ``sweep.moments``).
    size : int
        Pixels on the long side of the output (default 2048).
    site : str, optional
        Site id written into the bounds and COG tags.
    cog : bool
        Also encode the value COG (the costliest part); ``RenderedSweep.cog`` is empty when False.

    Returns
    -------
    RenderedSweep
        PNG, bounds, COG and thumbnail, all on one grid.
    """
    if moment not in sweep.moments:
        raise KeyError(f"sweep {sweep.index} has no moment {moment!r} (has {sorted(sweep.moments)})")
    m = sweep.moments[moment]
    table = table_for(moment)
    value_lut = m.value_lut()
    index_lut, palette = palette_for_codes(value_lut, table)
    grid, elev, codes = _code_image(sweep, moment, site_lat, site_lon, size)
    indices = codes if index_lut is None else index_lut[codes]
    png = encode_palette_png(indices, palette)
    thumb = encode_palette_png(thumbnail(indices, THUMBNAIL_SIZE), palette)

    counts = np.bincount(m.codes.ravel(), minlength=value_lut.size)
    present = value_lut[counts > 0]
    present = present[np.isfinite(present)]
    data_range = [float(present.min()), float(present.max())] if present.size else None

    west, south, east, north = grid.lonlat_bounds()
    when = sweep.start_time.isoformat().replace("+00:00", "Z")
    bounds = {
        "coordinates": [[west, north], [east, north], [east, south], [west, south]],
        "west": west,
        "south": south,
        "east": east,
        "north": north,
        "bbox_3857": [grid.west, grid.south, grid.east, grid.north],
        "crs": "EPSG:3857",
        "width": grid.width,
        "height": grid.height,
        "site": site,
        "radar_lat": float(site_lat),
        "radar_lon": float(site_lon),
        "sweep_index": int(sweep.index),
        "elevation": float(sweep.fixed_angle),
        "elevation_mean": elev,
        "time": when,
        "moment": moment,
        "units": m.units,
        "colour_table": table.name,
        "value_range": [table.vmin, table.vmax],
        "data_range": data_range,
    }
    cog_bytes = b""
    if cog:
        tags = {
            "site": site or "",
            "time": when,
            "moment": moment,
            "units": m.units,
            "sweep_index": sweep.index,
            "elevation": sweep.fixed_angle,
        }
        description = f"{moment} ({m.units})"
        if getattr(m, "lut", None) is None:
            # Linear codes: store them losslessly with GDAL scale/offset (value = code * scale + offset).
            # Code 1 (range folded) is masked like code 0, and 0 is the COG's nodata.
            stored = np.where(codes == 1, 0, codes).astype(codes.dtype, copy=False)
            scale, offset = 1.0 / float(m.scale), -float(m.offset) / float(m.scale)
            cog_bytes = write_cog(stored, grid, tags, description, scale=scale, offset=offset)
            bounds["cog_encoding"] = {
                "dtype": codes.dtype.name,
                "scale": scale,
                "offset": offset,
                "nodata": 0,
            }
        else:
            values = value_lut.astype(np.float32, copy=False)[codes]
            cog_bytes = write_cog(values, grid, tags, description)
            bounds["cog_encoding"] = {"dtype": "float32", "scale": 1.0, "offset": 0.0, "nodata": "nan"}
    return RenderedSweep(
        png, bounds, cog_bytes, thumb, sweep_index=int(sweep.index), moment=moment, grid=grid
    )


def default_moments(sweep: _SweepLike) -> list[str]:
    """REF on every sweep that has it, VEL on the sweeps that carry it; a single-moment sweep (a Level 3
    product) renders its one moment."""
    if len(sweep.moments) == 1:
        return list(sweep.moments)
    return [name for name in ("REF", "VEL") if name in sweep.moments]


def render_volume(
    volume,
    moments: list[str] | None = None,
    size: int = DEFAULT_SIZE,
    *,
    cog: bool = True,
    workers: int | None = None,
) -> list[RenderedSweep]:
    """Render every sweep of a volume (in a thread pool; numpy gathers, zlib and GDAL release the GIL).

    Parameters
    ----------
    volume : Volume
        A decoded volume (``site``, ``lat``, ``lon``, ``sweeps``).
    moments : list of str, optional
        Moments to render on every sweep that carries them; default :func:`default_moments`.
    size : int
        Long-side pixels.
    cog : bool
        Also write COGs.
    workers : int, optional
        Threads (default: CPU count, at most 4).

    Returns
    -------
    list of RenderedSweep
        In (sweep index, moment) order.
    """
    jobs = []
    for sweep in volume.sweeps:
        names = default_moments(sweep) if moments is None else [m for m in moments if m in sweep.moments]
        jobs.extend((sweep, name) for name in names)
    n = workers or max(1, min(4, os.cpu_count() or 1))

    def run(job):
        sweep, name = job
        return render_sweep(sweep, volume.lat, volume.lon, name, size, site=volume.site, cog=cog)

    if n == 1 or len(jobs) <= 1:
        return [run(j) for j in jobs]
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, jobs))


__all__ = [
    "DEFAULT_SIZE",
    "RenderedSweep",
    "default_moments",
    "gate_index_image",
    "render_sweep",
    "render_volume",
    "sweep_grid",
]
