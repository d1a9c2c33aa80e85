"""Typed query parameters and response models of the API.

Every query parameter model forbids unknown parameters, and every id, code and name has a strict pattern,
so a request that reaches DuckDB carries only values of the right type and shape (and they are passed as
query parameters, never formatted into SQL).

Pagination is keyset-based: a page's ``next_cursor`` is an opaque token (URL-safe base64 of a small JSON
array naming the list and the sort key of the page's last row). A token is validated like any other
parameter: a malformed one, or one from another list, is a 422.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, date, datetime
from enum import IntEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)

# -- identifiers ------------------------------------------------------------------------------------
SITE_PATTERN = r"^[A-Za-z][A-Za-z0-9]{3}$"
SCAN_ID_PATTERN = r"^[A-Z][A-Z0-9]{3}-L[23]-[A-Z0-9]{3}-[0-9]{8}T[0-9]{6}Z$"
SWEEP_ID_PATTERN = r"^[A-Z][A-Z0-9]{3}-L[23]-[A-Z0-9]{3}-[0-9]{8}T[0-9]{6}Z-[A-Z0-9_]{1,16}-[0-9]{2,3}$"
PRODUCT_PATTERN = r"^[A-Za-z0-9]{3}$"
MOMENT_PATTERN = r"^[A-Za-z0-9_]{1,16}$"
STATION_PATTERN = r"^[A-Za-z0-9_-]{1,16}$"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{4,1024}$"

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


def _upper(value: str) -> str:
    return value.upper()


def _utc(value: datetime) -> datetime:
    """Naive times are UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time is out of range once converted to UTC") from None


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


ISO_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})?)?$"
)
_ISO_TIME_RE = re.compile(ISO_TIME_PATTERN)


def _iso_time(value: Any) -> Any:
    """Only ISO 8601 text (no Unix numbers): ``2021-06-25``, ``2021-06-25T07:51``, ``...:54.5+02:00``."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_TIME_RE.fullmatch(value):
        raise ValueError("expected an ISO 8601 date or time, e.g. 2021-06-25T07:51:54Z")
    return value


_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` text (pydantic alone would take ``0`` as a Unix time)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE_RE.fullmatch(value):
        raise ValueError("expected a date as YYYY-MM-DD, e.g. 2021-06-25")
    return value


IsoDate = Annotated[
    date,
    BeforeValidator(_iso_date),
    WithJsonSchema({"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}),
]

UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_iso_time),
    AfterValidator(_utc),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": ISO_TIME_PATTERN,
            "description": "ISO 8601 date or time; naive times are UTC.",
            "examples": ["2021-06-25T07:51:54Z"],
        }
    ),
]
Site = Annotated[str, Field(pattern=SITE_PATTERN, examples=["KLOT"]), AfterValidator(_upper)]
Product = Annotated[str, Field(pattern=PRODUCT_PATTERN, examples=["N0Q"]), AfterValidator(_upper)]
Moment = Annotated[str, Field(pattern=MOMENT_PATTERN, examples=["REF"]), AfterValidator(_upper)]
Station = Annotated[str, Field(pattern=STATION_PATTERN, examples=["sas"])]
ScanId = Annotated[str, Field(pattern=SCAN_ID_PATTERN, examples=["KLOT-L2-VOL-20210625T075154Z"])]
SweepId = Annotated[str, Field(pattern=SWEEP_ID_PATTERN, examples=["KLOT-L2-VOL-20210625T075154Z-REF-00"])]
OptFloat = Annotated[float | None, BeforeValidator(_nan_to_none)]
# Response values come shaped by the query (NaN already NULL): no Python validator per value.
Num = float | None
Level = Annotated[int, Field(ge=2, le=3, description="NEXRAD level: 2 or 3.")]


class TileSize(IntEnum):
    small = 256
    large = 512


Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description=f"Rows per page (at most {MAX_LIMIT}).")]
Cursor = Annotated[
    str | None,
    Field(pattern=CURSOR_PATTERN, description="Opaque `next_cursor` of the previous page of the same list."),
]


# -- cursors -----------------------------------------------------------------------------------------
_SCAN_ID_RE = re.compile(SCAN_ID_PATTERN)
_SWEEP_ID_RE = re.compile(SWEEP_ID_PATTERN)
_STATION_RE = re.compile(STATION_PATTERN)
_TEXT_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")

# Sort key of each paginated list: "ts" (ISO time), "int", or a compiled pattern for strings.
CURSOR_KEYS: dict[str, tuple[Any, ...]] = {
    "scans": ("ts", _SCAN_ID_RE),
    "sweeps": (_SWEEP_ID_RE,),
    "echoes": ("ts", _TEXT_RE, "int"),
    "echo_scans": ("ts", _STATION_RE),
}


def encode_cursor(kind: str, values: tuple[Any, ...]) -> str:
    """Cursor of list ``kind`` after the row whose sort key is ``values`` (times: aware or ISO text)."""
    out: list[Any] = [kind]
    for want, v in zip(CURSOR_KEYS[kind], values, strict=True):
        if want == "ts":
            ts = datetime.fromisoformat(v) if isinstance(v, str) else v
            if ts.tzinfo is None:
                raise ValueError("cursor times must be timezone-aware")
            v = ts.astimezone(UTC).isoformat()
        out.append(v)
    raw = json.dumps(out, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(kind: str, token: str) -> tuple[Any, ...]:
    """The sort key a cursor of list ``kind`` names; ``ValueError`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("invalid cursor: not a cursor returned by this API") from None
    spec = CURSOR_KEYS[kind]
    if not isinstance(data, list) or len(data) != len(spec) + 1 or data[0] != kind:
        raise ValueError(f"invalid cursor: not a cursor of the {kind} list")
    values: list[Any] = []
    for want, value in zip(spec, data[1:], strict=True):
        if want == "ts":
            if not isinstance(value, str) or len(value) > 40:
                raise ValueError("invalid cursor: bad time")
            try:
                ts = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError("invalid cursor: bad time") from None
            if ts.tzinfo is None:
                raise ValueError("invalid cursor: bad time")
            values.append(_utc(ts))
        elif want == "int":
            if not isinstance(value, int) or isinstance(value, bool) or not -(2**31) <= value < 2**31:
                raise ValueError("invalid cursor: bad number")
            values.append(value)
        else:
            if not isinstance(value, str) or not want.fullmatch(value):
                raise ValueError("invalid cursor: bad key")
            values.append(value)
    return tuple(values)


# -- query parameter models ---------------------------------------------------------------------------
class QueryModel(BaseModel):
    """Base of every query model: unknown parameters are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class NoQuery(QueryModel):
    """For endpoints without query parameters (so that an unexpected one is a 422)."""


class _TimeRange(QueryModel):
    start: UtcDatetime | None = Field(
        None, description="Inclusive lower bound (ISO 8601; naive times are UTC)."
    )
    end: UtcDatetime | None = Field(
        None, description="Exclusive upper bound (ISO 8601; naive times are UTC)."
    )

    @model_validator(mode="after")
    def _ordered(self):
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError("start must not be after end")
        return self


class _Paged(QueryModel):
    _kind: str = ""
    _after: tuple[Any, ...] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _decode_cursor(self):
        token = getattr(self, "cursor", None)
        if token is not None:
            self._after = decode_cursor(self._kind, token)
        return self

    @property
    def after(self) -> tuple[Any, ...] | None:
        return self._after


class ScansQuery(_TimeRange, _Paged):
    _kind = "scans"
    site: Site | None = None
    level: Level | None = None
    product: Product | None = Field(
        None, description="`VOL` for Level 2 volumes, the 3-character code for Level 3."
    )
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None


class SweepsQuery(_TimeRange, _Paged):
    _kind = "sweeps"
    scan_id: ScanId | None = None
    site: Site | None = None
    moment: Moment | None = None
    elevation: float | None = Field(None, ge=-2, le=90, allow_inf_nan=False, description="Degrees.")
    elevation_tolerance: float = Field(0.1, ge=0, le=5, allow_inf_nan=False)
    format: Literal["json", "geojson"] = "json"
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None


class LatestSweepsQuery(QueryModel):
    site: Site
    moment: Moment = "REF"
    elevation: float | None = Field(
        None, ge=-2, le=90, allow_inf_nan=False, description="Degrees; omit for every elevation."
    )
    elevation_tolerance: float = Field(0.1, ge=0, le=5, allow_inf_nan=False)
    scans: int = Field(1, ge=1, le=100, description="How many of the site's most recent scans.")


class LegendQuery(QueryModel):
    format: Literal["json", "png"] = "json"
    width: int = Field(256, ge=16, le=2048, description="Width of the PNG colour bar in pixels.")
    height: int = Field(16, ge=4, le=256, description="Height of the PNG colour bar in pixels.")


class SitesQuery(QueryModel):
    level: Level | None = None


class ProductsQuery(QueryModel):
    site: Site | None = None


class EchoesQuery(_TimeRange, _Paged):
    _kind = "echoes"
    station: Station | None = None
    format: Literal["json", "csv"] = "json"
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None


class EchoScansQuery(_TimeRange, _Paged):
    _kind = "echo_scans"
    station: Station | None = None
    format: Literal["json", "csv"] = "json"
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor = None


class EventsQuery(QueryModel):
    max_events: int | None = Field(
        None, ge=1, le=100_000, description="Close the stream after this many events."
    )


COLORMAPS = ("viridis", "turbo", "magma", "plasma", "inferno", "cividis", "gist_ncar", "rdbu_r", "greys_r")


class TileQuery(QueryModel):
    colormap: Literal[("table", *COLORMAPS)] = Field(  # type: ignore[valid-type]
        "table",
        description="`table`: the moment's own colour table, as the sweep PNGs and `/legend/{moment}` show it; "
        "otherwise a colormap stretched over the sweep's vmin..vmax.",
    )
    tilesize: TileSize = TileSize.small


# -- responses -----------------------------------------------------------------------------------------
class ErrorMessage(BaseModel):
    detail: str


class SnapshotInfo(BaseModel):
    version: str = Field(description="Changes whenever a new snapshot is published (also the ETag of lists).")
    published_at: datetime | None
    age_seconds: OptFloat
    row_counts: dict[str, int]


class Health(BaseModel):
    status: Literal["ok"]
    snapshot: SnapshotInfo
    tables: list[str]


class SiteSummary(BaseModel):
    site: str
    scans: int
    level2_scans: int
    level3_scans: int
    products: list[str]
    first_scan_time: datetime | None
    latest_scan_time: datetime | None
    latest_scan_id: str | None
    latitude: float | None = None
    longitude: float | None = None
    elevation_m: float | None = None
    scans_url: str


class SiteList(BaseModel):
    items: list[SiteSummary]
    snapshot: str


class Scan(BaseModel):
    scan_id: str
    site: str | None = None
    level: int | None = None
    product: str | None = None
    product_code: int | None = None
    volume_start: datetime
    vcp: int | None = None
    sweep_count: int | None = None
    elevations: list[Num] | None = None
    bytes: int | None = None
    sha256: str | None = None
    source_key: str | None = None
    partition: str | None = None
    ingested_at: datetime | None = None
    sweeps_url: str


class ScanPage(BaseModel):
    items: list[Scan]
    next_cursor: str | None
    limit: int
    snapshot: str


class Sweep(BaseModel):
    sweep_id: str
    scan_id: str | None = None
    site: str | None = None
    level: int | None = None
    product: str | None = None
    moment: str | None = None
    units: str | None = None
    sweep_index: int | None = None
    elevation: Num = None
    sweep_time: datetime | None = None
    bounds: list[float] | None = Field(None, description="[west, south, east, north] in degrees.")
    corners: list[list[float]] | None = Field(None, description="Overlay corners [[lon, lat] x 4].")
    vmin: Num = None
    vmax: Num = None
    partition: str | None = None
    png_url: str | None = None
    json_url: str | None = None
    tif_url: str | None = None
    tiles_url: str | None = Field(None, description="XYZ template of the sweep's map tiles.")


class LatestSweeps(BaseModel):
    site: str
    moment: str
    items: list[Sweep] = Field(
        description="Newest scan first; one sweep per scan and elevation (split cuts resolved to the lowest sweep "
        "index carrying the moment)."
    )
    snapshot: str


class LegendStop(BaseModel):
    value: float
    color: str
    alpha: float
    label: str


class Legend(BaseModel):
    moment: str
    table: str
    kind: Literal["steps", "linear", "categorical"]
    units: str
    vmin: float
    vmax: float
    stops: list[LegendStop]
    text: str = Field(description="The legend as a sentence (text alternative of the colour bar).")


class SweepPage(BaseModel):
    items: list[Sweep]
    next_cursor: str | None
    limit: int
    snapshot: str


class Polygon(BaseModel):
    type: Literal["Polygon"]
    coordinates: list[list[list[float]]]


class SweepFeature(BaseModel):
    type: Literal["Feature"]
    id: str
    geometry: Polygon | None
    properties: Sweep


class SweepFeatureCollection(BaseModel):
    type: Literal["FeatureCollection"]
    features: list[SweepFeature]
    next_cursor: str | None
    limit: int
    snapshot: str


class ProductSummary(BaseModel):
    product: str
    product_code: int | None
    scans: int
    sites: int
    first_scan_time: datetime | None
    latest_scan_time: datetime | None


class ProductList(BaseModel):
    items: list[ProductSummary]
    snapshot: str


class Echo(BaseModel):
    record_id: str
    station: str
    record_time: datetime
    beam: int | None = None
    scan_flag: int | None = None
    range_gate: int | None = None
    velocity: Num = None
    power: Num = None
    spectral_width: Num = None
    ground_scatter: bool | None = None
    elevation: Num = None
    frequency: int | None = None
    noise: Num = None
    partition: str | None = None
    station_lat: Num = Field(
        None, description="Station latitude (degrees), from the SuperDARN station table."
    )
    station_lon: Num = Field(None, description="Station longitude (degrees).")


class EchoPage(BaseModel):
    items: list[Echo]
    next_cursor: str | None
    limit: int
    snapshot: str


class EchoScan(BaseModel):
    station: str
    scan_start: datetime
    scan_end: datetime | None = None
    records: int | None = None
    echoes: int | None = None
    mean_velocity: Num = None
    mean_power: Num = None
    mean_width: Num = None
    partition: str | None = None
    station_lat: Num = Field(
        None, description="Station latitude (degrees), from the SuperDARN station table."
    )
    station_lon: Num = Field(None, description="Station longitude (degrees).")


class EchoScanPage(BaseModel):
    items: list[EchoScan]
    next_cursor: str | None
    limit: int
    snapshot: str
