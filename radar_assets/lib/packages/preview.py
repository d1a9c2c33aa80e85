"""Preview PNG of a package: the day's maximum reflectivity inside the boundary, under its outline.

Drawn with Pillow on a north-up EPSG:3857 canvas covering the polygon's bounding box plus a margin,
``size`` pixels on its long side. Every clipped reflectivity raster (any site, any scan of the day) is
sampled at the canvas pixel centres (nearest cell, no interpolation) and the per-pixel maximum is coloured
with the renderer's NWS reflectivity table. Canvas pixels whose centre lies outside the polygon are left
unpainted (the clipped cells are coarser than canvas pixels, so the mask is applied again at the canvas
resolution). The outline (every ring of the polygon) is drawn on
top. The PNG carries no text chunks or timestamps (Pillow writes none unless asked), so equal inputs give
equal bytes.
"""

from __future__ import annotations

import io

import numpy as np

from radar_assets.lib.packages.clip import ClippedRaster
from radar_assets.lib.render.colors import REFLECTIVITY
from radar_assets.lib.render.grid import Grid

BACKGROUND = (246, 246, 246)
INSIDE = (228, 228, 232)
OUTLINE = (32, 32, 32)


def canvas_grid(bounds: tuple[float, float, float, float], size: int, margin: float = 0.04) -> Grid:
    """North-up grid over EPSG:3857 ``bounds`` plus ``margin`` (fraction of the long side) on every side."""
    minx, miny, maxx, maxy = bounds
    span = max(maxx - minx, maxy - miny, 1.0)
    pad = span * margin
    pixel = (span + 2 * pad) / size
    width = max(1, int(np.ceil((maxx - minx + 2 * pad) / pixel)))
    height = max(1, int(np.ceil((maxy - miny + 2 * pad) / pixel)))
    return Grid(west=minx - pad, north=maxy + pad, pixel=pixel, width=width, height=height)


def max_composite(rasters: list[ClippedRaster], canvas: Grid) -> np.ndarray:
    """Per-pixel maximum value of ``rasters`` sampled at ``canvas`` pixel centres (NaN where none has data)."""
    out = np.full((canvas.height, canvas.width), np.nan, dtype=np.float32)
    xs = canvas.west + (np.arange(canvas.width) + 0.5) * canvas.pixel
    ys = canvas.north - (np.arange(canvas.height) + 0.5) * canvas.pixel
    for r in rasters:
        values = r.values()
        cols = np.floor((xs - r.grid.west) / r.grid.pixel).astype(np.int64)
        rows = np.floor((r.grid.north - ys) / r.grid.pixel).astype(np.int64)
        ok_c = (cols >= 0) & (cols < r.grid.width)
        ok_r = (rows >= 0) & (rows < r.grid.height)
        if not ok_c.any() or not ok_r.any():
            continue
        sampled = np.full(out.shape, np.nan, dtype=np.float32)
        sub = values[np.ix_(rows[ok_r], cols[ok_c])]
        sampled[np.ix_(ok_r, ok_c)] = sub
        np.fmax(out, sampled, out=out)
    return out


def _rings(geometry_3857) -> list[np.ndarray]:
    polys = getattr(geometry_3857, "geoms", [geometry_3857])
    rings = []
    for p in polys:
        rings.append(np.asarray(p.exterior.coords))
        rings.extend(np.asarray(i.coords) for i in p.interiors)
    return rings


def preview_png(rasters: list[ClippedRaster], geometry_3857, size: int = 512) -> bytes:
    """PNG bytes of the maximum reflectivity of ``rasters`` inside the polygon, with its outline.

    Parameters
    ----------
    rasters : list of ClippedRaster
        Clipped reflectivity rasters (any grids; values in dBZ after scale/offset).
    geometry_3857 : shapely geometry
        The boundary polygon in EPSG:3857.
    size : int
        Long side of the image, pixels.
    """
    from PIL import Image, ImageDraw
    from rasterio.features import geometry_mask

    canvas = canvas_grid(geometry_3857.bounds, size)
    composite = max_composite(rasters, canvas)
    # Clipped cells are coarser than canvas pixels: mask again at the canvas resolution so that no colour
    # spills over the outline from a cell whose centre is inside.
    inside = geometry_mask(
        [geometry_3857],
        out_shape=composite.shape,
        transform=canvas.transform(),
        all_touched=False,
        invert=True,
    )
    composite[~inside] = np.nan
    rgba = REFLECTIVITY.rgba(composite)

    def to_px(ring: np.ndarray) -> list[tuple[float, float]]:
        c, r = canvas.pixel_of(ring[:, 0], ring[:, 1])
        return list(zip(c.tolist(), r.tolist(), strict=True))

    rings = [to_px(r) for r in _rings(geometry_3857)]
    base = Image.new("RGB", (canvas.width, canvas.height), BACKGROUND)
    draw = ImageDraw.Draw(base)
    polys = getattr(geometry_3857, "geoms", [geometry_3857])
    for p in polys:
        draw.polygon(to_px(np.asarray(p.exterior.coords)), fill=INSIDE)
        for hole in p.interiors:
            draw.polygon(to_px(np.asarray(hole.coords)), fill=BACKGROUND)
    base = base.convert("RGBA")
    base.alpha_composite(Image.fromarray(rgba, "RGBA"))
    draw = ImageDraw.Draw(base)
    for ring in rings:
        draw.line(ring, fill=OUTLINE + (255,), width=2, joint="curve")
    buf = io.BytesIO()
    base.convert("RGB").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()
