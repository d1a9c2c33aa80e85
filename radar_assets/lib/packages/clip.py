"""Clip a rendered sweep's value COG to a polygon with a real mask (not the polygon's bounding box).

The input is a value COG written by :mod:`radar_assets.lib.render.cog` (OGC Cloud Optimized GeoTIFF 1.0,
EPSG:3857, band 1 = Level 2 codes as ``uint8``/``uint16`` with GDAL scale/offset and nodata 0, or Level 3
values as ``float32`` with NaN nodata). The output keeps the source encoding and grid alignment:

* the window is the polygon's bounding box snapped outwards to whole source cells and intersected with the
  source grid, so every output cell is exactly one source cell (no resampling);
* the mask is the polygon rasterised by cell centre (``rasterio.features.geometry_mask`` with
  ``all_touched=False``): a cell whose centre lies outside the polygon becomes nodata, a cell whose centre
  lies inside keeps its source code (nodata stays nodata);
* dtype, scale, offset, nodata, band description and the source tags are carried over, plus the boundary
  id and the source COG's store key, so the clipped file stands alone.

Polygons arrive in EPSG:4326 (the boundaries registry's CRS) and are projected vertex by vertex with the
renderer's own spherical-Mercator formulas (:func:`radar_assets.lib.render.grid.lonlat_to_mercator`), so
the polygon and the grid agree exactly on where a degree is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from radar_assets.lib.render.grid import Grid, lonlat_to_mercator


@dataclass(frozen=True)
class ClippedRaster:
    """One source COG clipped to a polygon.

    Attributes
    ----------
    data : numpy.ndarray
        ``(height, width)`` codes (nodata 0) or ``float32`` values (NaN nodata); cells outside the polygon
        hold nodata.
    grid : Grid
        The window's EPSG:3857 grid (aligned with the source grid, same pixel size).
    inside : numpy.ndarray
        Boolean ``(height, width)``: cell centre inside the polygon.
    scale, offset : float or None
        GDAL band scale/offset of integer codes (``None`` for float32 values).
    tags : dict
        Dataset tags of the source COG.
    description : str
        Band 1 description of the source COG.
    """

    data: np.ndarray
    grid: Grid
    inside: np.ndarray
    scale: float | None
    offset: float | None
    tags: dict = field(default_factory=dict)
    description: str = ""

    @property
    def cells_inside(self) -> int:
        return int(self.inside.sum())

    @property
    def valid(self) -> np.ndarray:
        """Cells inside the polygon holding data."""
        if self.scale is None:
            return self.inside & np.isfinite(self.data)
        return self.inside & (self.data != 0)

    def values(self) -> np.ndarray:
        """Physical values as ``float32``, NaN where there is no data or outside the polygon."""
        if self.scale is None:
            out = self.data.astype(np.float32, copy=True)
        else:
            out = (self.data.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)).astype(
                np.float32
            )
        out[~self.valid] = np.nan
        return out


def polygon_to_mercator(geometry):
    """Project a shapely geometry from EPSG:4326 degrees to EPSG:3857 metres (the renderer's sphere)."""
    import shapely

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = lonlat_to_mercator(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometry, project)


def window_of(grid: Grid, bounds: tuple[float, float, float, float]) -> tuple[int, int, int, int] | None:
    """``(col0, row0, width, height)`` of the whole cells of ``grid`` covering EPSG:3857 ``bounds``.

    ``None`` when the bounds do not overlap the grid.
    """
    minx, miny, maxx, maxy = bounds
    col0 = max(0, math.floor((minx - grid.west) / grid.pixel))
    col1 = min(grid.width, math.ceil((maxx - grid.west) / grid.pixel))
    row0 = max(0, math.floor((grid.north - maxy) / grid.pixel))
    row1 = min(grid.height, math.ceil((grid.north - miny) / grid.pixel))
    if col1 <= col0 or row1 <= row0:
        return None
    return col0, row0, col1 - col0, row1 - row0


def clip_cog(cog: bytes, geometry_3857) -> ClippedRaster | None:
    """Clip a value COG to a polygon already in EPSG:3857 (see :func:`polygon_to_mercator`).

    Parameters
    ----------
    cog : bytes
        A single-band GeoTIFF in EPSG:3857 (a rendered sweep's value COG).
    geometry_3857 : shapely geometry
        Polygon or MultiPolygon in EPSG:3857 metres.

    Returns
    -------
    ClippedRaster or None
        ``None`` when no cell centre of the source grid lies inside the polygon (the polygon is outside
        the sweep's grid); otherwise the window with every cell outside the polygon set to nodata.
    """
    import rasterio
    from rasterio.features import geometry_mask
    from rasterio.io import MemoryFile
    from rasterio.windows import Window

    with rasterio.Env(GDAL_NUM_THREADS="1", GDAL_CACHEMAX=64), MemoryFile(cog) as mem, mem.open() as src:
        if src.crs is None or src.crs.to_epsg() != 3857:
            raise ValueError(f"value COG is not in EPSG:3857 (crs {src.crs})")
        t = src.transform
        grid = Grid(west=t.c, north=t.f, pixel=t.a, width=src.width, height=src.height)
        win = window_of(grid, geometry_3857.bounds)
        if win is None:
            return None
        col0, row0, width, height = win
        sub = Grid(
            west=grid.west + col0 * grid.pixel,
            north=grid.north - row0 * grid.pixel,
            pixel=grid.pixel,
            width=width,
            height=height,
        )
        inside = geometry_mask(
            [geometry_3857],
            out_shape=(height, width),
            transform=sub.transform(),
            all_touched=False,
            invert=True,
        )
        if not inside.any():
            return None
        data = src.read(1, window=Window(col0, row0, width, height))
        scaled = data.dtype in (np.uint8, np.uint16)
        if scaled:
            data[~inside] = 0
        else:
            data = data.astype(np.float32, copy=False)
            data[~inside] = np.nan
        return ClippedRaster(
            data=data,
            grid=sub,
            inside=inside,
            scale=float(src.scales[0]) if scaled else None,
            offset=float(src.offsets[0]) if scaled else None,
            tags=dict(src.tags()),
            description=src.descriptions[0] or "",
        )


def encode_clipped(clipped: ClippedRaster, extra_tags: dict | None = None) -> bytes:
    """COG bytes of a clipped raster (same creation options as the renderer: deterministic bytes)."""
    from radar_assets.lib.render.cog import write_cog

    tags = {**clipped.tags, **(extra_tags or {})}
    return write_cog(
        clipped.data,
        clipped.grid,
        dict(sorted(tags.items())),
        clipped.description,
        scale=clipped.scale,
        offset=clipped.offset,
    )
