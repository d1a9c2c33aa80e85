"""``/timeseries``: zonal time series of registered boundaries (table ``timeseries``), with SKOPE's transforms,
and ``POST /timeseries/extract`` for an ad-hoc geometry.

- ``GET /timeseries``: one boundary's series (one site, one product) between ``start`` and ``end``; the
  statistic (mean or median), then the transform (none, z-score over the window or over a fixed reference
  window), then the smoother (trailing or centred moving average) are applied by
  :mod:`radar_assets.lib.timeseries.transforms`. JSON (missing values are ``null``, never NaN) or CSV.
- ``POST /timeseries/extract``: a WGS84 Point/Polygon/MultiPolygon, Feature or FeatureCollection, computed
  synchronously from the COGs with the same exact coverage weights as the asset; nothing is written.
  Bounded by the ``api.extract_*`` settings: a geometry spanning more than ``extract_max_cells`` grid
  cells (or with more than ``extract_max_vertices`` vertices, or a body over ``extract_max_body_bytes``) is
  a 413, more than ``extract_max_sweeps`` sweeps a 422, and when ``extract_max_concurrent`` extractions
  are running the answer is 503 with ``Retry-After``.

``GET /timeseries`` keeps the series it decoded, with the JSON of their columns, in a memory LRU
(``api.timeseries_cache_bytes``) keyed by the content of the snapshot's ``timeseries`` table (its files and
their versions: publications that change other tables keep the series) and the query; the transformed
values of each (series, statistic, transform) are kept as JSON in their own eighth of that memory. A query
whose series and values are cached is answered from the event loop (no worker thread, no query, no
computation) as its cached fragments, sent one after the other (joining them would allocate a fresh
megabyte per answer); anything else runs in a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from radar_assets.api.dependencies import CatalogReadDep, ObjectsDep
from radar_assets.api.errors import InvalidParameterError, NotFoundError
from radar_assets.api.models import QueryModel, Site, UtcDatetime
from radar_assets.api.responses import csv_bytes, error_responses, json_response
from radar_assets.lib.catalog import columns_of
from radar_assets.lib.sweeps import SWEEPS_SCHEMA
from radar_assets.lib.timeseries import series as series_json
from radar_assets.lib.timeseries import transforms as tf
from radar_assets.lib.timeseries.summaries import SUMMARISED_LEVEL3, TABLE

router = APIRouter(tags=["timeseries"])

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
PRODUCT_PATTERN = r"^[A-Z0-9]{3}$"
#: Rows one GET may return (30 days of 5-minute scans are 8,640).
MAX_POINTS = 50_000
#: Seconds a client is told to wait when every extraction slot is taken.
RETRY_AFTER_S = 2

SWEEP_COLUMNS = columns_of(
    SWEEPS_SCHEMA,
    ["sweep_id", "scan_id", "site", "level", "product", "moment", "units", "sweep_index", "elevation",
     "sweep_time", "west", "south", "east", "north", "json_key", "cog_key"],
)  # fmt: skip


class TransformParams(BaseModel):
    statistic: Literal["mean", "median"] = Field("mean", description="Zonal statistic per scan.")
    transform: Literal["none", "zscore_selected", "zscore_fixed"] = Field(
        "none", description="z-score over the requested window (selected) or a fixed reference window."
    )
    reference_start: UtcDatetime | None = Field(None, description="Reference window start (zscore_fixed).")
    reference_end: UtcDatetime | None = Field(
        None, description="Reference window end, exclusive (zscore_fixed)."
    )
    smoother: Literal["none", "trailing", "centred", "centered"] = Field(
        "none", description="Moving average."
    )
    width: int = Field(
        1, ge=tf.MIN_WIDTH, le=tf.MAX_WIDTH, description="Moving-average width in scans (odd if centred)."
    )

    @model_validator(mode="after")
    def _check(self):
        if self.smoother != "none":
            tf.check_width(self.width, tf.normalise_method(self.smoother))
        if self.transform == "zscore_fixed":
            if self.reference_start is None or self.reference_end is None:
                raise ValueError("zscore_fixed needs reference_start and reference_end")
            if self.reference_start >= self.reference_end:
                raise ValueError("reference_start must be before reference_end")
        return self


class TimeseriesQuery(QueryModel, TransformParams):
    boundary: str = Field(pattern=ID_PATTERN, description="Boundary id.", examples=["IL-17031"])
    site: Site | None = Field(
        None, description="Radar site (required when several sites cover the boundary)."
    )
    product: str = Field(
        "REF", pattern=PRODUCT_PATTERN, description="REF (lowest Level 2 sweep) or a Level 3 code."
    )
    start: UtcDatetime | None = Field(None, description="Inclusive lower bound of scan times.")
    end: UtcDatetime | None = Field(None, description="Exclusive upper bound of scan times.")
    format: Literal["json", "csv"] = Field("json", description="Response format.")

    @model_validator(mode="after")
    def _range(self):
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class SeriesPoint(BaseModel):
    time: str
    site: str
    scan_id: str
    value: float | None
    raw: float | None = Field(description="The statistic before transform and smoothing.")
    count: float | None = None
    coverage_fraction: float | None = None


class Series(BaseModel):
    """Columnar, as SKOPE answers: one list per field, index ``i`` is the ``i``-th scan in time order."""

    boundary: str
    site: str | None
    product: str
    statistic: str
    transform: str
    smoother: str
    width: int
    time: list[str] = Field(description="Scan times (ISO 8601 UTC).")
    scan_id: list[str]
    value: list[float | None] = Field(description="The transformed, smoothed statistic (null: missing).")
    raw: list[float | None] = Field(description="The statistic before transform and smoothing.")
    count: list[float | None] = Field(description="Covered area with data, in grid cells.")
    coverage_fraction: list[float | None]


def _apply(
    q: TransformParams, raw: list[float | None], reference: list[float | None] | None
) -> list[float | None]:
    try:
        return tf.apply(raw, q.transform, reference=reference, smoother=q.smoother, width=q.width)
    except tf.TransformError as exc:
        raise InvalidParameterError(("query", "transform"), str(exc)) from None


#: Columns of a cached series: both statistics, so that switching mean/median hits the cache.
_VALUE_COLUMNS = ("mean", "p50", "count", "coverage_fraction")
#: Bytes a cached series is charged per point: its arrays (40) and the JSON of its columns (about 106
#: when all are built); measured 146 on 30-day series.
_BYTES_PER_POINT = 160
#: Share of ``api.timeseries_cache_bytes`` for transformed values; the rest holds decoded series. Apart,
#: because values are cheap to recompute (a millisecond) and many (one per transform), and must not
#: push out series, which cost a query each.
_VALUE_CACHE_SHARE = 8


class _Decoded:
    """One query's rows as numpy columns in time order, plus their JSON fragments (built on first use).

    Immutable once built (the fragments only memoise pure functions of the columns), so concurrent
    requests share it from the cache. Scan ids are kept only as their JSON: thousands of strings per
    series would double its memory and give every garbage collection of the server more to walk.
    """

    def __init__(self, time, sites: list[str], scan_id_json: bytes, values: dict):
        self.n = len(time)
        self.time = time
        self.sites = sites
        self.values = values
        self._fragments: dict[str, bytes] = {"scan_id": scan_id_json}

    def fragment(self, name: str) -> bytes:
        text = self._fragments.get(name)
        if text is None:
            if name == "time":
                text = series_json.iso_json(self.time)
            else:
                text = series_json.floats_json(self.values[name])
            self._fragments[name] = text
        return text

    @property
    def nbytes(self) -> int:
        return 1024 + _BYTES_PER_POINT * self.n


def _series(session, boundary: str, site, product: str, start, end) -> _Decoded:
    """The rows of one boundary/site/product window, time-ordered (one vectorised fetch).

    No ``ORDER BY``: sorting in DuckDB moved every selected string through its sort (measured: more than
    half the query); the rows are ordered here by their epoch times instead (usually already in order).
    """
    import numpy as np

    from radar_assets.api.sql import Where

    where = Where().add('"boundary" = ?', boundary).add('"product" = ?', product)
    where.add_if(site, '"site" = ?')
    where.add_if(start, '"time" >= ?')
    where.add_if(end, '"time" < ?')
    columns = {"time": "TIMESTAMPTZ", "scan_id": "VARCHAR", **dict.fromkeys(_VALUE_COLUMNS, "DOUBLE")}
    if site is None:  # otherwise every row has the requested site
        columns["site"] = "VARCHAR"
    sql = f"SELECT {session.snapshot.select_list(TABLE, columns)} FROM {TABLE}{where.sql()} LIMIT ?"
    data = session.cursor.execute(sql, [*where.params, MAX_POINTS + 1]).fetchnumpy()
    times = np.ma.filled(np.ma.asarray(data["time"], dtype=np.int64), 0)
    order = None
    if times.size > 1 and not (times[1:] >= times[:-1]).all():
        order = np.argsort(times, kind="stable")
        times = times[order]

    def ordered(values):
        return values if order is None else values[order]

    values = {
        name: ordered(np.ma.filled(np.ma.asarray(data[name], dtype=np.float64), np.nan))
        for name in _VALUE_COLUMNS
    }
    scan_id = ordered(np.ma.filled(np.ma.asarray(data["scan_id"], dtype=object), None)).tolist()
    if site is None:
        sites = sorted(
            {str(v) for v in np.ma.filled(np.ma.asarray(data["site"], dtype=object), None).tolist()}
        )
    else:
        sites = [site] if times.size else []
    return _Decoded(times, sites, series_json.object_json(scan_id), values)


def _cache(read, name: str = "timeseries_cache") -> series_json.SeriesCache:
    """The app's cache of decoded series (``timeseries_cache``) or of transformed values
    (``timeseries_value_cache``), sharing ``api.timeseries_cache_bytes`` (made on first use)."""
    state = read.request.app.state.__dict__
    cache = state.get(name)
    if cache is None:
        total = read.settings.api.timeseries_cache_bytes
        values = total // _VALUE_CACHE_SHARE
        size = values if name == "timeseries_value_cache" else total - values
        cache = state.setdefault(name, series_json.SeriesCache(size))
    return cache


def content_key(snapshot) -> str:
    """What the snapshot's ``timeseries`` table was built from: a hash of its partition files and their
    versions (the snapshot's version when it does not list them).

    Most publications change other tables (every feed run publishes its scans), so series cached under
    this key outlive them; any change of a ``timeseries`` file gives a new key.
    """

    def compute() -> str:
        files = sorted((uri, version) for (table, uri), version in snapshot.files.items() if table == TABLE)
        if not files:
            return f"snapshot:{snapshot.version}"
        return hashlib.sha256(json.dumps(files).encode()).hexdigest()[:32]

    return snapshot.memo(("timeseries", "content_key"), compute)


def _cached_series(read, session, boundary: str, site, product: str, start, end) -> _Decoded:
    """:func:`_series` through the app's :class:`SeriesCache`, keyed by the content of the snapshot's
    ``timeseries`` table (:func:`content_key`) and the query."""
    cache = _cache(read)
    key = (content_key(session.snapshot), boundary, site, product, start, end)
    hit = cache.get(key)
    if hit is not None:
        return hit
    decoded = _series(session, boundary, site, product, start, end)
    cache.put(key, decoded, decoded.nbytes)
    return decoded


def _value_array(q: TransformParams, raw, reference):
    try:
        return tf.apply_array(raw, q.transform, reference=reference, smoother=q.smoother, width=q.width)
    except tf.TransformError as exc:
        raise InvalidParameterError(("query", "transform"), str(exc)) from None


def _value_key(content: str, q: TimeseriesQuery, column: str) -> tuple:
    """Cache key of a query's transformed values: everything they depend on, i.e. the series' table
    content (:func:`content_key`), the series' query, the statistic and the transform's parameters (the
    reference window only for ``zscore_fixed``, the width only with a smoother)."""
    smoother = tf.normalise_method(q.smoother)
    fixed = q.transform == "zscore_fixed"
    return (
        "value", content, q.boundary, q.site, q.product, q.start, q.end, column, q.transform,
        q.reference_start if fixed else None, q.reference_end if fixed else None,
        smoother, q.width if smoother != "none" else None,
    )  # fmt: skip


def _plain(q: TransformParams) -> bool:
    return q.transform == "none" and tf.normalise_method(q.smoother) == "none"


def _value_fragment(read, content: str, q: TimeseriesQuery, column: str, data: _Decoded, reference) -> bytes:
    """JSON of the transformed, smoothed statistic, cached beside the series it comes from (so a cached
    text is exactly what recomputing gives)."""
    if _plain(q):
        return data.fragment(column)
    cache = _cache(read, "timeseries_value_cache")
    key = _value_key(content, q, column)
    text = cache.get(key)
    if text is None:
        text = series_json.floats_json(_value_array(q, data.values[column], reference))
        cache.put(key, text, 256 + len(text))
    return text


class FragmentsResponse(Response):
    """A response whose body is sent as its parts, in order, with their total ``Content-Length``.

    The parts of a series are mostly cached JSON fragments; joining them would allocate (and fault in)
    a fresh megabyte per request for one copy, which cost more than the rest of a cached answer.
    """

    def __init__(self, parts: list[bytes], media_type: str, headers: dict[str, str]):
        self.parts = [p for p in parts if p]
        super().__init__(b"", media_type=media_type, headers=headers)
        length = str(sum(len(p) for p in self.parts)).encode()
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.raw_headers.append((b"content-length", length))

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        last = len(self.parts) - 1
        if last < 0:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        for i, part in enumerate(self.parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < last})


@router.get(
    "/timeseries",
    response_model=Series,
    responses={**error_responses(404, 503), 200: {"content": {"application/json": {}, "text/csv": {}}}},
)
async def get_timeseries(q: Annotated[TimeseriesQuery, Query()], read: CatalogReadDep) -> Any:
    """A boundary's per-scan statistic with SKOPE's transforms (statistic -> transform -> smoother)."""
    # A series answered before (and its transform) is all in memory: that answer is written from the
    # event loop; anything needing the catalog or a computation goes to a worker thread.
    answer = _from_cache(q, read)
    if answer is None:
        answer = await run_in_threadpool(_answer, q, read)
    return answer


def _from_cache(q: TimeseriesQuery, read) -> Response | None:
    """The JSON answer when the series and its transformed values are cached (else None: no query, no
    computation here). Errors are left to :func:`_answer`, which raises them."""
    if q.format != "json" or q.transform == "zscore_fixed":
        return None
    snapshot = read.snapshots.checked()  # no I/O on the event loop: opening a new snapshot is for _answer
    if snapshot is None:
        return None
    if (not_modified := read.not_modified(snapshot)) is not None:
        return not_modified
    if not snapshot.has_table(TABLE):
        return None
    content = content_key(snapshot)
    data = _cache(read).get((content, q.boundary, q.site, q.product, q.start, q.end))
    if data is None or data.n == 0 or data.n > MAX_POINTS or (q.site is None and len(data.sites) > 1):
        return None
    column = tf.statistic_column(q.statistic)
    if _plain(q):
        value = data.fragment(column)
    else:
        value = _cache(read, "timeseries_value_cache").get(_value_key(content, q, column))
    if value is None:
        return None
    return _json_answer(q, read, data, column, value)


def _answer(q: TimeseriesQuery, read) -> Response:
    column = tf.statistic_column(q.statistic)
    with read.snapshots.session() as session:
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
        if not session.snapshot.has_table(TABLE):
            raise NotFoundError(f"no time series for boundary {q.boundary!r}")
        data = _cached_series(read, session, q.boundary, q.site, q.product, q.start, q.end)
        reference = None
        if q.transform == "zscore_fixed":
            ref = _cached_series(
                read, session, q.boundary, q.site, q.product, q.reference_start, q.reference_end
            )
            reference = ref.values[column][:MAX_POINTS]
        n = data.n
        content = content_key(session.snapshot)
        if n == 0 and not _exists(session, q.boundary):
            raise NotFoundError(f"no time series for boundary {q.boundary!r}")
    if n > MAX_POINTS:
        raise InvalidParameterError(("query", "end"), f"more than {MAX_POINTS} scans: narrow start/end")
    sites = data.sites
    if q.site is None and len(sites) > 1:
        raise InvalidParameterError(
            ("query", "site"),
            f"boundary {q.boundary!r} is covered by several sites ({', '.join(sites)}): give site",
        )
    if q.format == "csv":
        value = None if _plain(q) else _value_array(q, data.values[column], reference)
        headers = dict(read.response.headers)
        headers["Content-Disposition"] = f'inline; filename="{q.boundary}_{q.product}.csv"'
        columns = {
            "time": json.loads(data.fragment("time")),
            "scan_id": json.loads(data.fragment("scan_id")),
            "value": tf.to_list(data.values[column] if value is None else value),
            "raw": tf.to_list(data.values[column]),
            "count": tf.to_list(data.values["count"]),
            "coverage_fraction": tf.to_list(data.values["coverage_fraction"]),
        }
        rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
        return Response(csv_bytes(list(columns), rows), media_type="text/csv", headers=headers)
    value = _value_fragment(read, content, q, column, data, reference)
    return _json_answer(q, read, data, column, value)


def _json_answer(q: TimeseriesQuery, read, data: _Decoded, column: str, value: bytes) -> Response:
    head = series_json.object_json(
        {
            "boundary": q.boundary,
            "site": q.site or (data.sites[0] if data.sites else None),
            "product": q.product,
            "statistic": q.statistic,
            "transform": q.transform,
            "smoother": tf.normalise_method(q.smoother),
            "width": q.width,
        }
    )
    # The Series model's fields, in its order; every column's JSON is cached with the series (the
    # transformed values per transform), so a repeated query only writes cached bytes.
    parts = [
        head[:-1],
        b',"time":', data.fragment("time"),
        b',"scan_id":', data.fragment("scan_id"),
        b',"value":', value,
        b',"raw":', data.fragment(column),
        b',"count":', data.fragment("count"),
        b',"coverage_fraction":', data.fragment("coverage_fraction"),
        b"}",
    ]  # fmt: skip
    return FragmentsResponse(parts, "application/json", dict(read.response.headers))


def _exists(session, boundary: str) -> bool:
    if not session.snapshot.has_table("boundaries"):
        return False
    return bool(session.select("boundaries", {"id": "VARCHAR"}, ' WHERE boundaries."id" = ?', [boundary]))


# -- POST /timeseries/extract -------------------------------------------------------------------------
class ExtractRequest(TransformParams):
    model_config = {"extra": "forbid"}

    geometry: dict[str, Any] = Field(
        description="GeoJSON in WGS84 (EPSG:4326): a Point, MultiPoint, Polygon or MultiPolygon geometry, a "
        "Feature or a FeatureCollection (its features' geometries together).",
        examples=[
            {
                "type": "Polygon",
                "coordinates": [[[-88.0, 41.7], [-87.6, 41.7], [-87.6, 42.0], [-88.0, 42.0], [-88.0, 41.7]]],
            }
        ],
    )
    site: Site = Field(description="Radar site whose sweeps are summarised.")
    product: str = Field("REF", pattern=PRODUCT_PATTERN)
    start: UtcDatetime = Field(description="Inclusive lower bound of scan times.")
    end: UtcDatetime = Field(description="Exclusive upper bound of scan times.")

    @model_validator(mode="after")
    def _range(self):
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class ExtractPoint(SeriesPoint):
    cells: int | None = None
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p90: float | None = None
    frac_ge_20dbz: float | None = None


class ExtractResult(BaseModel):
    site: str
    product: str
    statistic: str
    transform: str
    smoother: str
    width: int
    points: list[ExtractPoint]


def parse_geometry(data: dict[str, Any]):
    """A shapely geometry from request GeoJSON, or :class:`InvalidParameterError` naming what is wrong."""
    import shapely

    loc = ("body", "geometry")
    kind = data.get("type")
    if kind == "Feature":
        inner = data.get("geometry")
        if not isinstance(inner, dict):
            raise InvalidParameterError(loc, "the Feature has no geometry")
        return parse_geometry(inner)
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list) or not features:
            raise InvalidParameterError(loc, "the FeatureCollection has no features")
        if len(features) > 1000:
            raise InvalidParameterError(loc, "at most 1000 features")
        parts = [
            parse_geometry(f if f.get("type") == "Feature" else {}) for f in features if isinstance(f, dict)
        ]
        if len(parts) != len(features):
            raise InvalidParameterError(loc, "every member of features must be a Feature")
        return shapely.union_all(parts)
    if kind not in ("Point", "MultiPoint", "Polygon", "MultiPolygon"):
        raise InvalidParameterError(
            loc, f"geometry type must be Point, MultiPoint, Polygon or MultiPolygon (got {kind!r})"
        )
    try:
        geom = shapely.from_geojson(
            json.dumps({"type": kind, "coordinates": data.get("coordinates")}, allow_nan=True)
        )
    except (shapely.errors.GEOSException, ValueError, TypeError) as exc:
        raise InvalidParameterError(loc, f"not a valid GeoJSON {kind}: {str(exc)[:200]}") from None
    return geom


def check_geometry(geom, max_vertices: int) -> None:
    import numpy as np
    import shapely

    loc = ("body", "geometry")
    if geom is None or geom.is_empty:
        raise InvalidParameterError(loc, "the geometry is empty")
    coords = shapely.get_coordinates(geom)
    if len(coords) > max_vertices:
        raise PayloadTooLarge(f"the geometry has {len(coords)} vertices, more than {max_vertices}")
    if not np.isfinite(coords).all():
        raise InvalidParameterError(loc, "coordinates must be finite numbers (NaN or infinity found)")
    if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
        raise InvalidParameterError(
            loc, "coordinates outside longitude/latitude ranges: send WGS84 (EPSG:4326) longitude, latitude"
        )
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise InvalidParameterError(loc, f"the geometry is not valid ({reason}); repair it before sending")


class PayloadTooLarge(Exception):
    """Answered 413 by the route itself (the request is well formed, just too big)."""


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return Response(
        json.dumps({"detail": message}), status_code=status, media_type="application/json", headers=headers
    )


@router.post(
    "/timeseries/extract",
    response_model=ExtractResult,
    responses={
        **error_responses(404, 503),
        400: {"description": "The body is not JSON."},
        413: {"description": "The geometry spans too many grid cells or vertices, or the body is too large."},
    },
)
def extract(request: Request, body: ExtractRequest, read: CatalogReadDep, objects: ObjectsDep) -> Any:
    """Zonal statistics of an ad-hoc geometry over one site's scans, computed now (nothing is stored)."""
    from radar_assets.lib.geo.zonal import CellLimitError, WeightCache, ZonalError
    from radar_assets.lib.timeseries.summaries import extract_geometry, summarised_sweeps

    limits = read.settings.api
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limits.extract_max_body_bytes:
        return _error(413, f"the request body is larger than {limits.extract_max_body_bytes} bytes")
    try:
        geom = parse_geometry(body.geometry)
        check_geometry(geom, limits.extract_max_vertices)
    except PayloadTooLarge as exc:
        return _error(413, str(exc))
    slots = extract_slots(request.app, limits.extract_max_concurrent)
    if not slots.acquire(blocking=False):
        return _error(
            503, "too many extractions are running; retry shortly", {"Retry-After": str(RETRY_AFTER_S)}
        )
    try:
        with read.snapshots.session() as session:
            rows = []
            if session.snapshot.has_table("sweeps"):
                level = (
                    "(level = 2 AND moment = 'REF')"
                    if body.product == "REF"
                    else "(level = 3 AND product = ?)"
                )
                params: list[Any] = [body.site, body.start, body.end]
                if body.product != "REF":
                    if body.product not in SUMMARISED_LEVEL3:
                        raise InvalidParameterError(
                            ("body", "product"),
                            f"product must be REF or one of {', '.join(SUMMARISED_LEVEL3)}",
                        )
                    params.append(body.product)
                tail = f' WHERE "site" = ? AND "sweep_time" >= ? AND "sweep_time" < ? AND {level} ORDER BY sweeps."sweep_time" LIMIT ?'
                rows = session.select(
                    "sweeps", SWEEP_COLUMNS, tail, [*params, 50 * limits.extract_max_sweeps]
                )
        sweeps = [s for s in summarised_sweeps(_as_table(rows)) if s["summary_product"] == body.product]
        if len(sweeps) > limits.extract_max_sweeps:
            raise InvalidParameterError(
                ("body", "end"),
                f"{len(sweeps)} scans in the window, more than {limits.extract_max_sweeps}: narrow start/end",
            )
        cache = request.app.state.__dict__.setdefault("extract_weights", WeightCache(max_entries=64))
        try:
            points = extract_geometry(
                geom,
                sweeps,
                lambda key: objects.read(key, what="a sweep's value COG", cache=False),
                cache,
                max_cells=limits.extract_max_cells,
            )
        except CellLimitError as exc:
            return _error(413, str(exc))
        except ZonalError as exc:
            raise InvalidParameterError(("body", "geometry"), str(exc)) from None
    finally:
        slots.release()
    column = tf.statistic_column(body.statistic)
    raw = [p[column] for p in points]
    values = _apply(body, raw, _reference(body, raw, points))
    out = [
        {**p, "value": v, "raw": x, "time": _iso(p["time"])}
        for p, v, x in zip(points, values, raw, strict=True)
    ]
    result = {
        "site": body.site,
        "product": body.product,
        "statistic": body.statistic,
        "transform": body.transform,
        "smoother": tf.normalise_method(body.smoother),
        "width": body.width,
        "points": out,
    }
    return json_response(result, {"Cache-Control": "no-store"})


def extract_slots(app, size: int) -> threading.BoundedSemaphore:
    """The app's extraction slots (``size`` of them, created on first use)."""
    slots = app.state.__dict__.get("extract_slots")
    if slots is None:
        slots = app.state.__dict__.setdefault("extract_slots", threading.BoundedSemaphore(size))
    return slots


def _reference(body: ExtractRequest, raw, points) -> list[float | None] | None:
    """For zscore_fixed on an extraction: the statistic of the points inside the reference window."""
    if body.transform != "zscore_fixed":
        return None
    lo, hi = body.reference_start.isoformat(), body.reference_end.isoformat()
    return [x for x, p in zip(raw, points, strict=True) if lo <= _as_datetime(p["time"]).isoformat() < hi]


def _as_datetime(value) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _iso(value) -> str:
    text = _as_datetime(value).isoformat()
    return text.replace("+00:00", "Z")


def _as_table(rows: list[dict[str, Any]]):
    """Snapshot rows (times as ISO text) as a sweeps table for :func:`summarised_sweeps`."""
    import pyarrow as pa

    fixed = []
    for r in rows:
        r = dict(r)
        r["sweep_time"] = _as_datetime(r["sweep_time"])
        fixed.append(r)
    schema = pa.schema([SWEEPS_SCHEMA.field(name) for name in SWEEP_COLUMNS])
    return pa.Table.from_pylist(fixed, schema=schema)
