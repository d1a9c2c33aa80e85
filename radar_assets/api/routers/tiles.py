"""``/tiles/{sweep_id}/{z}/{x}/{y}.png``: Web Mercator map tiles of a sweep, rendered from its COG.

The COG is read from the store by the key in the sweep's catalog row (cached in memory per snapshot),
opened from a rasterio ``MemoryFile`` and tiled by rio-tiler, rescaled from the sweep's value range
(``vmin``/``vmax``) through a colour map. No data is transparent; a tile outside the COG is a ``404``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path, Query, Request, Response

from radar_assets.api.dependencies import ObjectsDep, SettingsDep, SnapshotsDep
from radar_assets.api.errors import InvalidParameterError, NotFoundError
from radar_assets.api.models import SWEEP_ID_PATTERN, TileQuery
from radar_assets.api.responses import cache_headers, error_responses, etag_matches
from radar_assets.api.routers.sweeps import _sweep_row

router = APIRouter(tags=["tiles"])

MAX_ZOOM = 24


class TileOutside(Exception):
    pass


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
    """PNG of tile ``z/x/y`` (WebMercatorQuad) of a single-band COG; ``TileOutside`` if it misses the COG."""
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
        raise NotFoundError("the sweep's GeoTIFF cannot be read") from exc
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


@router.get(
    "/tiles/{sweep_id}/{z}/{x}/{y}.png",
    response_class=Response,
    responses={
        **error_responses(404, 503),
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
    },
)
def tile(
    sweep_id: Annotated[
        str, Path(pattern=SWEEP_ID_PATTERN, examples=["KLOT-L2-VOL-20210625T075154Z-REF-00"])
    ],
    z: Annotated[int, Path(ge=0, le=MAX_ZOOM)],
    x: Annotated[int, Path(ge=0, lt=2**MAX_ZOOM)],
    y: Annotated[int, Path(ge=0, lt=2**MAX_ZOOM)],
    q: Annotated[TileQuery, Query()],
    request: Request,
    snapshots: SnapshotsDep,
    objects: ObjectsDep,
    settings: SettingsDep,
) -> Response:
    """One XYZ tile (Web Mercator) of a sweep's values, coloured with `colormap`."""
    for name, value in (("x", x), ("y", y)):
        if value >= 2**z:
            raise InvalidParameterError(("path", name), f"{name} must be below 2**z = {2**z} at zoom {z}")
    with snapshots.session() as session:
        row = _sweep_row(session, sweep_id)
        version = session.snapshot.version
    if not row.get("cog_key"):
        raise NotFoundError(f"sweep {sweep_id!r} has no GeoTIFF to tile")
    etag_src = f"{version}/{sweep_id}/{z}/{x}/{y}/{q.colormap}/{int(q.tilesize)}"
    etag = '"' + hashlib.sha256(etag_src.encode()).hexdigest()[:32] + '"'
    headers = cache_headers(settings.tile_max_age, etag)
    if etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    cog = objects.read(row["cog_key"], what=f"the GeoTIFF of sweep {sweep_id!r}", version=version, cache=True)
    try:
        png = render_tile(
            cog,
            z,
            x,
            y,
            vmin=row.get("vmin"),
            vmax=row.get("vmax"),
            colormap=q.colormap,
            tilesize=int(q.tilesize),
        )
    except TileOutside:
        raise NotFoundError(f"tile {z}/{x}/{y} is outside sweep {sweep_id!r}") from None
    return Response(png, media_type="image/png", headers=headers)
