"""``/boundaries``: the registered boundary polygons (table ``boundaries``), as GeoJSON.

- ``GET /boundaries``: a FeatureCollection page ordered by id (keyset cursor ``next_cursor``), optionally
  only those whose bounding box meets ``bbox`` and without geometries (``geometry=false``);
- ``GET /boundaries/{id}``: one Feature.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import Field, field_validator, model_validator

from radar_assets.api.dependencies import CatalogReadDep
from radar_assets.api.errors import NotFoundError
from radar_assets.api.models import DEFAULT_LIMIT, NoQuery, QueryModel
from radar_assets.api.responses import error_responses, json_response
from radar_assets.lib.catalog import columns_of
from radar_assets.lib.geo.boundaries import BOUNDARIES_SCHEMA, TABLE, to_geojson_feature

router = APIRouter(tags=["boundaries"])

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
MAX_LIMIT = 1000
GEOJSON = {"application/geo+json": {}}
#: Every column but the WKB geometry (DuckDB BLOB, selected as is).
COLUMNS: dict[str, str] = {
    **columns_of(BOUNDARIES_SCHEMA, exclude={"geometry", "registered_at", "partition"}),
    "geometry": "BLOB",
}
NO_GEOMETRY = {k: v for k, v in COLUMNS.items() if k != "geometry"}

IdPath = Annotated[str, Path(pattern=ID_PATTERN, examples=["IL-17031"])]


def _encode_cursor(ident: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(["boundaries", ident]).encode()).rstrip(b"=").decode()


def _decode_cursor(token: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("invalid cursor: not a cursor returned by this API") from None
    if not (
        isinstance(data, list) and len(data) == 2 and data[0] == "boundaries" and isinstance(data[1], str)
    ):
        raise ValueError("invalid cursor: not a cursor of the boundaries list")
    if not re.fullmatch(ID_PATTERN, data[1]):
        raise ValueError("invalid cursor: bad id")
    return data[1]


class BoundariesQuery(QueryModel):
    limit: int = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Features per page (at most {MAX_LIMIT})."
    )
    cursor: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{4,512}$", description="next_cursor of a page.")
    bbox: str | None = Field(
        None,
        description="west,south,east,north (degrees): only boundaries whose bounding box meets it.",
        examples=["-88.5,41.4,-87.5,42.2"],
    )
    geometry: bool = Field(True, description="Include geometries (false: properties and bbox only).")

    @field_validator("bbox")
    @classmethod
    def _bbox(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            w, s, e, n = (float(v) for v in value.split(","))
        except ValueError:
            raise ValueError("bbox must be four numbers: west,south,east,north") from None
        if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
            raise ValueError("bbox must satisfy -180 <= west <= east <= 180 and -90 <= south <= north <= 90")
        return value

    @model_validator(mode="after")
    def _cursor(self):
        if self.cursor is not None:
            _decode_cursor(self.cursor)
        return self


def _feature(row: dict[str, Any], with_geometry: bool) -> dict[str, Any]:
    return to_geojson_feature(row, include_geometry=with_geometry and row.get("geometry") is not None)


@router.get(
    "/boundaries",
    responses={
        **error_responses(503),
        200: {"content": GEOJSON, "description": "A GeoJSON FeatureCollection page"},
    },
)
def list_boundaries(q: Annotated[BoundariesQuery, Query()], read: CatalogReadDep) -> Any:
    """Registered boundaries as a GeoJSON FeatureCollection, ordered by id; ``next_cursor`` pages on."""
    from radar_assets.api.sql import Where

    columns = COLUMNS if q.geometry else NO_GEOMETRY
    with read.snapshots.session() as session:
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
        rows: list[dict[str, Any]] = []
        next_cursor = None
        if session.snapshot.has_table(TABLE):
            where = Where()
            if q.cursor is not None:
                where.add('"id" > ?', _decode_cursor(q.cursor))
            if q.bbox is not None:
                w, s, e, n = (float(v) for v in q.bbox.split(","))
                where.add('"west" <= ? AND "east" >= ? AND "south" <= ? AND "north" >= ?', e, w, n, s)
            rows = session.select(
                TABLE, columns, f'{where.sql()} ORDER BY {TABLE}."id" LIMIT ?', [*where.params, q.limit + 1]
            )
            if len(rows) > q.limit:
                rows = rows[: q.limit]
                next_cursor = _encode_cursor(rows[-1]["id"])
        snapshot = session.snapshot.version
    body = {
        "type": "FeatureCollection",
        "features": [_feature(r, q.geometry) for r in rows],
        "next_cursor": next_cursor,
        "limit": q.limit,
        "snapshot": snapshot,
    }
    response = json_response(body, read.response.headers)
    response.media_type = "application/geo+json"
    response.headers["content-type"] = "application/geo+json"
    return response


@router.get(
    "/boundaries/{boundary_id}",
    responses={**error_responses(404, 503), 200: {"content": GEOJSON, "description": "A GeoJSON Feature"}},
)
def get_boundary(boundary_id: IdPath, _q: Annotated[NoQuery, Query()], read: CatalogReadDep) -> Any:
    """One registered boundary as a GeoJSON Feature (geometry in EPSG:4326)."""
    with read.snapshots.session() as session:
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
        rows = []
        if session.snapshot.has_table(TABLE):
            rows = session.select(TABLE, COLUMNS, f' WHERE {TABLE}."id" = ?', [boundary_id])
    if not rows:
        raise NotFoundError(f"boundary {boundary_id!r} is not registered")
    response = json_response(_feature(rows[0], True), read.response.headers)
    response.headers["content-type"] = "application/geo+json"
    return response
