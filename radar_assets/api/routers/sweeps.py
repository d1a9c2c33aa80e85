"""``/sweeps``: one row per rendered sweep and moment, its files, and GeoJSON of its footprint.

Files are read from the store by the key in the sweep's catalog row, never by anything in the request.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from radar_assets.api.dependencies import CatalogReadDep, ObjectsDep, SettingsDep, SnapshotsDep
from radar_assets.api.errors import NotFoundError
from radar_assets.api.models import (
    SWEEP_ID_PATTERN,
    LatestSweeps,
    LatestSweepsQuery,
    NoQuery,
    Sweep,
    SweepFeatureCollection,
    SweepPage,
    SweepsQuery,
    encode_cursor,
)
from radar_assets.api.responses import (
    cache_headers,
    error_responses,
    etag_matches,
    json_response,
)
from radar_assets.api.snapshot import Session
from radar_assets.api.sql import Where
from radar_assets.lib.catalog import columns_of
from radar_assets.lib.sweeps import SWEEPS_SCHEMA

router = APIRouter(tags=["sweeps"])

TABLE = "sweeps"
COLUMNS: dict[str, str] = columns_of(SWEEPS_SCHEMA)
SweepIdPath = Annotated[str, Path(pattern=SWEEP_ID_PATTERN, examples=["KLOT-L2-VOL-20210625T075154Z-REF-00"])]

# Sweep files: (catalog column, media type, description)
FILES = {
    "png": ("png_key", "image/png", "Transparent Web Mercator overlay"),
    "json": ("json_key", "application/json", "Overlay bounds JSON"),
    "tif": ("cog_key", "image/tiff; application=geotiff; profile=cloud-optimized", "Cloud-Optimized GeoTIFF"),
}


def _corners(text: Any) -> list[list[float]] | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
        pts = [[float(p[0]), float(p[1])] for p in value]
    except (ValueError, TypeError, IndexError, KeyError):
        return None
    if len(pts) < 3 or not all(math.isfinite(v) for pt in pts for v in pt):
        return None
    return pts


def present(row: dict[str, Any], root: str) -> dict[str, Any]:
    """A catalog row as the API shows it: links instead of store keys, bounds and corners parsed."""
    sid = row["sweep_id"]
    bounds = [row.pop(k) for k in ("west", "south", "east", "north")]
    out = dict(row)
    out["bounds"] = bounds if all(isinstance(b, float) for b in bounds) else None  # NaN is None already
    out["corners"] = _corners(row.get("corners"))
    for ext, (column, _media, _desc) in FILES.items():
        out[f"{ext}_url"] = f"{root}/sweeps/{sid}.{ext}" if out.pop(column, None) else None
    out["tiles_url"] = f"{root}/tiles/{sid}/{{z}}/{{x}}/{{y}}.png" if out["tif_url"] else None
    return out


def _feature(sweep: dict[str, Any]) -> dict[str, Any]:
    ring = None
    if sweep["corners"]:
        ring = [*sweep["corners"], sweep["corners"][0]]
    elif sweep["bounds"]:
        w, s, e, n = sweep["bounds"]
        ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    geometry = {"type": "Polygon", "coordinates": [ring]} if ring else None
    return {"type": "Feature", "id": sweep["sweep_id"], "geometry": geometry, "properties": sweep}


def query_sweeps(session: Session, q: SweepsQuery) -> tuple[list[dict[str, Any]], str | None]:
    snap = session.snapshot
    if not snap.has_table(TABLE):
        return [], None
    where = Where().add('"sweep_id" IS NOT NULL')
    site = q.site
    if q.scan_id is not None:
        if site is not None and site != q.scan_id[:4]:
            return [], None
        site = q.scan_id[:4]  # lets DuckDB skip other sites' row groups (the table is sorted by site)
    where.add_if(site, '"site" = ?')
    where.add_if(q.scan_id, '"scan_id" = ?')
    where.add_if(q.moment, '"moment" = ?')
    if q.elevation is not None:
        where.add('abs("elevation" - ?) <= ?', q.elevation, q.elevation_tolerance)
    where.add_if(q.start, '"sweep_time" >= ?')
    where.add_if(q.end, '"sweep_time" < ?')
    where.after(("sweep_id",), q.after)
    tail = f'{where.sql()} ORDER BY sweeps."sweep_id" LIMIT ?'
    rows = session.select(TABLE, COLUMNS, tail, [*where.params, q.limit + 1])
    next_cursor = None
    if len(rows) > q.limit:
        rows = rows[: q.limit]
        next_cursor = encode_cursor("sweeps", (rows[-1]["sweep_id"],))
    return rows, next_cursor


def sweep_row(session: Session, sweep_id: str) -> dict[str, Any]:
    """The catalog row of one sweep; ``NotFoundError`` when the catalog has none."""
    snap = session.snapshot
    row = None
    if snap.has_table(TABLE):
        found = session.select(
            TABLE, COLUMNS, ' WHERE "site" = ? AND "sweep_id" = ? LIMIT 1', [sweep_id[:4], sweep_id]
        )
        row = found[0] if found else None
    if row is None:
        raise NotFoundError(f"no sweep {sweep_id!r} in the catalog")
    return row


def latest_sweeps(session: Session, q: LatestSweepsQuery) -> list[dict[str, Any]]:
    """The sweeps of ``q.moment`` in the ``q.scans`` newest scans of ``q.site`` that have one, newest first.

    A scan can carry a moment twice at one elevation (split cuts: a long-range surveillance cut and a
    Doppler cut); each (scan, elevation) keeps its lowest sweep index, so a time series of frames shows one
    image per scan. Elevations are grouped at 0.1 degree.
    """
    if not session.snapshot.has_table(TABLE):
        return []
    where = Where().add('"site" = ?', q.site).add('"moment" = ?', q.moment).add('"sweep_id" IS NOT NULL')
    if q.elevation is not None:
        where.add('abs("elevation" - ?) <= ?', q.elevation, q.elevation_tolerance)
    newest = (
        f'SELECT "scan_id" FROM {TABLE}{where.sql()} GROUP BY "scan_id" '
        'ORDER BY max("sweep_time") DESC NULLS LAST, "scan_id" DESC LIMIT ?'
    )
    tail = (
        f'{where.sql()} AND "scan_id" IN ({newest}) '
        f'ORDER BY {TABLE}."sweep_time" DESC, {TABLE}."scan_id" DESC, {TABLE}."sweep_index"'
    )
    rows = session.select(TABLE, COLUMNS, tail, [*where.params, *where.params, q.scans])
    picked: dict[tuple[str, float | None], dict[str, Any]] = {}
    for row in rows:
        elevation = row.get("elevation")
        key = (row["scan_id"], None if elevation is None else round(elevation, 1))
        best = picked.get(key)
        if best is None or (row.get("sweep_index") or 0) < (best.get("sweep_index") or 0):
            picked[key] = row
    out = list(picked.values())
    out.sort(key=lambda r: (r.get("elevation") is None, r.get("elevation") or 0.0))
    out.sort(key=lambda r: (r.get("sweep_time") or "", r["scan_id"]), reverse=True)
    return out


GEOJSON = "application/geo+json"


@router.get(
    "/sweeps",
    response_model=SweepPage | SweepFeatureCollection,
    responses={
        **error_responses(503),
        200: {"content": {GEOJSON: {"schema": {"$ref": "#/components/schemas/SweepFeatureCollection"}}}},
    },
)
def list_sweeps(
    q: Annotated[SweepsQuery, Query()],
    read: CatalogReadDep,
) -> Any:
    """Sweeps ordered by id. `format=geojson` answers a FeatureCollection of the overlay footprints."""
    with read.snapshots.session() as session:
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
        rows, next_cursor = query_sweeps(session, q)
    root = read.root
    items = [present(r, root) for r in rows]
    page = {"next_cursor": next_cursor, "limit": q.limit, "snapshot": session.snapshot.version}
    if q.format == "geojson":
        body = SweepFeatureCollection.model_validate(
            {"type": "FeatureCollection", "features": [_feature(s) for s in items], **page}
        )
        return Response(
            body.model_dump_json(), media_type=GEOJSON, headers=dict(read.response.headers.items())
        )
    return json_response({"items": items, **page}, read.response.headers)


@router.get("/sweeps/latest", response_model=LatestSweeps, responses=error_responses(503))
def get_latest_sweeps(
    q: Annotated[LatestSweepsQuery, Query()],
    read: CatalogReadDep,
) -> Any:
    """A site's newest sweeps of one moment: one per scan and elevation (split cuts resolved), newest first.

    `elevation` picks one tilt; `scans` asks for the newest N scans (the frames of an animation).
    """
    with read.snapshots.session() as session:
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
        rows = latest_sweeps(session, q)
    root = read.root
    body = {
        "site": q.site,
        "moment": q.moment,
        "items": [present(r, root) for r in rows],
        "snapshot": session.snapshot.version,
    }
    return json_response(body, read.response.headers)


def _file_route(ext: str):
    column, media_type, description = FILES[ext]

    def sweep_file(
        sweep_id: SweepIdPath,
        _q: Annotated[NoQuery, Query()],
        request: Request,
        snapshots: SnapshotsDep,
        objects: ObjectsDep,
        settings: SettingsDep,
    ) -> Response:
        with snapshots.session() as session:
            row = sweep_row(session, sweep_id)
        key = row.get(column)
        if not key:
            raise NotFoundError(f"sweep {sweep_id!r} has no {ext} file")
        data = objects.read(key, what=f"the {ext} file of sweep {sweep_id!r}")
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        headers = cache_headers(settings.api.file_max_age, etag, immutable=True)
        if etag_matches(request, etag):
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=media_type, headers=headers)

    sweep_file.__name__ = f"sweep_{ext}"
    sweep_file.__doc__ = f"{description} of one sweep, read from the store by the key in its catalog row."
    return sweep_file


for _ext, (_column, _media, _desc) in FILES.items():
    router.add_api_route(
        f"/sweeps/{{sweep_id}}.{_ext}",
        _file_route(_ext),
        methods=["GET"],
        response_class=Response,
        responses={
            **error_responses(404, 503),
            200: {
                "content": {
                    _media.split(";")[0]: {
                        "schema": {"type": "object"}
                        if _ext == "json"
                        else {"type": "string", "format": "binary"}
                    }
                }
            },
        },
        summary=f"Sweep {_ext.upper()} file",
    )


@router.get("/sweeps/{sweep_id}", response_model=Sweep, responses=error_responses(404, 503))
def get_sweep(
    sweep_id: SweepIdPath,
    _q: Annotated[NoQuery, Query()],
    read: CatalogReadDep,
) -> Any:
    """One sweep's catalog row, with links to its files and tiles."""
    with read.snapshots.session() as session:
        row = sweep_row(session, sweep_id)
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
    return present(row, read.root)
