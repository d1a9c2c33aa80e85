"""XYZ map tiles (OGC WebMercatorQuad) of a sweep's value COG, rendered with rio-tiler.

A COG (see :mod:`radar_assets.lib.render.cog`) is opened from its bytes and the tile is read with its GDAL
scale/offset applied (``unscale``). By default it is coloured with the moment's own colour table
(:mod:`radar_assets.lib.render.colors`, the table the sweep PNGs use, so tiles and PNGs agree value for
value); a rio-tiler colormap name instead rescales the value range ``vmin``..``vmax`` through that map.

Invariants
----------
- No data and non-finite values are transparent.
- A tile that misses the COG raises :class:`TileOutside` (callers answer :func:`empty_tile`); an unreadable
  COG raises :class:`TileSourceError`.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np

from radar_assets.lib.render.colors import ColourTable


class TileOutside(Exception):
    """The requested tile does not intersect the raster."""


class TileSourceError(ValueError):
    """The raster cannot be read as a GeoTIFF."""


def render_tile(
    cog: bytes,
    z: int,
    x: int,
    y: int,
    *,
    vmin: float | None,
    vmax: float | None,
    colormap: str | None = None,
    table: ColourTable | None = None,
    tilesize: int,
) -> bytes:
    """PNG of tile ``z/x/y`` of a single-band COG.

    Coloured with ``table`` (values coloured exactly as :meth:`ColourTable.rgba` does) when given, else
    with rio-tiler's ``colormap`` over ``vmin``..``vmax`` (without a usable range, the tile's own).
    """
    if (table is None) == (colormap is None):
        raise ValueError("give exactly one of colormap and table")
    from rasterio.errors import RasterioError
    from rasterio.io import MemoryFile
    from rio_tiler.colormap import cmap
    from rio_tiler.errors import TileOutsideBounds
    from rio_tiler.io import Reader

    try:
        with MemoryFile(cog) as mem, mem.open() as src, Reader(None, dataset=src) as reader:
            if not reader.tile_exists(x, y, z):
                raise TileOutside
            try:
                # unscale: sweep COGs may store integer codes with a GDAL scale/offset (lossless, smaller)
                img = reader.tile(x, y, z, tilesize=tilesize, indexes=1, unscale=True)
            except TileOutsideBounds:
                raise TileOutside from None
    except RasterioError as exc:
        raise TileSourceError(f"cannot read the GeoTIFF: {exc}") from exc
    if table is not None:
        return _table_png(img.array, table)
    lo, hi = vmin, vmax
    if lo is None or hi is None or not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        valid = img.array.compressed()
        valid = valid[np.isfinite(valid)]
        lo, hi = (float(valid.min()), float(valid.max())) if valid.size else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
    arr = img.array
    bad = ~np.isfinite(arr.data)
    arr.mask = np.ma.getmaskarray(arr) | bad
    arr.data[bad] = lo
    arr.fill_value = lo
    img.rescale(in_range=((lo, hi),))
    return img.render(img_format="PNG", colormap=cmap.get(colormap))


def _png_rgba(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def _table_png(values: np.ma.MaskedArray, table: ColourTable) -> bytes:
    band = values[0] if values.ndim == 3 else values
    data = np.ma.filled(band.astype(np.float64), np.nan)
    return _png_rgba(table.rgba(data))


@lru_cache(maxsize=4)
def empty_tile(tilesize: int = 256) -> bytes:
    """A fully transparent ``tilesize`` x ``tilesize`` PNG: the answer for a tile outside coverage."""
    return _png_rgba(np.zeros((tilesize, tilesize, 4), np.uint8))
