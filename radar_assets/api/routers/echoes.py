"""``/echoes`` and ``/echoes/scans``: live-feed echoes (one row per range gate) and per-scan averages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from radar_assets.api.dependencies import CatalogReadDep
from radar_assets.api.models import EchoesQuery, EchoPage, EchoScanPage, EchoScansQuery, encode_cursor
from radar_assets.api.responses import (
    CSV_SCHEMA,
    csv_bytes,
    error_responses,
    json_response,
    with_media,
)
from radar_assets.api.snapshot import Session
from radar_assets.api.sql import Where
from radar_assets.lib.catalog import columns_of  # noqa: E402
from radar_assets.lib.feed.echoes import ECHO_SCANS_SCHEMA, ECHOES_SCHEMA  # noqa: E402
from radar_assets.lib.feed.stations import station_location

router = APIRouter(tags=["echoes"])

ECHO_COLUMNS: dict[str, str] = columns_of(
    ECHOES_SCHEMA,
    ["record_id", "station", "record_time", "beam", "scan_flag", "range_gate", "velocity", "power",
     "spectral_width", "ground_scatter", "elevation", "frequency", "noise", "partition"],
)  # fmt: skip
ECHO_ORDER = ("record_time", "record_id", "range_gate")

SCAN_COLUMNS: dict[str, str] = columns_of(
    ECHO_SCANS_SCHEMA,
    ["station", "scan_start", "scan_end", "records", "echoes", "mean_velocity", "mean_power", "mean_width",
     "partition"],
)  # fmt: skip
SCAN_ORDER = ("scan_start", "station")
# Added to every row from the station table (not catalog columns: a station does not move).
LOCATION = ("station_lat", "station_lon")


def _page(
    session: Session,
    table: str,
    columns: dict[str, str],
    order: tuple[str, ...],
    time_column: str,
    kind: str,
    q: EchoesQuery | EchoScansQuery,
) -> tuple[list[dict[str, Any]], str | None]:
    snap = session.snapshot
    if not snap.has_table(table) or not set(order) <= set(snap.columns[table]):
        return [], None
    where = Where()
    where.add_if(q.station, '"station" = ?')
    where.add_if(q.start, f'"{time_column}" >= ?')
    where.add_if(q.end, f'"{time_column}" < ?')
    where.add(" AND ".join(f'"{c}" IS NOT NULL' for c in order))
    where.after(order, q.after)
    order_by = ", ".join(f'{table}."{c}"' for c in order)  # the table's columns, not the formatted ones
    rows = session.select(
        table, columns, f"{where.sql()} ORDER BY {order_by} LIMIT ?", [*where.params, q.limit + 1]
    )
    next_cursor = None
    if len(rows) > q.limit:
        rows = rows[: q.limit]
        next_cursor = encode_cursor(kind, tuple(rows[-1][c] for c in order))
    for row in rows:
        row["station_lat"], row["station_lon"] = station_location(row.get("station"))
    return rows, next_cursor


def _answer(
    q: EchoesQuery | EchoScansQuery,
    rows: list[dict[str, Any]],
    next_cursor: str | None,
    columns: dict[str, str],
    version: str,
    response: Response,
) -> Any:
    if q.format == "csv":
        headers = dict(response.headers.items())
        if next_cursor:
            headers["X-Next-Cursor"] = next_cursor
        return Response(
            csv_bytes([*columns, *LOCATION], rows), media_type="text/csv; charset=utf-8", headers=headers
        )
    body = {"items": rows, "next_cursor": next_cursor, "limit": q.limit, "snapshot": version}
    return json_response(body, response.headers)


@router.get(
    "/echoes",
    response_model=EchoPage,
    responses=with_media(error_responses(503), "text/csv", CSV_SCHEMA),
)
def list_echoes(
    q: Annotated[EchoesQuery, Query()],
    read: CatalogReadDep,
) -> Any:
    """Echoes ordered by record time. `format=csv` answers CSV; its next cursor is in `X-Next-Cursor`."""
    with read.snapshots.session() as session:
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
        rows, next_cursor = _page(session, "echoes", ECHO_COLUMNS, ECHO_ORDER, "record_time", "echoes", q)
    return _answer(q, rows, next_cursor, ECHO_COLUMNS, session.snapshot.version, read.response)


@router.get(
    "/echoes/scans",
    response_model=EchoScanPage,
    responses=with_media(error_responses(503), "text/csv", CSV_SCHEMA),
)
def list_echo_scans(
    q: Annotated[EchoScansQuery, Query()],
    read: CatalogReadDep,
) -> Any:
    """Per-scan averages of the live feed, ordered by scan start (record time, not arrival time)."""
    with read.snapshots.session() as session:
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
        rows, next_cursor = _page(
            session, "echo_scans", SCAN_COLUMNS, SCAN_ORDER, "scan_start", "echo_scans", q
        )
    return _answer(q, rows, next_cursor, SCAN_COLUMNS, session.snapshot.version, read.response)
