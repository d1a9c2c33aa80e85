"""``/packages``: boundary data packages (``clipped_packages``), read-only.

- ``GET /packages``: the published packages from the catalog snapshot (filter by boundary and day range,
  keyset-paginated);
- ``GET /packages/{boundary}/{day}``: the package's ``datapackage.json``;
- ``GET /packages/{boundary}/{day}/{resource_name}``: one file, found by its **resource name** in the
  package's catalog row (a path from the request is never used: the name is matched against the row's list);
- ``GET /packages/{boundary}/{day}.zip``: the whole package as a zip, streamed.

The per-package endpoints resolve the package through its catalog partition file (the row
``publish_package`` switches atomically), not through the DuckDB snapshot: the snapshot can lag a
publication by one publish cycle, and the version it names may already be removed from the store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator

from radar_assets.api.dependencies import CatalogReadDep, ObjectsDep, SettingsDep
from radar_assets.api.errors import NotFoundError, StoreUnavailableError
from radar_assets.api.models import DEFAULT_LIMIT, IsoDate, NoQuery, QueryModel
from radar_assets.api.responses import cache_headers, error_responses, etag_matches, json_response
from radar_assets.lib.catalog import Catalog, columns_of
from radar_assets.lib.packages.publish import PACKAGES_SCHEMA, PACKAGES_TABLE
from radar_assets.lib.packages.verify import zip_stream
from radar_assets.lib.partitions import boundary_day

router = APIRouter(tags=["packages"])

BOUNDARY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
RESOURCE_NAME_PATTERN = r"^[a-z0-9][-a-z0-9._]{0,199}$"
MAX_LIMIT = 1000
COLUMNS: dict[str, str] = columns_of(
    PACKAGES_SCHEMA,
    ["boundary", "boundary_name", "day", "version", "resource_count", "total_bytes", "datapackage_sha256",
     "run_id", "published_at"],
)  # fmt: skip

BoundaryPath = Annotated[str, Path(pattern=BOUNDARY_PATTERN, examples=["IL-17031"])]
DayPath = Annotated[IsoDate, Path(examples=["2021-06-25"])]
ResourcePath = Annotated[
    str,
    Path(
        pattern=RESOURCE_NAME_PATTERN,
        examples=["preview"],
        description="A resource name listed in the package's datapackage.json (not a path).",
    ),
]


# -- models -----------------------------------------------------------------------------------------
def _encode_cursor(boundary: str, day: str) -> str:
    raw = json.dumps(["packages", boundary, day], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(token: str) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("invalid cursor: not a cursor returned by this API") from None
    if not (isinstance(data, list) and len(data) == 3 and data[0] == "packages"):
        raise ValueError("invalid cursor: not a cursor of the packages list")
    boundary, day = data[1], data[2]
    import re

    if not (isinstance(boundary, str) and re.fullmatch(BOUNDARY_PATTERN, boundary)):
        raise ValueError("invalid cursor: bad boundary")
    try:
        date.fromisoformat(day)
    except (TypeError, ValueError):
        raise ValueError("invalid cursor: bad day") from None
    return boundary, day


class PackagesQuery(QueryModel):
    boundary: str | None = Field(None, pattern=BOUNDARY_PATTERN, description="Boundary id.")
    start: IsoDate | None = Field(None, description="First day (inclusive), YYYY-MM-DD.")
    end: IsoDate | None = Field(None, description="Last day (inclusive), YYYY-MM-DD.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Rows per page (at most {MAX_LIMIT}).")
    cursor: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{4,1024}$", description="next_cursor of a page.")

    @model_validator(mode="after")
    def _check(self):
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError("start must not be after end")
        if self.cursor is not None:
            _decode_cursor(self.cursor)
        return self

    @property
    def after(self) -> tuple[str, str] | None:
        return None if self.cursor is None else _decode_cursor(self.cursor)


class PackageSummary(BaseModel):
    boundary: str
    boundary_name: str | None = None
    day: str
    version: str
    resource_count: int | None = None
    total_bytes: int | None = None
    datapackage_sha256: str | None = None
    run_id: str | None = None
    published_at: str | None = None
    url: str = Field(description="The package's datapackage.json")
    zip_url: str = Field(description="The whole package as a zip")


class PackagePage(BaseModel):
    items: list[PackageSummary]
    next_cursor: str | None = None
    limit: int
    snapshot: str | None = None


# -- helpers ----------------------------------------------------------------------------------------
def _present(row: dict[str, Any], root: str) -> dict[str, Any]:
    out = dict(row)
    base = f"{root}/packages/{row['boundary']}/{row['day']}"
    out["url"] = base
    out["zip_url"] = f"{base}.zip"
    return out


def _package_row(objects, settings, boundary: str, day: date) -> dict[str, Any]:
    """The current catalog row of a package (its Parquet partition, switched atomically on publication)."""
    import pyarrow.parquet as pq

    catalog = Catalog(objects.store, settings.catalog.dir)
    key = catalog.partition_key(PACKAGES_TABLE, boundary_day(boundary, day.isoformat()))
    missing = f"no package for boundary {boundary!r} on {day.isoformat()}"
    try:
        data = objects.read(key, what=f"the package of {boundary!r} on {day.isoformat()}")
    except NotFoundError:
        raise NotFoundError(missing) from None
    try:
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
    except Exception:  # a damaged partition file is a store problem, never a 500
        raise StoreUnavailableError("the package catalog row cannot be read") from None
    if not rows:
        raise NotFoundError(missing)
    return rows[0]


# -- routes -----------------------------------------------------------------------------------------
@router.get("/packages", response_model=PackagePage, responses=error_responses(503))
def list_packages(q: Annotated[PackagesQuery, Query()], read: CatalogReadDep) -> Any:
    """Published packages ordered by boundary and day."""
    from radar_assets.api.sql import Where

    with read.snapshots.session() as session:
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
        rows: list[dict[str, Any]] = []
        next_cursor = None
        if session.snapshot.has_table(PACKAGES_TABLE):
            where = Where()
            where.add_if(q.boundary, '"boundary" = ?')
            where.add_if(q.start.isoformat() if q.start else None, '"day" >= ?')
            where.add_if(q.end.isoformat() if q.end else None, '"day" <= ?')
            where.after(("boundary", "day"), q.after)
            tail = f'{where.sql()} ORDER BY packages."boundary", packages."day" LIMIT ?'
            rows = session.select(PACKAGES_TABLE, COLUMNS, tail, [*where.params, q.limit + 1])
            if len(rows) > q.limit:
                rows = rows[: q.limit]
                next_cursor = _encode_cursor(rows[-1]["boundary"], rows[-1]["day"])
    items = [_present(r, read.root) for r in rows]
    body = {
        "items": items,
        "next_cursor": next_cursor,
        "limit": q.limit,
        "snapshot": session.snapshot.version,
    }
    return json_response(body, read.response.headers)


ZIP_RESPONSES = {**error_responses(404, 503), 200: {"content": {"application/zip": {}}}}


@router.get("/packages/{boundary}/{day}.zip", response_class=Response, responses=ZIP_RESPONSES)
def package_zip(
    boundary: BoundaryPath,
    day: DayPath,
    _q: Annotated[NoQuery, Query()],
    objects: ObjectsDep,
    settings: SettingsDep,
) -> Response:
    """The whole package (``datapackage.json`` and every resource) as a zip, streamed."""
    row = _package_row(objects, settings, boundary, day)
    folder = f"{boundary}_{day.isoformat()}".replace(":", "_")
    # Check every object now, so a missing file is a 404 before the 200 starts streaming.
    objects.read(row["datapackage_key"], what=f"the package of {boundary!r} on {day.isoformat()}")
    for res in row["resources"] or []:
        if not objects.store.exists(res["key"]):
            raise NotFoundError(f"resource {res['name']!r} of the package is missing from the store")
    stream = zip_stream(objects.store, row["datapackage_key"], folder=folder)
    headers = {
        **cache_headers(settings.api.cache_max_age, f'"{row["datapackage_sha256"][:32]}"'),
        "Content-Disposition": f'attachment; filename="{folder}.zip"',
    }
    return StreamingResponse(stream, media_type="application/zip", headers=headers)


@router.get(
    "/packages/{boundary}/{day}",
    response_class=Response,
    responses={**error_responses(404, 503), 200: {"content": {"application/json": {}}}},
)
def package_descriptor(
    boundary: BoundaryPath,
    day: DayPath,
    _q: Annotated[NoQuery, Query()],
    request: Request,
    objects: ObjectsDep,
    settings: SettingsDep,
) -> Response:
    """The package's ``datapackage.json`` (Frictionless Data Package v2), byte for byte as published."""
    row = _package_row(objects, settings, boundary, day)
    etag = f'"{row["datapackage_sha256"][:32]}"'
    headers = cache_headers(settings.api.cache_max_age, etag)
    if etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    data = objects.read(row["datapackage_key"], what=f"the package of {boundary!r} on {day.isoformat()}")
    return Response(data, media_type="application/json", headers=headers)


@router.get(
    "/packages/{boundary}/{day}/{resource_name}",
    response_class=Response,
    responses={
        **error_responses(404, 503),
        200: {
            "content": {m: {} for m in ("image/tiff", "image/png", "text/csv", "application/octet-stream")}
        },
    },
)
def package_resource(
    boundary: BoundaryPath,
    day: DayPath,
    resource_name: ResourcePath,
    _q: Annotated[NoQuery, Query()],
    request: Request,
    objects: ObjectsDep,
    settings: SettingsDep,
) -> Response:
    """One file of a package, by its resource name; its sha256 is checked against the catalog before serving."""
    row = _package_row(objects, settings, boundary, day)
    resource = next((r for r in row["resources"] or [] if r["name"] == resource_name), None)
    if resource is None:
        raise NotFoundError(f"package {boundary!r} {day.isoformat()} has no resource {resource_name!r}")
    etag = f'"{resource["sha256"][:32]}"'
    # Not immutable: the same name serves the next version once the package is republished.
    headers = cache_headers(settings.api.cache_max_age, etag)
    if etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    data = objects.read(resource["key"], what=f"resource {resource_name!r} of the package")
    if hashlib.sha256(data).hexdigest() != resource["sha256"]:
        raise StoreUnavailableError(f"resource {resource_name!r} failed its sha256 check")
    headers["Content-Disposition"] = f'inline; filename="{resource["path"].rsplit("/", 1)[-1]}"'
    return Response(data, media_type=resource["mediatype"], headers=headers)
