"""Exact zonal statistics of polygons on a rendered sweep's EPSG:3857 grid, with weights computed once.

A radar site's grid never moves, so the exact coverage of each grid cell by a boundary is computed once per
(grid, boundary) and reused for every scan. Per scan the statistics of all boundaries are then one gather of
the scan's codes at the precomputed cell indices and one weighted histogram (``np.bincount``); the codes are
decoded to values through a lookup table on the histogram's columns, never per cell.

Coverage weights
----------------
The weight of a cell is the exact fraction of its area covered by the polygon, as exactextract computes it
(Baston 2022, "exactextract", https://github.com/isciences/exactextract). Here it is computed with the
trapezoid (shoelace) decomposition: every ring edge is split at the grid lines it crosses; a piece inside
cell ``(row, col)`` running ``du`` columns at mean row coordinate ``v`` contributes ``du * (row + 1 - v)`` to
that cell and ``du`` to every cell south of it in the same column (a running sum down each column). With
exterior rings counter-clockwise and holes clockwise the signed sums are the covered areas, holes and
multipolygons included. Pieces north of the window are clamped onto its top edge (they cover every cell
below), pieces south of it or beside it contribute nothing, so a polygon larger than the grid costs only
its edges. Coordinates are in pixel units, so a weight is an area fraction in ``[0, 1]``.

Geometries arrive in EPSG:4326 and are projected to the grid's spherical Mercator with the renderer's own
formulas (:func:`radar_assets.lib.render.grid.lonlat_to_mercator`); edges stay straight in EPSG:3857, as
they do for any tool that reprojects the polygon's vertices before computing coverage.

Invariants
----------
- ``0 < weight <= 1`` for every stored cell; a cell the polygon does not reach is absent.
- Weights depend only on the grid parameters and the geometry; the cache key hashes both (plus
  :data:`WEIGHTS_VERSION`), so changing either invalidates the cached weights.
- Statistics never see nodata: code 0 of integer COGs and NaN of float COGs are excluded.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import shapely

from radar_assets.lib import lru_files
from radar_assets.lib.render.grid import Grid, lonlat_to_mercator

#: Bump when the weight computation changes, to invalidate every cached weight file.
WEIGHTS_VERSION = 1
#: Weights below this (area fraction) are floating-point noise of cells the polygon only touches.
MIN_WEIGHT = 1e-12
#: Reflectivity threshold of ``frac_ge_20dbz``.
DBZ_THRESHOLD = 20.0
#: Threads of the per-scan kernel (its boundaries split between them): on the 2-vCPU machines a second one
#: takes 6-33% off a scan (bench/zonal.py, ``ours_1thread_per_scan_ms``); more would gain little on a job
#: this short (a fraction of a millisecond) while waking each costs tens of microseconds.
DEFAULT_THREADS = min(
    2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
)
#: Below this many cells per thread the kernel runs on the calling thread alone (waking one costs more).
MIN_CELLS_PER_THREAD = 50_000
#: Statistic columns produced per boundary (see :func:`stats_from_histogram`).
STAT_NAMES = (
    "count",
    "cells",
    "coverage_fraction",
    "mean",
    "min",
    "max",
    "p50",
    "p90",
    "frac_ge_20dbz",
)


class ZonalError(ValueError):
    """A geometry that has no area on the grid, or too many cells; the message says which."""


class CellLimitError(ZonalError):
    """The geometry covers more grid cells than the caller allows."""


# --------------------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------------------


def to_mercator(geom_4326: shapely.Geometry) -> shapely.Geometry:
    """Project an EPSG:4326 geometry to the renderer's EPSG:3857 (vertices projected, edges straight)."""

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = lonlat_to_mercator(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom_4326, project)


def grid_fingerprint(grid: Grid) -> str:
    """Stable text of every grid parameter the weights depend on (exact float bits)."""
    parts = (grid.west, grid.north, grid.pixel)
    return "|".join(float(v).hex() for v in parts) + f"|{int(grid.width)}x{int(grid.height)}"


def window_cells(grid: Grid, geom_3857: shapely.Geometry) -> int:
    """Number of grid cells in the part of the geometry's bounding box that lies on the grid."""
    c0, r0, c1, r1 = _window(grid, geom_3857)
    return max(0, c1 - c0) * max(0, r1 - r0)


def _window(grid: Grid, geom: shapely.Geometry) -> tuple[int, int, int, int]:
    minx, miny, maxx, maxy = geom.bounds
    c0 = max(0, int(np.floor((minx - grid.west) / grid.pixel)))
    c1 = min(grid.width, int(np.ceil((maxx - grid.west) / grid.pixel)))
    r0 = max(0, int(np.floor((grid.north - maxy) / grid.pixel)))
    r1 = min(grid.height, int(np.ceil((grid.north - miny) / grid.pixel)))
    return c0, r0, c1, r1


# --------------------------------------------------------------------------------------------------
# Exact coverage
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CellWeights:
    """Exact coverage of one geometry on one grid (sparse).

    Attributes
    ----------
    indices : numpy.ndarray
        ``int64`` flat (row-major) indices of the covered cells, ascending.
    weights : numpy.ndarray
        ``float64`` covered fraction of each of those cells, in ``(0, 1]``.
    area_cells : float
        Area of the whole geometry in cell units (also the part off the grid); the denominator of
        coverage fractions. 0 for points.
    """

    indices: np.ndarray
    weights: np.ndarray
    area_cells: float

    @property
    def size(self) -> int:
        return int(self.indices.size)

    @property
    def total(self) -> float:
        """Sum of the weights: the geometry's area on the grid, in cells."""
        return float(self.weights.sum())


EMPTY_WEIGHTS = CellWeights(np.zeros(0, np.int64), np.zeros(0, np.float64), 0.0)


def coverage_weights(grid: Grid, geom_3857: shapely.Geometry, max_cells: int | None = None) -> CellWeights:
    """Exact covered fraction of every grid cell by a geometry in EPSG:3857 (uncached).

    Parameters
    ----------
    grid : Grid
        The raster grid.
    geom_3857 : shapely.Geometry
        Polygon or MultiPolygon (area weights), or Point/MultiPoint (weight 1 on the cell holding each
        point). Other parts of a collection are ignored.
    max_cells : int, optional
        Refuse (:class:`CellLimitError`) when the geometry's window on the grid holds more cells.

    Returns
    -------
    CellWeights
        Empty when the geometry misses the grid.
    """
    if geom_3857 is None or geom_3857.is_empty:
        return EMPTY_WEIGHTS
    polygons, points = _split_parts(geom_3857)
    if max_cells is not None:
        cells = window_cells(grid, shapely.union_all(polygons)) if polygons else 0
        if cells > max_cells:
            raise CellLimitError(f"the geometry spans {cells} grid cells, more than the limit of {max_cells}")
    parts = []
    area = 0.0
    if polygons:
        multi = shapely.MultiPolygon(polygons) if len(polygons) > 1 else polygons[0]
        area = float(shapely.area(multi)) / grid.pixel**2
        parts.append(_polygon_weights(grid, multi))
    if points:
        parts.append(_point_weights(grid, points))
    if len(parts) == 1:
        idx, w = parts[0]
    else:
        idx = np.concatenate([p[0] for p in parts])
        w = np.concatenate([p[1] for p in parts])
        idx, inverse = np.unique(idx, return_inverse=True)
        w = np.minimum(np.bincount(inverse, weights=w), 1.0)
    return CellWeights(idx.astype(np.int64), w.astype(np.float64), area)


def _split_parts(geom: shapely.Geometry) -> tuple[list, list]:
    polygons, points = [], []
    for part in shapely.get_parts(geom):
        kind = part.geom_type
        if kind == "Polygon" and not part.is_empty:
            polygons.append(part)
        elif kind == "MultiPolygon":
            polygons.extend(p for p in part.geoms if not p.is_empty)
        elif kind == "Point" and not part.is_empty:
            points.append(part)
        elif kind in ("MultiPoint", "GeometryCollection"):
            sub_polys, sub_points = (
                _split_parts(part) if kind == "GeometryCollection" else ([], list(part.geoms))
            )
            polygons.extend(sub_polys)
            points.extend(p for p in sub_points if not p.is_empty)
    return polygons, points


def _point_weights(grid: Grid, points: list) -> tuple[np.ndarray, np.ndarray]:
    xy = shapely.get_coordinates(points)
    col = np.floor((xy[:, 0] - grid.west) / grid.pixel)
    row = np.floor((grid.north - xy[:, 1]) / grid.pixel)
    ok = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
    idx = np.unique(row[ok].astype(np.int64) * grid.width + col[ok].astype(np.int64))
    return idx, np.ones(idx.size, np.float64)


def _polygon_weights(grid: Grid, geom: shapely.Geometry) -> tuple[np.ndarray, np.ndarray]:
    c0, r0, c1, r1 = _window(grid, geom)
    if c1 <= c0 or r1 <= r0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    # Exterior rings counter-clockwise, holes clockwise: signed trapezoid sums are covered areas.
    oriented = shapely.orient_polygons(geom)
    rings = shapely.get_rings(shapely.get_parts(oriented))
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    u = (xy[:, 0] - grid.west) / grid.pixel
    v = (grid.north - xy[:, 1]) / grid.pixel
    same = ring_of[1:] == ring_of[:-1]
    ua, va, ub, vb = u[:-1][same], v[:-1][same], u[1:][same], v[1:][same]
    du, dv = ub - ua, vb - va

    # Split points of every segment: its two ends and its crossings of the window's grid lines.
    ts, us, vs, segs = [], [], [], []
    n = ua.size
    seg_ids = np.arange(n)
    for t, uu, vv in ((np.zeros(n), ua, va), (np.ones(n), ub, vb)):
        ts.append(t), us.append(uu), vs.append(vv), segs.append(seg_ids)
    for along, a, d, other_a, other_d, lo_lim, hi_lim in (
        ("u", ua, du, va, dv, c0, c1),
        ("v", va, dv, ua, du, r0, r1),
    ):
        moving = d != 0
        lo = np.maximum(np.ceil(np.minimum(a, a + d)), lo_lim)
        hi = np.minimum(np.floor(np.maximum(a, a + d)), hi_lim)
        count = np.where(moving, np.maximum(hi - lo + 1, 0), 0).astype(np.int64)
        total = int(count.sum())
        if total == 0:
            continue
        seg = np.repeat(seg_ids, count)
        first = np.repeat(np.cumsum(count) - count, count)
        k = np.repeat(lo, count) + (np.arange(total) - first)
        t = (k - a[seg]) / d[seg]
        other = other_a[seg] + t * other_d[seg]
        ts.append(t), segs.append(seg)
        if along == "u":
            us.append(k), vs.append(other)
        else:
            us.append(other), vs.append(k)
    t = np.concatenate(ts)
    seg = np.concatenate(segs)
    pu = np.concatenate(us)
    pv = np.concatenate(vs)
    order = np.lexsort((t, seg))
    seg, pu, pv = seg[order], pu[order], pv[order]
    keep = seg[1:] == seg[:-1]
    # Pieces beside the window contribute nothing (du = 0 after clamping); pieces north of it lie on
    # its top edge and cover every cell below; pieces south of it are dropped with their row.
    u0 = np.clip(pu[:-1][keep], c0, c1)
    u1 = np.clip(pu[1:][keep], c0, c1)
    v0 = np.clip(pv[:-1][keep], r0, r1)
    v1 = np.clip(pv[1:][keep], r0, r1)
    dpu = u1 - u0
    moving = dpu != 0
    u0, u1, v0, v1, dpu = u0[moving], u1[moving], v0[moving], v1[moving], dpu[moving]
    vmid = (v0 + v1) / 2.0
    col = np.floor((u0 + u1) / 2.0).astype(np.int64)
    row = np.floor(vmid).astype(np.int64)
    inside = (row < r1) & (col >= c0) & (col < c1)
    col, row, vmid, dpu = col[inside], row[inside], vmid[inside], dpu[inside]

    h, w = r1 - r0, c1 - c0
    # Running sum down each column of the full-height contributions, plus each piece's own cell.
    below = np.bincount((row - r0 + 1) * w + (col - c0), weights=dpu, minlength=(h + 1) * w)
    cover = np.cumsum(below.reshape(h + 1, w)[:h], axis=0)
    own = np.bincount((row - r0) * w + (col - c0), weights=dpu * (row + 1 - vmid), minlength=h * w)
    cover = -(cover.ravel() + own)  # counter-clockwise in (x, y-up) is clockwise in (col, row-down)
    hit = np.flatnonzero(cover > MIN_WEIGHT)
    weights = np.minimum(cover[hit], 1.0)
    rows, cols = np.divmod(hit, w)
    return (rows + r0) * grid.width + (cols + c0), weights


# --------------------------------------------------------------------------------------------------
# Cache: memory LRU + optional disk
# --------------------------------------------------------------------------------------------------


def weights_key(grid: Grid, geometry_wkb: bytes) -> str:
    """Cache key of a (grid, geometry): changes whenever the grid or the geometry's WKB changes."""
    h = hashlib.sha256()
    h.update(f"v{WEIGHTS_VERSION}|{grid_fingerprint(grid)}|".encode())
    h.update(geometry_wkb)
    return h.hexdigest()[:40]


class WeightCache:
    """Coverage weights per (grid, EPSG:4326 geometry), computed once.

    A memory LRU of ``max_entries`` and, when ``directory`` is given, one ``.npz`` per key on disk
    (written atomically; an unreadable file is recomputed and rewritten), so fresh processes reuse them.
    The disk files are kept under ``max_bytes`` (``Settings.render.weights_cache_max_bytes`` in the
    platform, passed by the ``zonal`` resource; 0 or None: no bound), least recently used removed first
    (:mod:`radar_assets.lib.lru_files`). Thread-safe.
    """

    def __init__(
        self, directory: str | Path | None = None, max_entries: int = 512, max_bytes: int | None = None
    ):
        self.directory = Path(directory) if directory is not None else None
        self.max_entries = int(max_entries)
        self.max_bytes = int(max_bytes or 0)
        self._memory: OrderedDict[str, CellWeights] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0
        self.loaded = 0

    def get(self, grid: Grid, geometry_wkb: bytes) -> CellWeights:
        """Weights of an EPSG:4326 geometry (WKB) on ``grid``."""
        key = weights_key(grid, geometry_wkb)
        with self._lock:
            hit = self._memory.get(key)
            if hit is not None:
                self._memory.move_to_end(key)
                return hit
        weights = self._load(key)
        if weights is None:
            weights = coverage_weights(grid, to_mercator(shapely.from_wkb(geometry_wkb)))
            self.computed += 1
            self._store(key, weights)
        else:
            self.loaded += 1
            lru_files.touch(self._path(key))
        with self._lock:
            self._memory[key] = weights
            self._memory.move_to_end(key)
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)
        return weights

    def _path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"weights-{key}.npz"

    def _load(self, key: str) -> CellWeights | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                idx, w, area = z["indices"], z["weights"], float(z["area_cells"])
        except (OSError, ValueError, KeyError, EOFError):
            return None
        if idx.dtype != np.int64 or w.dtype != np.float64 or idx.shape != w.shape:
            return None
        return CellWeights(idx, w, area)

    def _store(self, key: str, weights: CellWeights) -> None:
        path = self._path(key)
        if path is None:
            return
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            np.savez(buf, indices=weights.indices, weights=weights.weights, area_cells=weights.area_cells)
            fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(buf.getvalue())
            os.replace(tmp, path)
            tmp = None
            lru_files.evict(path.parent, self.max_bytes, "weights-*.npz")
        except OSError:
            pass  # the cache is an optimisation: a read-only or full disk only costs recomputation
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# Per-scan statistics
# --------------------------------------------------------------------------------------------------


class ZonalIndex:
    """The weights of several boundaries on one grid, stacked for one-pass statistics per scan.

    Parameters
    ----------
    grid : Grid
        The grid all weights belong to.
    weights : list of CellWeights
        One per boundary, in output order.
    """

    def __init__(self, grid: Grid, weights: list[CellWeights], threads: int | None = None):
        self.grid = grid
        self.n = len(weights)
        sizes = np.array([w.size for w in weights], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.segment = np.repeat(np.arange(self.n, dtype=np.int64), sizes)
        self.indices = (
            np.concatenate([w.indices for w in weights]) if self.n else np.zeros(0, np.int64)
        ).astype(np.intp)
        self.weights = np.concatenate([w.weights for w in weights]) if self.n else np.zeros(0)
        self.area_cells = np.array([w.area_cells for w in weights], dtype=np.float64)
        self.covered = np.bincount(self.segment, weights=self.weights, minlength=self.n)
        self._bases: dict[int, np.ndarray] = {}
        # Whole cells (the interior, most of a county) are counted without weights, which is cheaper.
        whole = self.weights == 1.0
        self._whole_idx = self.indices[whole]
        self._part_idx = self.indices[~whole]
        self._part_w = self.weights[~whole]
        self._whole_seg = self.segment[whole]
        self._part_seg = self.segment[~whole]
        # For the compiled kernel: the whole cells of each boundary as runs of consecutive flat indices
        # (a county is a few hundred row segments), so the scan's codes are read sequentially with no
        # index array at all; partly covered cells keep 32-bit indices (half the memory traffic).
        small = grid.width * grid.height < 2**31
        self._part_idx32 = self._part_idx.astype(np.int32 if small else np.int64)
        self._part_off = np.concatenate([[0], np.cumsum(np.bincount(self._part_seg, minlength=self.n))])
        self._run_start, self._run_len, self._run_off = _runs(self._whole_idx, self._whole_seg, self.n)
        #: Use the compiled kernel when numba is importable (the numpy path gives the same results).
        self.use_kernel = True
        self.threads = DEFAULT_THREADS if threads is None else max(1, int(threads))
        #: Boundary ranges the kernel's threads take, of about equal numbers of cells.
        self.chunks = _chunks(sizes, self.threads if self.indices.size >= MIN_CELLS_PER_THREAD * 2 else 1)

    @property
    def _kernel_on(self) -> bool:
        return self.use_kernel and _zonal_kernel() is not None

    def _base(self, ncodes: int) -> tuple[np.ndarray, np.ndarray]:
        if ncodes not in self._bases:
            # intp keys: np.bincount would otherwise cast a narrower key array (one more pass).
            self._bases[ncodes] = (
                (self._whole_seg * ncodes).astype(np.intp),
                (self._part_seg * ncodes).astype(np.intp),
            )
        return self._bases[ncodes]

    def histograms(self, codes: np.ndarray, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(boundaries, codes)`` covered area (cells) and number of touched cells of each code.

        The column of the nodata code the kernel skips (:attr:`_CodeTable.skip`) is 0.
        """
        codes = self._check_shape(codes)
        table = _code_table(lut, codes.dtype, DBZ_THRESHOLD)
        ncodes = int(table.lut.size)
        if self._kernel_on:
            area = np.zeros((self.n, ncodes), np.float64)
            cells = np.zeros((self.n, ncodes), np.int64)
            self._run_kernel(codes, table, area, cells)
            return area, cells
        flat = codes.reshape(-1)
        size = self.n * ncodes
        whole_base, part_base = self._base(ncodes)
        whole = np.bincount(np.add(whole_base, np.take(flat, self._whole_idx)), minlength=size)
        key = np.add(part_base, np.take(flat, self._part_idx))
        area = np.bincount(key, weights=self._part_w, minlength=size)
        area += whole
        cells = np.bincount(key, minlength=size)
        cells += whole
        area, cells = area.reshape(self.n, ncodes), cells.reshape(self.n, ncodes)
        if table.skip >= 0:
            area[:, table.skip] = 0.0
            cells[:, table.skip] = 0
        return area, cells

    def stats_codes(
        self, codes: np.ndarray, lut: np.ndarray, threshold: float = DBZ_THRESHOLD
    ) -> dict[str, np.ndarray]:
        """Statistics of every boundary from an integer code raster and its code -> value table.

        Parameters
        ----------
        codes : numpy.ndarray
            ``(height, width)`` ``uint8``/``uint16`` codes on :attr:`grid`.
        lut : numpy.ndarray
            Value of every code, NaN for nodata codes (codes beyond ``lut.size`` are nodata).
        """
        codes = self._check_shape(codes)
        table = _code_table(lut, codes.dtype, threshold)
        if self._kernel_on:
            stats = self._run_kernel(codes, table, _NO_HIST, _NO_CELLS)
            out = dict(zip(STAT_NAMES, stats, strict=True))
            out["cells"] = stats[1].astype(np.int64)
            return out
        if self.n * table.lut.size > 50_000_000:  # a dense histogram would be too large: decode per cell
            return self.stats_values(table.lut[codes], threshold)
        area, cells = self.histograms(codes, table.lut)
        return stats_from_histogram(area, cells, table.lut, self.area_cells, threshold)

    def _check_shape(self, raster: np.ndarray) -> np.ndarray:
        if raster.shape != (self.grid.height, self.grid.width):
            raise ValueError(
                f"raster shape {raster.shape} is not the grid's {(self.grid.height, self.grid.width)}"
            )
        return raster

    def _run_kernel(self, codes: np.ndarray, table: _CodeTable, keep_area, keep_cells) -> np.ndarray:
        """The compiled kernel over every boundary, its :attr:`chunks` on as many threads."""
        kernel = _zonal_kernel()
        flat = np.ascontiguousarray(codes).reshape(-1)
        words = flat[: flat.size // 8 * 8].view(np.uint64) if flat.dtype == np.uint8 else _NO_WORDS
        out = np.empty((len(STAT_NAMES), self.n), np.float64)
        args = (
            flat, words, self._run_start, self._run_len, self._run_off, self._part_idx32, self._part_w,
            self._part_off, table.skip, table.order, table.values, table.by_code, table.valid, table.ge_mask,
            self.area_cells,
        )  # fmt: skip
        rest = [
            _pool(len(self.chunks) - 1).submit(kernel, *args, b0, b1, out, keep_area, keep_cells)
            for b0, b1 in self.chunks[1:]
        ]
        b0, b1 = self.chunks[0]
        kernel(*args, b0, b1, out, keep_area, keep_cells)
        for future in rest:
            future.result()
        return out

    def stats_values(self, values: np.ndarray, threshold: float = DBZ_THRESHOLD) -> dict[str, np.ndarray]:
        """Statistics of every boundary from a float raster (NaN is nodata)."""
        v = np.take(self._check_shape(values).reshape(-1), self.indices).astype(np.float64)
        ok = np.isfinite(v)
        return stats_from_samples(
            v[ok], self.weights[ok], self.segment[ok], self.n, self.area_cells, threshold
        )


def _runs(idx: np.ndarray, seg: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ascending flat indices of each segment as runs of consecutive indices: start, length, and the
    per-segment offsets into them."""
    if idx.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(n + 1, np.int64)
    new = np.ones(idx.size, bool)
    new[1:] = (np.diff(idx) != 1) | (seg[1:] != seg[:-1])
    first = np.flatnonzero(new)
    lengths = np.diff(np.append(first, idx.size))
    per_seg = np.bincount(seg[first], minlength=n)
    return idx[first].astype(np.int64), lengths.astype(np.int64), np.concatenate([[0], np.cumsum(per_seg)])


def _chunks(sizes: np.ndarray, threads: int) -> list[tuple[int, int]]:
    """``threads`` consecutive boundary ranges with about equal numbers of cells (none empty)."""
    n = int(sizes.size)
    if threads <= 1 or n <= 1:
        return [(0, n)]
    cum = np.cumsum(sizes)
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, threads) / threads, side="left") + 1
    bounds = np.unique(np.clip(np.concatenate([[0], cuts, [n]]), 0, n))
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


_POOL: tuple[int, int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """The process's helper threads of the zonal kernel (made again after a fork: threads do not survive it)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] < workers:
            _POOL = (os.getpid(), workers, ThreadPoolExecutor(workers, thread_name_prefix="zonal"))
        return _POOL[2]


class _CodeTable(NamedTuple):
    """A code -> value table as the kernel reads it (see :func:`_code_table`)."""

    lut: np.ndarray  # float64 value of every code of the raster's dtype, NaN for nodata
    order: np.ndarray  # valid codes in ascending value order
    values: np.ndarray  # their values
    by_code: np.ndarray  # value of each code, 0 when nodata
    valid: np.ndarray  # 1.0 for valid codes, 0.0 for nodata
    ge_mask: np.ndarray  # 1.0 for valid codes with value >= the threshold
    skip: int  # the first nodata code (never counted), -1 if none


def _code_table(lut: np.ndarray, code_dtype: np.dtype, threshold: float) -> _CodeTable:
    """The kernel's view of a code table, cached: a site's table never changes."""
    return _code_table_cached(lut.tobytes(), lut.dtype.str, np.dtype(code_dtype).str, float(threshold))


@functools.lru_cache(maxsize=64)
def _code_table_cached(lut_bytes: bytes, lut_dtype: str, code_dtype: str, threshold: float) -> _CodeTable:
    lut = np.frombuffer(lut_bytes, dtype=np.dtype(lut_dtype)).astype(np.float64)
    # Every code of an integer dtype gets an entry (NaN beyond the table): the kernel indexes its counters
    # by code without bounds checks.
    size = np.iinfo(np.dtype(code_dtype)).max + 1
    if lut.size < size:
        lut = np.concatenate([lut, np.full(size - lut.size, np.nan)])
    order, values = _lut_order(lut.tobytes(), lut.dtype.str)
    ok = np.isfinite(lut)
    by_code = np.where(ok, lut, 0.0)
    nodata = np.flatnonzero(~ok)
    return _CodeTable(
        lut=lut,
        order=order,
        values=values,
        by_code=by_code,
        valid=ok.astype(np.float64),
        ge_mask=(ok & (by_code >= threshold)).astype(np.float64),
        skip=int(nodata[0]) if nodata.size else -1,
    )


_NO_WORDS = np.zeros(0, np.uint64)
_prefetch = _count_word = None  # set by _zonal_kernel
_NO_HIST = np.zeros((0, 0), np.float64)
_NO_CELLS = np.zeros((0, 0), np.int64)
#: Runs ahead of the one being counted whose cache lines are prefetched: a county's rows are a raster row
#: apart, so without it every run waits for memory when the scan is not in cache.
PREFETCH_RUNS = 16


@functools.cache
def _prefetch_intrinsic():
    """``prefetch(array, index)``: LLVM's ``llvm.prefetch`` on an array element, callable from numba code."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def prefetch(typingctx, array, index):
        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            builder.call(fn, [ptr, i32(0), i32(3), i32(1)])  # read, keep in all cache levels, data
            return context.get_dummy_value()

        return types.void(array, index), codegen

    return prefetch


@functools.cache
def _zonal_kernel():
    """The per-scan statistics of a range of boundaries in one compiled pass (None without numba).

    ``kernel(flat, words, run_start, run_len, run_off, part_idx, part_w, part_off, skip, order, values,
    by_code, valid, ge_mask, area_cells, b0, b1, out, keep_area, keep_cells)`` fills columns ``b0:b1`` of
    ``out`` (rows in :data:`STAT_NAMES` order) with :func:`stats_from_histogram`'s definitions; when
    ``keep_area`` has rows it also receives every boundary's histogram (area and cells per code).

    Per boundary, single-threaded and without the GIL (callers split the boundaries between threads):

    - whole cells, run by run: uint8 codes are read 8 at a time (``words``); the bytes of a run's first and
      last word outside the run read as the ``skip`` code (a nodata code, never counted); 4 words of
      ``skip`` codes (no echo, mostly) cost one test; other words are counted byte by byte into four
      interleaved 32-bit counter rows that stay in L1 (one row would serialise every increment of a repeated
      code on one memory word). Cache lines are prefetched :data:`PREFETCH_RUNS` runs ahead. Other code
      types are counted byte by byte.
    - partly covered cells add their weight in index order into their own counters, alternating between
      two (the same reason as the counter rows);
    - one pass over the codes builds the boundary's histogram, its masked sums (count, weighted sum, area
      >= threshold) and zeroes the counters for the next boundary; min and max are the first and last code
      with cells in value order, p50 and p90 come from one cumulative walk.

    Compiled once per code dtype and cached on disk by numba. Sums run in another order than the numpy
    path's, so the two agree to ``rtol`` 1e-12, not bit for bit; cell counts are identical.
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; numpy path as a fallback
        return None
    # Module globals, not closure cells: numba's disk cache keys a closure by its pickled cells, and the
    # intrinsic and jitted helpers pickle differently in every process (the kernel would compile again at
    # every start).
    global _prefetch, _count_word
    _prefetch = _prefetch_intrinsic()
    ahead = PREFETCH_RUNS
    full = np.uint64(0xFFFFFFFFFFFFFFFF)
    byte = np.uint64(0xFF)

    @numba.njit(nogil=True, boundscheck=False, inline="always")
    def count_word(w, c0, c1, c2, c3):
        c0[w & byte] += 1
        c1[(w >> np.uint64(8)) & byte] += 1
        c2[(w >> np.uint64(16)) & byte] += 1
        c3[(w >> np.uint64(24)) & byte] += 1
        c0[(w >> np.uint64(32)) & byte] += 1
        c1[(w >> np.uint64(40)) & byte] += 1
        c2[(w >> np.uint64(48)) & byte] += 1
        c3[w >> np.uint64(56)] += 1

    _count_word = count_word

    @numba.njit(cache=True, nogil=True, boundscheck=False, fastmath={"reassoc", "nsz", "contract"})
    def kernel(
        flat, words, run_start, run_len, run_off, part_idx, part_w, part_off, skip, order, values,
        by_code, valid, ge_mask, area_cells, b0, b1, out, keep_area, keep_cells,
    ):  # fmt: skip
        nc = by_code.size
        c0 = np.zeros(nc, np.int32)
        c1 = np.zeros(nc, np.int32)
        c2 = np.zeros(nc, np.int32)
        c3 = np.zeros(nc, np.int32)
        part = np.zeros(nc, np.float64)
        part2 = np.zeros(nc, np.float64)
        pcells = np.zeros(nc, np.int32)
        pcells2 = np.zeros(nc, np.int32)
        area = np.empty(nc, np.float64)
        cells = np.empty(nc, np.int64)
        use_words = words.size > 0 and skip >= 0
        s = np.uint64(max(skip, 0)) * np.uint64(0x0101010101010101)  # a word of 8 skip codes
        word_end = words.size * 8 if use_words else 0
        nruns = run_start.size
        nvals = order.size
        nan = np.nan
        for r in range(run_off[b0], min(run_off[b0] + ahead, nruns)):
            _prefetch(flat, run_start[r])
        for b in range(b0, b1):
            for r in range(run_off[b], run_off[b + 1]):
                if r + ahead < nruns:  # a run is 1-3 cache lines; the hardware follows longer ones
                    pa = run_start[r + ahead]
                    _prefetch(flat, pa)
                    _prefetch(flat, pa + 64)
                    _prefetch(flat, pa + run_len[r + ahead] - 1)
                start = run_start[r]
                stop = start + run_len[r]
                wstop = min(stop, word_end)
                if start < wstop:
                    wa = start >> 3
                    wb = (wstop - 1) >> 3
                    head = full << np.uint64((start & 7) * 8)
                    tail = full >> np.uint64((7 - ((wstop - 1) & 7)) * 8)
                    if wa == wb:
                        head &= tail
                    w = (words[wa] & head) | (s & ~head)
                    if w != s:
                        _count_word(w, c0, c1, c2, c3)
                    q = wa + 1
                    while q + 4 <= wb:  # 4 words of skip codes (no echo, mostly) in one test
                        if (words[q] ^ s) | (words[q + 1] ^ s) | (words[q + 2] ^ s) | (words[q + 3] ^ s):
                            for j in range(q, q + 4):
                                if words[j] != s:
                                    _count_word(words[j], c0, c1, c2, c3)
                        q += 4
                    while q < wb:
                        if words[q] != s:
                            _count_word(words[q], c0, c1, c2, c3)
                        q += 1
                    if wb > wa:
                        w = (words[wb] & tail) | (s & ~tail)
                        if w != s:
                            _count_word(w, c0, c1, c2, c3)
                # Bytes not read as words: every code of other dtypes, the raster's last partial word.
                i = max(start, word_end)
                stop4 = i + max(stop - i, 0) // 4 * 4
                while i < stop4:
                    c0[flat[i]] += 1
                    c1[flat[i + 1]] += 1
                    c2[flat[i + 2]] += 1
                    c3[flat[i + 3]] += 1
                    i += 4
                while i < stop:
                    c0[flat[i]] += 1
                    i += 1
            i = part_off[b]
            stop = part_off[b + 1]
            while i + 1 < stop:
                k = flat[part_idx[i]]
                if k != skip:
                    pcells[k] += 1
                    part[k] += part_w[i]
                k = flat[part_idx[i + 1]]
                if k != skip:
                    pcells2[k] += 1
                    part2[k] += part_w[i + 1]
                i += 2
            if i < stop:
                k = flat[part_idx[i]]
                if k != skip:
                    pcells[k] += 1
                    part[k] += part_w[i]
            # Histogram of the boundary, its sums, and the counters zeroed for the next boundary.
            count = 0.0
            total = 0.0
            ge = 0.0
            ncells = 0
            for k in range(nc):
                whole = c0[k] + c1[k] + c2[k] + c3[k]
                a = whole + (part[k] + part2[k])
                c = np.int64(whole + pcells[k] + pcells2[k])
                area[k] = a
                cells[k] = c
                count += a * valid[k]
                total += a * by_code[k]
                ge += a * ge_mask[k]
                ncells += c * np.int64(valid[k])
            c0[:] = 0
            c1[:] = 0
            c2[:] = 0
            c3[:] = 0
            part[:] = 0.0
            part2[:] = 0.0
            pcells[:] = 0
            pcells2[:] = 0
            if skip >= 0:
                area[skip] = 0.0
                cells[skip] = 0
            if keep_area.shape[0]:
                keep_area[b, :] = area
                keep_cells[b, :] = cells
            size = area_cells[b]
            out[0, b] = count
            out[1, b] = ncells
            out[2, b] = count / size if size > 0 else nan
            out[8, b] = ge / size if size > 0 else nan
            if ncells == 0:
                for row in range(3, 8):
                    out[row, b] = nan
                continue
            out[3, b] = total / count
            lo = 0
            while cells[order[lo]] == 0:
                lo += 1
            hi = nvals - 1
            while cells[order[hi]] == 0:
                hi -= 1
            out[4, b] = values[lo]
            out[5, b] = values[hi]
            t50 = 0.5 * count * (1.0 - 1e-9)
            t90 = 0.9 * count * (1.0 - 1e-9)
            j50 = hi
            j90 = hi
            cum = 0.0
            found50 = False
            for j in range(lo, hi + 1):
                cum += area[order[j]]
                if not found50 and cum >= t50:
                    j50 = j
                    found50 = True
                if cum >= t90:
                    j90 = j
                    break
            out[6, b] = values[j50]
            out[7, b] = values[j90]

    return kernel


def _empty_stats(n: int) -> dict[str, np.ndarray]:
    out = {name: np.full(n, np.nan) for name in STAT_NAMES}
    out["count"] = np.zeros(n)
    out["cells"] = np.zeros(n, np.int64)
    return out


def stats_from_histogram(
    hist: np.ndarray,
    hist_cells: np.ndarray,
    lut: np.ndarray,
    area_cells: np.ndarray,
    threshold: float = DBZ_THRESHOLD,
) -> dict[str, np.ndarray]:
    """Statistics from per-code covered areas (the integer-code fast path).

    Definitions (``w`` = covered fraction of a valid cell, ``v`` its value):

    - ``count`` = sum of ``w`` (exactextract's ``count``); ``cells`` = number of valid cells with ``w > 0``;
    - ``coverage_fraction`` = ``count`` / the geometry's area in cells (the share of the boundary with data);
    - ``mean`` = sum(w v) / sum(w); ``min``/``max`` over valid cells with ``w > 0`` (coverage not weighted);
    - ``p50``/``p90``: weighted lower quantile, the smallest value ``x`` with sum of ``w`` over ``v <= x``
      at least ``q`` times ``count`` (no interpolation; a relative tolerance of 1e-9 absorbs rounding);
    - ``frac_ge_20dbz`` = sum of ``w`` over ``v >= threshold`` / the geometry's area in cells.

    Statistics of a boundary without valid cells are NaN (``count`` 0). This is the numpy reference;
    :meth:`ZonalIndex.stats_codes` computes the same in its compiled kernel.
    """
    n = hist.shape[0]
    order, values = _lut_order(lut.tobytes(), lut.dtype.str)
    out = _empty_stats(n)
    h = np.take(hist, order, axis=1)
    c = np.take(hist_cells, order, axis=1)
    count = h.sum(axis=1)
    cells = c.sum(axis=1)
    has = cells > 0
    rows = np.flatnonzero(has)
    out["count"] = count
    out["cells"] = cells.astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["coverage_fraction"] = np.where(area_cells > 0, count / area_cells, np.nan)
        first_ge = int(np.searchsorted(values, threshold, side="left"))
        out["frac_ge_20dbz"] = np.where(area_cells > 0, h[:, first_ge:].sum(axis=1) / area_cells, np.nan)
    if rows.size == 0:
        return out
    h, c, count = h[rows], c[rows], count[rows]
    # Row-wise sums, not a matrix product: BLAS would make a boundary's last bits depend on the others.
    out["mean"][rows] = (h * values).sum(axis=1) / count
    present = c > 0
    out["min"][rows] = values[np.argmax(present, axis=1)]
    out["max"][rows] = values[present.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1)]
    cum = np.cumsum(h, axis=1)
    for name, q in (("p50", 0.5), ("p90", 0.9)):
        # Index of the first value whose cumulative covered area reaches q * count.
        below = (cum < (q * count * (1.0 - 1e-9))[:, None]).sum(axis=1)
        out[name][rows] = values[np.minimum(below, values.size - 1)]
    return out


@functools.lru_cache(maxsize=64)
def _lut_order(lut_bytes: bytes, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Valid codes in ascending value order, and their values (cached: a site's table never changes)."""
    lut = np.frombuffer(lut_bytes, dtype=np.dtype(dtype))
    valid = np.flatnonzero(np.isfinite(lut))
    order = valid[np.argsort(lut[valid], kind="stable")]
    return order, lut[order].astype(np.float64)


def stats_from_samples(
    v: np.ndarray,
    w: np.ndarray,
    seg: np.ndarray,
    n: int,
    area_cells: np.ndarray,
    threshold: float = DBZ_THRESHOLD,
) -> dict[str, np.ndarray]:
    """Statistics from valid samples (value, covered fraction, boundary), same definitions as
    :func:`stats_from_histogram`; used for float rasters."""
    out = _empty_stats(n)
    cells = np.bincount(seg, minlength=n)
    count = np.bincount(seg, weights=w, minlength=n)
    has = cells > 0
    out["count"] = count
    out["cells"] = cells.astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["coverage_fraction"] = np.where(area_cells > 0, count / area_cells, np.nan)
        out["mean"] = np.where(has, np.bincount(seg, weights=w * v, minlength=n) / count, np.nan)
        ge = v >= threshold
        out["frac_ge_20dbz"] = np.where(
            area_cells > 0, np.bincount(seg[ge], weights=w[ge], minlength=n) / area_cells, np.nan
        )
    if v.size == 0:
        return out
    order = np.lexsort((v, seg))
    vs, ws, ss = v[order], w[order], seg[order]
    starts = np.concatenate([[0], np.cumsum(cells)[:-1]])
    ends = starts + cells - 1
    idx = np.flatnonzero(has)
    out["min"][idx] = vs[starts[idx]]
    out["max"][idx] = vs[ends[idx]]
    cum = np.cumsum(ws)
    before = np.concatenate([[0.0], cum])[starts]  # cumulative weight before each segment
    for name, q in (("p50", 0.5), ("p90", 0.9)):
        target = before + q * count * (1.0 - 1e-9)
        pos = np.searchsorted(cum, target[idx], side="left")
        pos = np.minimum(np.maximum(pos, starts[idx]), ends[idx])
        out[name][idx] = vs[pos]
    del ss
    return out


# --------------------------------------------------------------------------------------------------
# Reading the renderer's COGs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SweepRaster:
    """A rendered sweep's COG in memory: its grid, its band and how to decode it.

    ``lut`` is the code -> value table of integer COGs (NaN for nodata code 0), None for float32 COGs
    whose ``data`` are the values (NaN nodata).
    """

    grid: Grid
    data: np.ndarray
    lut: np.ndarray | None

    def stats(self, index: ZonalIndex, threshold: float = DBZ_THRESHOLD) -> dict[str, np.ndarray]:
        if self.lut is not None:
            return index.stats_codes(self.data, self.lut, threshold)
        return index.stats_values(self.data, threshold)

    def values(self) -> np.ndarray:
        """Decoded float64 values (NaN nodata)."""
        if self.lut is None:
            return self.data.astype(np.float64)
        return self.lut[self.data]


def read_cog(data: bytes) -> SweepRaster:
    """Read a COG written by :func:`radar_assets.lib.render.cog.write_cog` (full resolution, band 1).

    Integer COGs keep their codes; the lookup table is ``code * scale + offset`` with the nodata code NaN.
    """
    import rasterio
    from rasterio.io import MemoryFile

    with rasterio.Env(GDAL_NUM_THREADS="1"), MemoryFile(data) as mem, mem.open() as ds:
        if ds.crs is None or ds.crs.to_epsg() != 3857:
            raise ValueError(f"COG is not on an EPSG:3857 grid (crs {ds.crs})")
        t = ds.transform
        if t.b != 0 or t.d != 0 or t.a != -t.e:
            raise ValueError("COG grid is not north-up with square pixels")
        grid = Grid(west=float(t.c), north=float(t.f), pixel=float(t.a), width=ds.width, height=ds.height)
        band = ds.read(1)
        if band.dtype in (np.uint8, np.uint16):
            scale, offset = float(ds.scales[0]), float(ds.offsets[0])
            lut = np.arange(np.iinfo(band.dtype).max + 1, dtype=np.float64) * scale + offset
            if ds.nodata is not None:
                lut[int(ds.nodata)] = np.nan
            return SweepRaster(grid, band, lut)
        values = band.astype(np.float32, copy=False)
        if ds.nodata is not None and np.isfinite(ds.nodata):
            values = np.where(values == ds.nodata, np.float32(np.nan), values)
        return SweepRaster(grid, values, None)
