"""One spool tailer shared by every live-stream client: batching, per-client bounded queues, catch-up, SSE text.

:class:`LiveHub` runs one :class:`~radar_assets.lib.feed.tail.SpoolTailer` from the spool's end in a worker
thread every ``batch_interval`` seconds (sooner while it is behind) and hands each batch, by reference, to
every subscribed client's queue. A client (:meth:`LiveHub.stream`) first catches up from its own position
with a private tailer reading the spool (resume by ``Last-Event-ID``), then follows the shared batches.

Server-sent events (``text/event-stream``)
-----------------------------------------
- ``event: records``, ``id: <event id of the batch's last record>``, data
  ``{"from", "to", "count", "read_at_us", "records": [...], "scans": [...]}``: the records after ``from``
  up to ``to`` (those of the requested stations) and the scans they completed. ``id`` is a spool position, so a reconnecting
  ``EventSource`` sends it back as ``Last-Event-ID`` and gets every later record exactly once, in order.
- ``event: gap`` (no id): the listener restarted; data says from when to when it was down.
- ``event: listener`` (no id): the listener's heartbeat went stale (``"down"``) or came back (``"up"``).
- ``event: dropped`` (no id): this client did not read fast enough and its queue was full; data gives the
  range it missed (``after``, ``through``, ``batches``, ``records``) and how to fetch it
  (``?after=<after>&until=<through>``, a bounded replay from the spool). The stream then continues live.
- ``event: expired`` (no id): the resume position was older than the spool's retention.
- ``: keep-alive`` comments when nothing else was sent for ``keepalive`` seconds.

Drop policy and memory
----------------------
The hub never waits for a client: it appends a reference to the shared batch to each queue, and a queue
holding ``queue_batches`` batches or ``queue_records`` records takes no more (the client is told what it
missed when it reads again). A batch holds at most ``max_records`` records, so the API's memory for the
stream is bounded by about ``queue_records + max_records`` records per slow client, and batches are shared
objects (a thousand clients on time cost one copy); the listener, which only sees the spool files, is never
slowed.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radar_assets.lib.feed.spool import Spool
from radar_assets.lib.feed.tail import (
    Position,
    SpoolTailer,
    TailBatch,
    event_id,
    listener_state,
    record_json,
    record_summaries,
    scan_summaries,
)

log = logging.getLogger(__name__)
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _dumps(obj: Any) -> str:
    return _JSON.encode(obj)


class HubBatch:
    """A tail batch plus its SSE text, rendered once per (stations, arrays) and shared by every client."""

    __slots__ = ("tail", "stations", "n", "read_at_us", "_parts", "_cache")

    def __init__(self, tail: TailBatch):
        self.tail = tail
        self.read_at_us = time.time_ns() // 1000  # when the tailer read it: clients can measure their lag
        self.stations = (
            frozenset(tail.records.column("station").to_pylist()) if tail.records.num_rows else frozenset()
        )
        self.n = tail.records.num_rows
        self._parts: dict[bool, tuple[list[str], list[str]]] = {}  # arrays -> (stations, JSON per record)
        self._cache: dict[tuple[frozenset[str] | None, bool], str] = {}

    @property
    def last(self) -> Position | None:
        return self.tail.last

    def prepare(self, arrays: bool = False) -> None:
        """Render the per-record JSON (worker thread friendly) so that clients only join strings."""
        if arrays not in self._parts:
            if arrays:
                recs = record_summaries(self.tail, arrays=True)
                texts = [_dumps(r) for r in recs]
            else:
                texts = record_json(self.tail)
            self._parts[arrays] = (self.tail.records.column("station").to_pylist(), texts)

    def sse(
        self,
        stations: frozenset[str] | None,
        arrays: bool,
        after: Position | None = None,
        until: Position | None = None,
    ) -> str:
        """The SSE text of this batch for a client (empty when nothing in it concerns the client)."""
        plain = after is None and until is None
        key = (stations, arrays)
        if plain and key in self._cache:
            return self._cache[key]
        text = render_batch(self, stations, arrays, after, until)
        if plain:
            self._cache[key] = text
        return text


def render_batch(
    batch: HubBatch,
    stations: frozenset[str] | None,
    arrays: bool,
    after: Position | None = None,
    until: Position | None = None,
) -> str:
    tail = batch.tail
    out = []
    if tail.expired is not None:
        out.append(f"event: expired\ndata: {_dumps(tail.expired)}\n\n")
    if tail.gap is not None:
        out.append(f"event: gap\ndata: {_dumps(tail.gap.as_dict())}\n\n")
    if batch.n == 0 or (stations is not None and not (stations & batch.stations)):
        return "".join(out)
    if after is None and until is None:
        batch.prepare(arrays)
        names, texts = batch._parts[arrays]
        if stations is not None:
            texts = [t for st, t in zip(names, texts, strict=True) if st in stations]
        body, count = ",".join(texts), len(texts)
        last = tail.last
    else:
        recs = [
            r
            for r in record_summaries(tail, stations, arrays, after=after)
            if until is None or _pos(r["id"]) <= until
        ]
        body, count = _dumps(recs)[1:-1], len(recs)
        last = tail.last if until is None or tail.last <= until else until
    scans = scan_summaries(tail, stations)
    if not count and not scans:
        return "".join(out)
    first = event_id(tail.after) if tail.after else None
    to = event_id(last)
    data = (
        f'{{"from":{_dumps(first)},"to":"{to}","count":{count},"read_at_us":{batch.read_at_us},'
        f'"records":[{body}],"scans":{_dumps(scans)}}}'
    )
    out.append(f"event: records\nid: {to}\ndata: {data}\n\n")
    return "".join(out)


def _pos(eid: str) -> Position:
    a, _, b = eid.partition("-")
    return int(a), int(b)


@dataclass
class Notice:
    """A hub-wide announcement without a spool position (listener state)."""

    event: str
    data: dict[str, Any]

    def sse(self) -> str:
        return f"event: {self.event}\ndata: {_dumps(self.data)}\n\n"


@dataclass(eq=False)
class Subscription:
    stations: frozenset[str] | None
    arrays: bool
    bound: int  # batches
    record_bound: int = 1 << 62  # records (memory follows records, and batches grow when the hub is behind)
    queued_records: int = 0
    queue: collections.deque = field(default_factory=collections.deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_queued: Position | None = None  # last position handed to this client's queue
    dropped: dict[str, Any] | None = None  # the range missed since the queue was full
    dropped_total: int = 0

    def wants(self, batch: HubBatch) -> bool:
        t = batch.tail
        return (
            t.gap is not None
            or t.expired is not None
            or (batch.n > 0 and (self.stations is None or bool(self.stations & batch.stations)))
        )

    def flush_dropped(self) -> None:
        """Queue the ``dropped`` notice of the range missed so far (before anything newer)."""
        if self.dropped is not None:
            d, self.dropped = self.dropped, None
            d["resume"] = f"?after={d['after'] or ''}&until={d.get('through') or ''}"
            self.queue.append(Notice("dropped", d))

    def offer(self, item: HubBatch | Notice) -> None:
        if isinstance(item, HubBatch):
            full = len(self.queue) >= self.bound or (
                self.queued_records and self.queued_records + item.n > self.record_bound
            )
            if full:
                d = self.dropped
                if d is None:
                    d = self.dropped = {
                        "after": event_id(self.last_queued) if self.last_queued else None,
                        "batches": 0,
                        "records": 0,
                    }
                d["batches"] += 1
                d["records"] += item.n
                d["through"] = event_id(item.last) if item.last else d.get("through")
                self.dropped_total += item.n
                if item.last:
                    self.last_queued = item.last
                return
            self.flush_dropped()
            if item.last:
                self.last_queued = item.last
            self.queued_records += item.n
        self.queue.append(item)
        self.wake.set()

    def take(self) -> HubBatch | Notice:
        item = self.queue.popleft()
        if isinstance(item, HubBatch):
            self.queued_records -= item.n
        return item

    def clear(self) -> None:
        self.queue.clear()
        self.queued_records = 0
        self.dropped = None


class LiveHub:
    """The shared tailer and its subscribers (see the module docstring).

    Parameters
    ----------
    spool_root
        The listener's spool folder (read only).
    batch_interval
        Seconds between two reads of the spool (and so the batching delay of records).
    queue_batches, queue_records
        Batches, and records in them, a client's queue may hold before it starts dropping (bounded memory;
        a queue always takes one batch, however large).
    max_records
        Records per batch at most (a hub that is behind reads again without waiting).
    keepalive
        Seconds of silence after which a client gets a ``: keep-alive`` comment.
    stale_after
        Seconds of heartbeat age after which the listener is announced ``down``.
    """

    def __init__(
        self,
        spool_root: str | Path,
        *,
        batch_interval: float = 0.1,
        queue_batches: int = 100,
        queue_records: int = 20_000,
        max_records: int = 5000,
        keepalive: float = 15.0,
        stale_after: float = 3.0,
    ):
        self.spool_root = Path(spool_root)
        self.batch_interval = batch_interval
        self.queue_batches = queue_batches
        self.queue_records = queue_records
        self.max_records = max_records
        self.keepalive = keepalive
        self.stale_after = stale_after
        self.subscribers: set[Subscription] = set()
        self.last: Position | None = None
        self.listener: dict[str, Any] = {"state": "unknown"}
        self.batches = 0
        self.records = 0
        self.dropped = 0
        self._task: asyncio.Task | None = None
        self._ready: asyncio.Event | None = None
        self._tailer: SpoolTailer | None = None

    # -- lifecycle --------------------------------------------------------------------------------------
    async def ensure_started(self) -> None:
        """Start the shared tailer on the running loop (idempotent); returns once it knows the spool end."""
        if self._task is not None and self._task.get_loop() is not asyncio.get_running_loop():
            # Served from another event loop than before (a test client per call): start afresh there.
            self._task, self.subscribers = None, set()
        if self._task is None:
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="live-hub")
        await self._ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        try:
            self._tailer = await asyncio.to_thread(
                SpoolTailer, self.spool_root, from_end=True, max_records=self.max_records
            )
            self.last = self._tailer.position
        finally:
            self._ready.set()  # clients waiting for the start must not hang if it failed
        spool = Spool(self.spool_root)
        next_state = 0.0
        while True:
            t0 = time.monotonic()
            try:
                # The echoes table costs about as much as the rest: only while a client wants arrays.
                arrays = any(s.arrays for s in self.subscribers)  # here, on the loop that changes the set
                batch = await asyncio.to_thread(self._poll, arrays)
            except Exception:  # a spool file vanishing mid-read, or a bug: never stop serving; retry
                log.exception("live hub: reading the spool failed; retrying")
                batch = None
                await asyncio.sleep(1.0)
            if batch is not None:
                self._publish(batch)
            if t0 >= next_state:
                state = await asyncio.to_thread(listener_state, spool, self.stale_after)
                if state["state"] != self.listener.get("state") and state["state"] != "unknown":
                    self._announce(Notice("listener", state))
                self.listener = state
                next_state = t0 + 1.0
            if batch is not None and batch.n >= self.max_records:
                await asyncio.sleep(0)  # behind: read again at once
                continue
            await asyncio.sleep(max(0.0, self.batch_interval - (time.monotonic() - t0)))

    def _poll(self, with_echoes: bool) -> HubBatch | None:
        self._tailer.with_echoes = with_echoes
        tail = self._tailer.poll()
        if not tail:
            return None
        batch = HubBatch(tail)
        batch.prepare(False)  # the common rendering, done here in the worker thread
        return batch

    def _publish(self, batch: HubBatch) -> None:
        self.batches += 1
        self.records += batch.n
        if batch.last is not None:
            self.last = batch.last
        for sub in self.subscribers:
            if sub.wants(batch):
                before = sub.dropped_total
                sub.offer(batch)
                self.dropped += sub.dropped_total - before

    def _announce(self, notice: Notice) -> None:
        for sub in self.subscribers:
            sub.offer(notice)

    def subscribe(self, stations: frozenset[str] | None, arrays: bool) -> Subscription:
        sub = Subscription(stations, arrays, self.queue_batches, self.queue_records, last_queued=self.last)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    def status(self) -> dict[str, Any]:
        return {
            "last_event_id": event_id(self.last) if self.last else None,
            "clients": len(self.subscribers),
            "queued_batches": sum(len(s.queue) for s in self.subscribers),
            "batches": self.batches,
            "records": self.records,
            "dropped_records": self.dropped,
            "listener": self.listener,
            "batch_interval": self.batch_interval,
            "queue_batches": self.queue_batches,
            "queue_records": self.queue_records,
        }

    # -- one client ------------------------------------------------------------------------------------
    async def stream(
        self,
        *,
        stations: frozenset[str] | None = None,
        arrays: bool = False,
        after: Position | None = None,
        until: Position | None = None,
        max_events: int | None = None,
    ) -> AsyncIterator[str]:
        """SSE text for one client: catch-up from ``after`` (spool), then live batches, until ``until``."""
        await self.ensure_started()
        if self._tailer is None:
            raise RuntimeError(f"the live hub could not open the spool {self.spool_root}")
        yield f"retry: 1000\n\n: live stream, last event {event_id(self.last) if self.last else 'none'}\n\n"
        sub = self.subscribe(stations, arrays)
        sent = 0
        covered = False  # the catch-up read the spool through ``until``
        try:
            if after is not None and (self.last is None or after < self.last or until is not None):
                # Catch up from the spool up to where the shared batches begin (or to ``until``).
                tailer: SpoolTailer | None = None
                while True:
                    join = sub.last_queued if until is None else min(until, sub.last_queued or until)
                    if join is None or after >= join:
                        break
                    if until is not None and join == until:
                        covered = True
                    if tailer is None:
                        tailer = await asyncio.to_thread(
                            SpoolTailer, self.spool_root, after=after, max_records=self.max_records
                        )
                        tailer.with_echoes = arrays
                    tailer.stop_at = join
                    tail = await asyncio.to_thread(tailer.poll)
                    if not tail:
                        if sub.dropped is None:
                            break
                        # The live queue overflowed while we read: keep reading from the spool.
                        sub.clear()
                        continue
                    text = render_batch(HubBatch(tail), stations, arrays)
                    after = tail.last or after
                    if text:
                        yield text
                        sent += text.count("event: records")
                        if max_events is not None and sent >= max_events:
                            return
                    if until is not None and after >= until:
                        return
                    if sub.dropped is not None and tail.last is not None and tail.last >= join:
                        sub.clear()  # re-join: read the overflowed part from the spool too
                        continue
            if covered or (until is not None and after is not None and after >= until):
                return
            last_write = time.monotonic()
            while True:
                if not sub.queue:
                    sub.flush_dropped()  # the client read everything kept for it: tell it what it missed
                if not sub.queue:
                    sub.wake.clear()
                    try:
                        await asyncio.wait_for(sub.wake.wait(), timeout=self.keepalive)
                    except TimeoutError:
                        pass
                    if not sub.queue:
                        if time.monotonic() - last_write >= self.keepalive:
                            yield ": keep-alive\n\n"
                            last_write = time.monotonic()
                        continue
                item = sub.take()
                if isinstance(item, Notice):
                    yield item.sse()
                    last_write = time.monotonic()
                    continue
                if after is not None and item.last is not None and item.last <= after:
                    continue
                partial = after is not None and (item.tail.after is None or item.tail.after < after)
                text = item.sse(stations, arrays, after=after if partial else None, until=until)
                if text:
                    yield text
                    last_write = time.monotonic()
                    sent += text.count("event: records")
                    if max_events is not None and sent >= max_events:
                        return
                if until is not None and item.last is not None and item.last >= until:
                    return
        finally:
            self.unsubscribe(sub)
