"""``/tiles/{sweep_id}/{z}/{x}/{y}.png``: Web Mercator map tiles of a sweep, rendered from its COG.

The COG is read from the store by the key in the sweep's catalog row (cached in memory per snapshot),
opened from a rasterio ``MemoryFile`` and tiled by rio-tiler. By default a tile is coloured with the moment's
own colour table (the one the sweep PNGs and ``/legend/{moment}`` use); ``colormap=<name>`` rescales the
sweep's value range (``vmin``/``vmax``) through that colour map instead. No data is transparent; a tile
outside the COG is an empty (fully transparent) tile, so map clients need no error handling at the edges.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from radar_assets.api.dependencies import ObjectsDep, SettingsDep, SnapshotsDep
from radar_assets.api.errors import InvalidParameterError, NotFoundError
from radar_assets.api.models import SWEEP_ID_PATTERN, TileQuery
from radar_assets.api.responses import cache_headers, error_responses, etag_matches
from radar_assets.api.routers.sweeps import sweep_row
from radar_assets.lib.render.colors import table_for
from radar_assets.lib.render.tiles import TileOutside, TileSourceError, empty_tile, render_tile

router = APIRouter(tags=["tiles"])

MAX_ZOOM = 24


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
    """One XYZ tile (Web Mercator) of a sweep's values; a transparent tile outside the sweep's coverage."""
    for name, value in (("x", x), ("y", y)):
        if value >= 2**z:
            raise InvalidParameterError(("path", name), f"{name} must be below 2**z = {2**z} at zoom {z}")
    with snapshots.session() as session:
        row = sweep_row(session, sweep_id)
        version = session.snapshot.version
    if not row.get("cog_key"):
        raise NotFoundError(f"sweep {sweep_id!r} has no GeoTIFF to tile")
    etag_src = f"{version}/{sweep_id}/{z}/{x}/{y}/{q.colormap}/{int(q.tilesize)}"
    etag = '"' + hashlib.sha256(etag_src.encode()).hexdigest()[:32] + '"'
    headers = cache_headers(settings.api.tile_max_age, etag)
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
            colormap=None if q.colormap == "table" else q.colormap,
            table=table_for(row.get("moment") or "") if q.colormap == "table" else None,
            tilesize=int(q.tilesize),
        )
    except TileOutside:
        png = empty_tile(int(q.tilesize))
    except TileSourceError:
        raise NotFoundError(f"the GeoTIFF of sweep {sweep_id!r} cannot be read") from None
    return Response(png, media_type="image/png", headers=headers)
