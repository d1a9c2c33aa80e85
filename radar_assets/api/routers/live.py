"""``/live``: the speed layer. Server-sent events of every accepted feed record within about a second.

The stream is served by one :class:`~radar_assets.lib.feed.live_hub.LiveHub` per app (one spool tailer shared
by every client; see that module for the events, the resume rules and the drop policy). The router is
built by :func:`build_router` around a function that returns the app's hub, so it can be mounted on any app
(tests mount it on a bare FastAPI app; :func:`hub_from_state` is the default: ``app.state.live_hub``).

- ``GET /live/stream?station=sas&station=pgr&arrays=false`` (``station`` may also be a comma list):
  ``text/event-stream``. Resume with the ``Last-Event-ID`` header (what ``EventSource`` sends by itself)
  or ``?after=<event id>``; ``?until=<event id>`` makes a bounded replay that ends there (what a client
  told it ``dropped`` records uses to fetch them).
- ``GET /live/status``: the hub's position, clients, queued batches, dropped records, listener state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse

from radar_assets.lib.feed.live_hub import LiveHub
from radar_assets.lib.feed.tail import Position, parse_event_id

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
MAX_STATIONS = 64


def hub_from_state(request: Request) -> LiveHub:
    hub = getattr(request.app.state, "live_hub", None)
    if hub is None:
        raise HTTPException(status_code=503, detail="the live stream is not configured (no feed spool)")
    return hub


def _stations(values: list[str] | None) -> frozenset[str] | None:
    names = [s.strip() for v in values or [] for s in v.split(",") if s.strip()]
    if not names:
        return None
    if len(names) > MAX_STATIONS:
        raise HTTPException(status_code=422, detail=f"at most {MAX_STATIONS} stations per stream")
    for s in names:
        if len(s) > 64 or not s.isprintable():
            raise HTTPException(status_code=422, detail=f"invalid station name {s[:64]!r}")
    return frozenset(names)


def _position(name: str, value: str | None) -> Position | None:
    if value is None or value == "":
        return None
    try:
        return parse_event_id(value)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"{name}: {exc}") from exc


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
        station: Annotated[list[str] | None, Query(description="station name(s); all when absent")] = None,
        arrays: Annotated[bool, Query(description="include per-gate range_gate/velocity/power")] = False,
        after: Annotated[str | None, Query(description="resume after this event id")] = None,
        until: Annotated[str | None, Query(description="end the stream at this event id")] = None,
        max_events: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    ) -> Response:
        """Server-sent events of live feed records, completed scans and listener gaps."""
        stations = _stations(station)
        start = _position("after", after) or _position("Last-Event-ID", request.headers.get("last-event-id"))
        end = _position("until", until)
        hub = get_hub(request)
        if request.method == "HEAD":
            return Response(media_type="text/event-stream", headers=HEADERS)
        stream = hub.stream(stations=stations, arrays=arrays, after=start, until=end, max_events=max_events)
        return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)

    @router.get("/status")
    async def live_status(request: Request) -> dict:
        """Where the shared tailer is, how many clients it feeds, what was dropped, the listener state."""
        hub = get_hub(request)
        await hub.ensure_started()
        return hub.status()

    return router
