"""Cloud-Optimized GeoTIFF of a rendered sweep's values (OGC COG 1.0; written by GDAL's COG driver).

The COG carries the moment's values on exactly the EPSG:3857 grid of the PNG overlay, tiled 512x512
with internal overviews, so it can be read by range requests (rio-tiler, TiTiler, GDAL /vsicurl/)
and used for zonal statistics. Two encodings:

* ``scaled`` (for moments whose codes are linear, i.e. every Level 2 moment): the raw codes as
  ``uint8``/``uint16`` with the GDAL band scale/offset that turns them into values
  (``value = code * scale + offset``) and nodata 0. Lossless, a quarter of the float32 size and about
  three times faster to encode. Read with ``rasterio``: ``band * ds.scales[0] + ds.offsets[0]`` on a
  masked read, or rio-tiler's ``unscale=True``.
* ``float32`` (for non-linear code tables, e.g. Level 3 products): the values themselves, NaN nodata.

Written in memory (``rasterio.io.MemoryFile``); the caller stores the bytes atomically.
"""

from __future__ import annotations

import numpy as np

from .grid import Grid

#: Creation options of GDAL's COG driver. ZSTD at level 1 encodes a 2048x2048 sweep about twice as
#: fast as DEFLATE for a smaller file; every GDAL >= 2.3 (rasterio, rio-tiler, TiTiler) reads it.
COG_OPTIONS = {
    "compress": "ZSTD",
    "level": 1,
    "blocksize": 512,
    "overview_resampling": "nearest",
    "bigtiff": "NO",
}


def write_cog(
    data: np.ndarray,
    grid: Grid,
    tags: dict | None = None,
    band_description: str = "",
    *,
    scale: float | None = None,
    offset: float | None = None,
) -> bytes:
    """Encode a ``(height, width)`` raster on ``grid`` as COG bytes.

    Parameters
    ----------
    data : numpy.ndarray
        ``float32`` values (NaN is nodata) or ``uint8``/``uint16`` codes (0 is nodata) when ``scale``
        and ``offset`` are given.
    grid : Grid
        The EPSG:3857 grid (``data.shape == (grid.height, grid.width)``).
    tags : dict, optional
        Dataset metadata tags (site, time, moment, units, ...), stringified.
    band_description : str
        Description of band 1 (e.g. ``"REF (dBZ)"``).
    scale, offset : float, optional
        GDAL band scale/offset of integer codes (``value = code * scale + offset``).
    """
    import rasterio
    from rasterio.io import MemoryFile

    if data.shape != (grid.height, grid.width):
        raise ValueError(f"data shape {data.shape} does not match grid {(grid.height, grid.width)}")
    scaled = scale is not None
    if scaled and data.dtype not in (np.uint8, np.uint16):
        raise ValueError("scaled COGs hold uint8/uint16 codes")
    profile = {
        "driver": "COG",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": data.dtype.name if scaled else "float32",
        "crs": "EPSG:3857",
        "transform": grid.transform(),
        "nodata": 0 if scaled else float("nan"),
        # Floating-point predictor for float32 values; integer codes compress best without one.
        "predictor": 1 if scaled else 3,
        **COG_OPTIONS,
    }
    array = data if scaled else data.astype(np.float32, copy=False)
    # A small block cache: the dataset is written once and never re-read, so GDAL's default cache
    # (5% of RAM) would only inflate the process's peak memory.
    with rasterio.Env(GDAL_NUM_THREADS="1", GDAL_CACHEMAX=64), MemoryFile() as mem:
        with mem.open(**profile) as dst:
            # A (1, height, width) array is written as is; a 2-D one would be restacked by rasterio.
            dst.write(array[None])
            if scaled:
                dst.scales = (float(scale),)
                dst.offsets = (float(offset),)
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items()})
            if band_description:
                dst.set_band_description(1, band_description)
        return bytes(mem.getbuffer())
