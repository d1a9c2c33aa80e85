"""Response helpers: cache headers, conditional requests, CSV and documented media types."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from pydantic_core import to_json

from radar_assets.api.snapshot import Snapshot


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error codes an endpoint can answer (all share one body model)."""
    from radar_assets.api.models import ErrorMessage

    descriptions = {
        404: "Unknown id (or its file is missing from the store).",
        503: "No catalog snapshot is published yet, or the store is unreachable.",
    }
    return {code: {"model": ErrorMessage, "description": descriptions[code]} for code in codes}


def json_response(body: Any, headers: Mapping[str, str]) -> Response:
    """A list page serialised directly (pydantic-core, no validation pass).

    List rows come from typed SQL already shaped for JSON (see ``snapshot._SELECT_AS``), so validating
    hundreds of them against the response model on every request only costs time; the model still
    documents them in OpenAPI, and the test-suite checks responses against it.
    """
    return Response(to_json(body, inf_nan_mode="null"), media_type="application/json", headers=dict(headers))


def list_etag(snapshot: Snapshot) -> str:
    return f'"{snapshot.version}"'


def etag_matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def cache_headers(max_age: int, etag: str | None = None, *, immutable: bool = False) -> dict[str, str]:
    control = f"public, max-age={max_age}" + (", immutable" if immutable else "")
    headers = {"Cache-Control": control}
    if etag:
        headers["ETag"] = etag
    return headers


def conditional(request: Request, response: Response, snapshot: Snapshot, max_age: int) -> Response | None:
    """Set list cache headers on ``response``; a ``304`` response when the client's copy is current."""
    etag = list_etag(snapshot)
    headers = cache_headers(max_age, etag)
    if etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return None


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def csv_bytes(columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> bytes:
    """CSV with a header row (missing and NaN values are empty)."""
    names = list(columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_csv_value(row.get(c)) for c in names])
    return buf.getvalue().encode()


def with_media(responses: dict[int | str, dict[str, Any]], media_type: str, schema: dict[str, Any]) -> dict:
    """``responses`` plus a further media type of the ``200`` answer (e.g. ``text/csv``) beside JSON."""
    out = dict(responses)
    out[200] = {"content": {media_type: {"schema": schema}}}
    return out


CSV_SCHEMA: dict[str, Any] = {"type": "string", "description": "CSV with a header row."}
