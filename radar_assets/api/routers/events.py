"""``/events``: server-sent events announcing each newly published catalog snapshot.

The stream polls the snapshot path (a stat, in a worker thread, every ``events_poll_interval`` seconds)
and never holds a DuckDB cursor, so any number of listeners costs the server almost nothing. On connect it
sends the current state (unless the client's ``Last-Event-ID`` is already that snapshot), then one
``event: catalog`` per publication that changed the catalog (a re-publish of the same files is silent) with
the row counts, the rows added and the ids of the sweeps added since the snapshot the client saw.
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
from radar_assets.api.snapshot import Publication, Snapshot, SnapshotManager

router = APIRouter(tags=["events"])

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


#: At most this many new sweep ids are listed in one event (``new_sweeps_truncated`` says when more came).
MAX_NEW_SWEEPS = 500


def catalog_event(
    snap: Snapshot,
    previous: Publication | None,
    publications: list[Publication] | None,
) -> str:
    """One ``catalog`` event for ``snap``, relative to ``previous`` (the snapshot the client saw).

    ``publications`` are the ones between them (None: unknown, so ``new_sweeps`` is None and a client
    should re-read what it shows).
    """
    new_rows = None
    if previous is not None:
        new_rows = {t: n - previous.row_counts.get(t, 0) for t, n in snap.row_counts.items()}
    new_sweeps: list[str] | None = None
    truncated = False
    if publications is not None and all(p.new_sweeps is not None for p in publications):
        new_sweeps = [i for p in publications for i in p.new_sweeps or ()]
        truncated = any(p.new_sweeps_truncated for p in publications)
    data = {
        "version": snap.version,
        "previous_version": previous.version if previous is not None else None,
        "published_at": snap.published_at.isoformat() if snap.published_at else None,
        "row_counts": snap.row_counts,
        "new_rows": new_rows,
        "new_sweeps": new_sweeps[:MAX_NEW_SWEEPS] if new_sweeps is not None else None,
        "new_sweeps_truncated": new_sweeps is not None and (truncated or len(new_sweeps) > MAX_NEW_SWEEPS),
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
    """The first event is the current state (skipped when ``last_event_id`` is current); then one event per
    publication that changed the catalog. A re-publish of identical files is not announced."""
    import anyio

    yield f"retry: {int(max(poll_interval, 1.0) * 1000)}\n\n"
    announced: str | None = last_event_id or None  # the version the client has
    seen = announced  # the newest version looked at (a silent re-publish moves it, not ``announced``)
    sent = 0
    last_write = time.monotonic()
    while max_events is None or sent < max_events:
        try:
            snap = await run_in_threadpool(snapshots.current)
        except CatalogUnavailableError:
            snap = None
        if snap is not None and snap.version != seen:
            publications = snapshots.publications_since(announced) if announced is not None else None
            seen = snap.version
            if publications is None or any(p.changed for p in publications):
                previous = snapshots.publication(announced) if announced is not None else None
                yield catalog_event(snap, previous, publications)
                announced = snap.version
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
