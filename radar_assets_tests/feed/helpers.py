"""Shared helpers of the feed tests: a listener in a thread, a publisher in a thread, waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import zmq

from radar_assets.lib.feed.listener import Listener
from radar_assets.lib.feed.simulate import wait_for_subscribers


def wait_until(cond: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()


class ThreadListener:
    """A real :class:`Listener` (real SUB sockets, real spool) running in a background thread."""

    def __init__(self, endpoints: list[str], spool: Path, **kwargs):
        self.listener = Listener(endpoints, spool, **kwargs)
        self.thread = threading.Thread(target=self.listener.run, daemon=True)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self.listener

    def __exit__(self, *exc) -> None:
        self.listener.stop_event.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


class RawPublisher:
    """An XPUB socket bound on ``endpoint`` that sends arbitrary multipart messages (garbage included)."""

    def __init__(self, endpoint: str):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.sock.bind(endpoint)

    def wait_subscriber(self, timeout: float = 10.0) -> None:
        assert wait_for_subscribers(self.sock, 1, timeout) == 1, "the listener never subscribed"
        time.sleep(0.1)

    def send(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()
