"""``/health``: is a snapshot published, how old is it, how many rows has each table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from radar_assets.api.dependencies import SnapshotsDep
from radar_assets.api.models import Health, NoQuery
from radar_assets.api.responses import error_responses

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses=error_responses(503))
def health(snapshots: SnapshotsDep, response: Response, _q: Annotated[NoQuery, Query()]) -> dict:
    """Snapshot version, publish time and age, and row counts. ``503`` until a snapshot is published."""
    snap = snapshots.current()
    response.headers["Cache-Control"] = "no-store"
    return {
        "status": "ok",
        "snapshot": {
            "version": snap.version,
            "published_at": snap.published_at,
            "age_seconds": snap.age_seconds(),
            "row_counts": snap.row_counts,
        },
        "tables": snap.data_tables(),
    }
