"""``/scans`` and ``/scans/{scan_id}``: one row per source volume (Level 2) or product file (Level 3)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from radar_assets.api.dependencies import CatalogReadDep
from radar_assets.api.errors import NotFoundError
from radar_assets.api.models import SCAN_ID_PATTERN, NoQuery, Scan, ScanPage, ScansQuery, encode_cursor
from radar_assets.api.responses import error_responses, json_response
from radar_assets.api.snapshot import Session
from radar_assets.api.sql import Where
from radar_assets.lib.catalog import columns_of  # noqa: E402
from radar_assets.lib.scans import SCANS_SCHEMA  # noqa: E402

router = APIRouter(tags=["scans"])

TABLE = "scans"
COLUMNS: dict[str, str] = columns_of(SCANS_SCHEMA, exclude={"store_key"})
ORDER = ("volume_start", "scan_id")


def _scan(row: dict[str, Any], root: str) -> dict[str, Any]:
    row["sweeps_url"] = f"{root}/sweeps?scan_id={row['scan_id']}"
    return row


def query_scans(session: Session, q: ScansQuery) -> tuple[list[dict[str, Any]], str | None]:
    snap = session.snapshot
    if not snap.has_table(TABLE):
        return [], None
    where = Where().add('"volume_start" IS NOT NULL AND "scan_id" IS NOT NULL')  # sort keys of the cursor
    where.add_if(q.site, '"site" = ?')
    where.add_if(q.level, '"level" = ?')
    where.add_if(q.product, '"product" = ?')
    where.add_if(q.start, '"volume_start" >= ?')
    where.add_if(q.end, '"volume_start" < ?')
    where.after(ORDER, q.after)
    tail = f'{where.sql()} ORDER BY scans."volume_start", scans."scan_id" LIMIT ?'
    rows = session.select(TABLE, COLUMNS, tail, [*where.params, q.limit + 1])
    next_cursor = None
    if len(rows) > q.limit:
        rows = rows[: q.limit]
        last = rows[-1]
        next_cursor = encode_cursor("scans", (last["volume_start"], last["scan_id"]))
    return rows, next_cursor


@router.get("/scans", response_model=ScanPage, responses=error_responses(503))
def list_scans(
    q: Annotated[ScansQuery, Query()],
    read: CatalogReadDep,
) -> Any:
    """Scans ordered by volume start time, then id. Filters combine with AND; page with `cursor`."""
    with read.snapshots.session() as session:
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
        rows, next_cursor = query_scans(session, q)
    root = read.root
    body = {
        "items": [_scan(r, root) for r in rows],
        "next_cursor": next_cursor,
        "limit": q.limit,
        "snapshot": session.snapshot.version,
    }
    return json_response(body, read.response.headers)


@router.get("/scans/{scan_id}", response_model=Scan, responses=error_responses(404, 503))
def get_scan(
    scan_id: Annotated[str, Path(pattern=SCAN_ID_PATTERN, examples=["KLOT-L2-VOL-20210625T075154Z"])],
    _q: Annotated[NoQuery, Query()],
    read: CatalogReadDep,
) -> Any:
    """One scan by id (`SITE-L<level>-<product>-<YYYYmmddTHHMMSSZ>`)."""
    with read.snapshots.session() as session:
        snap = session.snapshot
        row = None
        if snap.has_table(TABLE):
            # The site is the id's prefix: filtering on it too lets DuckDB skip other sites' row groups.
            found = session.select(
                TABLE,
                COLUMNS,
                ' WHERE "site" = ? AND "scan_id" = ? AND "volume_start" IS NOT NULL LIMIT 1',
                [scan_id[:4], scan_id],
            )
            row = found[0] if found else None
        if row is None:
            raise NotFoundError(f"no scan {scan_id!r} in the catalog")
        if (not_modified := read.not_modified(snap)) is not None:
            return not_modified
    return _scan(row, read.root)
