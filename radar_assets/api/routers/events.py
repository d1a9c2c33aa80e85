"""``/events``: server-sent events announcing each newly published catalog snapshot.

The stream polls the snapshot path (a stat, in a worker thread, every ``events_poll_interval`` seconds)
and never holds a DuckDB cursor, so any number of listeners costs the server almost nothing. On connect it
sends the current state (unless the client's ``Last-Event-ID`` is already that snapshot), then one
``event: catalog`` per new snapshot with the row counts and the rows added since the previous one.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from radar_assets.api.dependencies import SettingsDep, SnapshotsDep
from radar_assets.api.errors import CatalogUnavailableError
from radar_assets.api.middleware import HEAD_FLAG
from radar_assets.api.models import EventsQuery
from radar_assets.api.snapshot import Snapshot, SnapshotManager

router = APIRouter(tags=["events"])

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def catalog_event(snap: Snapshot, previous: Snapshot | None) -> str:
    new_rows = None
    if previous is not None:
        new_rows = {t: n - previous.row_counts.get(t, 0) for t, n in snap.row_counts.items()}
    data = {
        "version": snap.version,
        "previous_version": previous.version if previous is not None else None,
        "published_at": snap.published_at.isoformat() if snap.published_at else None,
        "row_counts": snap.row_counts,
        "new_rows": new_rows,
    }
    return f"event: catalog\nid: {snap.version}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def catalog_events(
    snapshots: SnapshotManager,
    *,
    poll_interval: float,
    keepalive: float,
    max_events: int | None,
    last_event_id: str | None,
) -> AsyncIterator[str]:
    import anyio

    yield f"retry: {int(max(poll_interval, 1.0) * 1000)}\n\n"
    previous: Snapshot | None = None
    sent = 0
    last_write = time.monotonic()
    while max_events is None or sent < max_events:
        try:
            snap = await run_in_threadpool(snapshots.current)
        except CatalogUnavailableError:
            snap = None
        if snap is not None and (previous is None or snap.version != previous.version):
            if previous is None and snap.version == last_event_id:
                previous = snap  # the client saw this snapshot before reconnecting
            else:
                yield catalog_event(snap, previous)
                previous = snap
                sent += 1
                last_write = time.monotonic()
                continue
        if time.monotonic() - last_write >= keepalive:
            yield ": keep-alive\n\n"
            last_write = time.monotonic()
        await anyio.sleep(poll_interval)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`text/event-stream` of `catalog` events (JSON data: version, row counts, new rows).",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
)
async def events(
    q: Annotated[EventsQuery, Query()],
    request: Request,
    snapshots: SnapshotsDep,
    settings: SettingsDep,
) -> Response:
    """Server-sent events: `event: catalog` whenever a new catalog snapshot is published."""
    if request.scope.get(HEAD_FLAG):
        return Response(media_type="text/event-stream", headers=HEADERS)
    stream = catalog_events(
        snapshots,
        poll_interval=settings.api.events_poll_interval,
        keepalive=settings.api.events_keepalive,
        max_events=q.max_events,
        last_event_id=request.headers.get("last-event-id"),
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)
