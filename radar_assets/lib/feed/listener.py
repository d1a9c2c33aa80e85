"""The listener: subscribes to live-feed endpoints and appends every valid record durably to the spool.

One SUB socket per endpoint (so each record knows where it came from), all polled by one thread. For each
message: validate (zlib + one walk over the DMAP bytes, see :mod:`radar_assets.lib.feed.wire`), then append the compressed
frame as received to the spool, or keep the message as a reject with its reason. Nothing that arrives can
stop the loop: :func:`~radar_assets.lib.feed.wire.validate` raises only :class:`Rejected`.

Why nothing is dropped at 5,000 records/s
-----------------------------------------
- ``RCVHWM = 0`` (no high-water mark): libzmq's I/O thread keeps queueing while this thread validates, so a
  burst is absorbed in memory instead of being dropped at the default 1,000 messages. (The publisher needs
  ``SNDHWM = 0`` too; ``feed simulate`` sets it.)
- Validation costs about 50 us per 5 kB record (zlib ~20 us, the fitacf layout check and echo block ~25 us,
  on this 2-core machine), ~20,000 records/s on one core, so it is done here
  and neither the asset nor the live stream decodes DMAP again.
- Messages are drained in bursts and written with one ``write`` per burst; ``fsync`` is grouped
  (``fsync_interval``), see :mod:`radar_assets.lib.feed.spool` for the durability policy.

Invariants
----------
- ``received == accepted + rejected`` at every heartbeat; every received message is in the spool as a
  record or as a reject (bytes kept up to ``reject_keep_bytes``) once the burst holding it is written.
- The heartbeat file is rewritten at least every ``heartbeat_interval`` seconds while the loop runs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from radar_assets.lib.feed.spool import SpoolWriter
from radar_assets.lib.feed.wire import Rejected, validate

log = logging.getLogger(__name__)

BURST = 2000  # messages drained from one socket before the spool buffer is written out


@dataclass
class ListenerStats:
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    by_station: Counter = field(default_factory=Counter)
    last_arrival_ns: int | None = None

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "accepted": self.accepted,
            "rejected_messages": self.rejected,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "by_station": dict(self.by_station),
            "last_arrival_ns": self.last_arrival_ns,
        }


class Listener:
    """Subscribe to ``endpoints`` and spool what arrives into ``spool_root``.

    Parameters
    ----------
    endpoints
        ZeroMQ endpoints to connect to (``tcp://host:port``), each a publisher of the real-time feed.
    spool_root
        Spool folder; the listener takes its lock (one listener per spool).
    stations
        Subscribe only to these station names (ZeroMQ prefix filters on the first frame); all when empty.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        spool_root: str | Path,
        *,
        stations: Sequence[str] = (),
        heartbeat_interval: float = 1.0,
        segment_bytes: int = 64 << 20,
        segment_seconds: float = 600.0,
        fsync_interval: float = 0.2,
        rcvbuf: int = 8 << 20,
    ):
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        self.endpoints = list(endpoints)
        self.stations = list(stations)
        self.heartbeat_interval = heartbeat_interval
        self.rcvbuf = rcvbuf
        self.writer = SpoolWriter(
            spool_root,
            segment_bytes=segment_bytes,
            segment_seconds=segment_seconds,
            fsync_interval=fsync_interval,
        )
        self.stats = ListenerStats()
        self.stop_event = threading.Event()

    def _sockets(self, ctx: zmq.Context) -> dict[zmq.Socket, str]:
        socks = {}
        for ep in self.endpoints:
            s = ctx.socket(zmq.SUB)
            s.setsockopt(zmq.RCVHWM, 0)
            s.setsockopt(zmq.RCVBUF, self.rcvbuf)
            s.setsockopt(zmq.LINGER, 0)
            for st in self.stations or [""]:
                s.setsockopt(zmq.SUBSCRIBE, st.encode())
            s.connect(ep)
            socks[s] = ep
        return socks

    def handle(self, frames: list[bytes], endpoint: str, arrival_ns: int) -> bool:
        """Validate one message and spool it as a record or a reject. Returns True if accepted."""
        st = self.stats
        st.received += 1
        st.last_arrival_ns = arrival_ns
        try:
            rec = validate(frames)
        except Rejected as exc:
            st.rejected += 1
            st.rejected_by_reason[exc.reason] += 1
            self.writer.reject(arrival_ns, endpoint, exc.reason, frames, exc.station or "")
            if st.rejected_by_reason[exc.reason] <= 10:  # a flood of garbage must not flood the log
                log.warning("rejected a message from %s: %s", endpoint, exc)
            return False
        self.writer.append(rec, arrival_ns, endpoint)
        st.accepted += 1
        st.by_station[rec.station] += 1
        return True

    def heartbeat(self) -> None:
        self.writer.write_heartbeat(
            {"endpoints": self.endpoints, "stations": self.stations, **self.stats.as_dict()}
        )

    def run(self, max_seconds: float | None = None, install_signals: bool = False) -> ListenerStats:
        """Run until :attr:`stop_event` is set (SIGTERM/SIGINT when ``install_signals``) or ``max_seconds``."""
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop_event.set())
        self.writer.open()
        ctx = zmq.Context()
        socks = self._sockets(ctx)
        poller = zmq.Poller()
        for s in socks:
            poller.register(s, zmq.POLLIN)
        deadline = time.monotonic() + max_seconds if max_seconds else None
        next_beat = 0.0
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    self.heartbeat()
                    next_beat = now + self.heartbeat_interval
                if deadline and now >= deadline:
                    break
                ready = dict(poller.poll(timeout=100))
                for s in ready:
                    ep = socks[s]
                    for _ in range(BURST):
                        try:
                            frames = s.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self.handle(frames, ep, time.time_ns())
                # One write per burst: what has been received so far now survives a crash of this process.
                self.writer.flush()
        finally:
            self.writer.flush(fsync=True)
            self.heartbeat()
            self.writer.close()
            for s in socks:
                s.close(0)
            ctx.term()
        return self.stats
