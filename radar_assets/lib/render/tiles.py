"""XYZ map tiles (OGC WebMercatorQuad) of a sweep's value COG, rendered with rio-tiler.

A COG (see :mod:`radar_assets.lib.render.cog`) is opened from its bytes, the tile is read with its GDAL
scale/offset applied (``unscale``), rescaled from the value range ``vmin``..``vmax`` and coloured.

Invariants
----------
- No data and non-finite values are transparent.
- A tile that misses the COG raises :class:`TileOutside`; an unreadable COG raises :class:`TileSourceError`.
"""

from __future__ import annotations

import numpy as np


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
    colormap: str,
    tilesize: int,
) -> bytes:
    """PNG of tile ``z/x/y`` of a single-band COG coloured with rio-tiler's ``colormap``.

    Without a usable ``vmin``/``vmax`` the tile's own value range is used.
    """
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
