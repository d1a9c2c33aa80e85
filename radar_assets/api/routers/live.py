"""``/live``: the speed layer. Server-sent events of every accepted feed record within about a second.

The stream is served by one :class:`~radar_assets.lib.feed.live_hub.LiveHub` per app (one spool tailer shared
by every client; see that module for the events, the resume rules and the drop policy). The router is
built by :func:`build_router` around a function that returns the app's hub, so it can be mounted on any app
(tests mount it on a bare FastAPI app). ``router`` (registered in ``ROUTERS``) uses :func:`hub_from_state`:
``app.state.live_hub``, created on first use from the feed settings (spool folder, batch interval, queue bound).
The hub reads the spool only; it starts with the first request and stops with the event loop.

- ``GET /live/stream?station=sas,pgr&arrays=false`` (no ``station``: every station):
  ``text/event-stream``. Resume with the ``Last-Event-ID`` header (what ``EventSource`` sends by itself)
  or ``?after=<event id>``; ``?until=<event id>`` makes a bounded replay that ends there (what a client
  told it ``dropped`` records uses to fetch them).
- ``GET /live/status``: the hub's position, clients, queued batches, dropped records, listener state.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse

from radar_assets.api.errors import InvalidParameterError
from radar_assets.lib.feed.live_hub import LiveHub
from radar_assets.lib.feed.tail import Position, parse_event_id

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
MAX_STATIONS = 64
STATION = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def hub_from_state(request: Request) -> LiveHub:
    """The app's hub (``app.state.live_hub``), made on first use from ``app.state.settings.feed``."""
    state = request.app.state
    hub = getattr(state, "live_hub", None)
    if hub is None:
        settings = getattr(state, "settings", None)
        spool_dir = getattr(getattr(settings, "feed", None), "spool_dir", None)
        if spool_dir is None:
            raise HTTPException(status_code=503, detail="the live stream is not configured (no feed spool)")
        feed = settings.feed
        hub = state.live_hub = LiveHub(
            spool_dir,
            batch_interval=feed.live_batch_interval,
            queue_batches=feed.live_queue_batches,
            queue_records=feed.live_queue_records,
            max_records=feed.live_max_batch_records,
        )
    return hub


def _stations(value: str | None) -> frozenset[str] | None:
    names = [s.strip() for s in (value or "").split(",") if s.strip()]
    if not names:
        return None
    if len(names) > MAX_STATIONS:
        raise InvalidParameterError(("query", "station"), f"at most {MAX_STATIONS} stations per stream")
    for s in names:
        if not STATION.fullmatch(s):  # the value is not echoed back: it may be anything a client sent
            raise InvalidParameterError(
                ("query", "station"), "a station name is 1-64 letters, digits, '_', '-' or '.'"
            )
    return frozenset(names)


def _position(where: str, name: str, value: str | None) -> Position | None:
    if value is None or value == "":
        return None
    try:
        return parse_event_id(value)
    except ValueError as exc:
        raise InvalidParameterError((where, name), str(exc)) from exc


def build_router(get_hub: Callable[[Request], LiveHub] = hub_from_state) -> APIRouter:
    router = APIRouter(prefix="/live", tags=["live"])

    @router.get(
        "/stream",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "`text/event-stream`: `records` (id = spool position), `gap`, `listener`, "
                "`dropped`, `expired` events; see the module documentation.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            422: {"description": "bad station name or event id"},
        },
    )
    async def live_stream(
        request: Request,
        station: Annotated[
            str | None,
            Query(max_length=4200, description="station name, or several comma-separated; all when absent"),
        ] = None,
        arrays: Annotated[bool, Query(description="include per-gate range_gate/velocity/power")] = False,
        after: Annotated[str | None, Query(description="resume after this event id")] = None,
        until: Annotated[str | None, Query(description="end the stream at this event id")] = None,
        max_events: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    ) -> Response:
        """Server-sent events of live feed records, completed scans and listener gaps."""
        stations = _stations(station)
        start = _position("query", "after", after) or _position(
            "header", "Last-Event-ID", request.headers.get("last-event-id")
        )
        end = _position("query", "until", until)
        hub = get_hub(request)
        if request.method == "HEAD":
            return Response(media_type="text/event-stream", headers=HEADERS)
        stream = hub.stream(stations=stations, arrays=arrays, after=start, until=end, max_events=max_events)
        return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)

    @router.get("/status")
    async def live_status(request: Request) -> dict:
        """Where the shared tailer is, how many clients it feeds, what was dropped, the listener state."""
        hub = get_hub(request)
        return hub.status()  # does not start the hub: a status request costs no spool reading

    return router


router = build_router()
