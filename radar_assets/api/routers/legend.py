"""``/legend/{moment}``: the colour table of a moment as JSON stops (with units and a text alternative) or
as a PNG colour bar. Derived from the very table sweep PNGs and tiles are painted with."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from radar_assets.api.dependencies import SettingsDep
from radar_assets.api.errors import NotFoundError
from radar_assets.api.models import MOMENT_PATTERN, Legend, LegendQuery
from radar_assets.api.responses import cache_headers, error_responses, etag_matches, json_response
from radar_assets.lib.render.legend import UnknownMoment, legend, legend_png

router = APIRouter(tags=["legend"])


@router.get(
    "/legend/{moment}",
    response_model=Legend,
    responses={
        **error_responses(404),
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
    },
)
def get_legend(
    moment: Annotated[str, Path(pattern=MOMENT_PATTERN, examples=["REF"])],
    q: Annotated[LegendQuery, Query()],
    request: Request,
    settings: SettingsDep,
) -> Any:
    """Stops (value, colour, label), units and a text alternative; `format=png` answers a colour bar."""
    try:
        body = legend(moment)
        png = legend_png(moment, q.width, q.height) if q.format == "png" else None
    except UnknownMoment:
        raise NotFoundError(f"no colour table for moment {moment.upper()!r}") from None
    key = f"{body['moment']}/{q.format}/{q.width}/{q.height}/{body['stops']}"
    etag = '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'
    headers = cache_headers(settings.api.file_max_age, etag)
    if etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    if png is not None:
        return Response(png, media_type="image/png", headers=headers)
    return json_response(body, headers)
