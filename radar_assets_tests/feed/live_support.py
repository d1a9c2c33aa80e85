"""Helpers of the live-stream tests: a real uvicorn server in a thread and a blocking SSE client."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from radar_assets.api.routers.live import build_router
from radar_assets.lib.feed.live_hub import LiveHub
from radar_assets.lib.feed.spool import Spool
from radar_assets_tests.conftest import free_port


def live_app(spool: Path, **hub_kwargs) -> tuple[FastAPI, LiveHub]:
    """A bare FastAPI app with only the live router (the real app registers it the same way)."""
    hub_kwargs.setdefault("keepalive", 0.5)  # quiet streams still wake test clients that want to stop
    hub = LiveHub(spool, **hub_kwargs)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await hub.stop()

    app = FastAPI(lifespan=lifespan)
    app.state.live_hub = hub
    app.include_router(build_router())
    return app, hub


class Server:
    """uvicorn serving ``app`` on a free loopback port, in a thread (real HTTP)."""

    def __init__(self, app: FastAPI):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@dataclass
class Event:
    event: str
    data: dict
    id: str | None
    received: float


@dataclass
class SSEClient:
    """Reads ``url`` as server-sent events in a thread; ``events`` fills as they arrive."""

    url: str
    headers: dict = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def start(self) -> SSEClient:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            for ev in iter_events(self.url, self.headers, stop=self.stop):
                self.events.append(ev)
                if self.stop.is_set():
                    return
        except (httpx.HTTPError, OSError) as exc:
            if not self.stop.is_set():
                self.error = exc

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)

    def records(self) -> list[dict]:
        return [r for e in self.events if e.event == "records" for r in e.data["records"]]

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.event == kind]


def iter_events(
    url: str, headers: dict | None = None, timeout: float = 30.0, stop: threading.Event | None = None
) -> Iterator[Event]:
    """Parse a server-sent event stream (keep-alive comments let ``stop`` be noticed on a quiet stream)."""
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=5)) as client:
        with client.stream("GET", url, headers=headers or {}) as resp:
            resp.raise_for_status()
            kind, data, eid = "message", [], None
            for line in resp.iter_lines():
                if stop is not None and stop.is_set():
                    return
                if line == "":
                    if data:
                        yield Event(kind, json.loads("\n".join(data)), eid, time.time())
                    kind, data, eid = "message", [], None
                elif line.startswith(":"):
                    continue
                else:
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        kind = value
                    elif name == "data":
                        data.append(value)
                    elif name == "id":
                        eid = value


ROOT = Path(__file__).resolve().parents[2]


class ProcListener:
    """The real listener in its own process (as deployed), so that it never shares a GIL with the API."""

    def __init__(self, endpoint: str, spool: Path, heartbeat_interval: float = 0.2):
        self.args = [endpoint, str(spool), str(heartbeat_interval)]
        self.proc: subprocess.Popen | None = None

    def start(self) -> ProcListener:
        code = (
            "import sys; from radar_assets.lib.feed.listener import Listener; "
            "Listener([sys.argv[1]], sys.argv[2], heartbeat_interval=float(sys.argv[3]))"
            ".run(install_signals=True)"
        )
        self.proc = subprocess.Popen([sys.executable, "-c", code, *self.args], cwd=ROOT)
        return self

    def accepted(self) -> int:
        hb = Spool(self.args[1]).heartbeat() or {}
        return hb.get("accepted", 0) if self.proc and hb.get("pid") == self.proc.pid else 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)

    def __enter__(self) -> ProcListener:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def publish_process(endpoint: str, stations: list[str], rate: float, count: int) -> subprocess.Popen:
    """``SyntheticFeed`` published at ``rate`` from another process (record time = scheduled publish time)."""
    code = """
import json, sys
from radar_assets.lib.feed.simulate import SyntheticFeed, publish
stations, rate, n = sys.argv[2].split(","), float(sys.argv[3]), int(sys.argv[4])
feed = SyntheticFeed(stations, rate, 0)  # templates made before publishing starts

def start(start_us):
    feed.start_us = start_us  # record time = scheduled publish time
    return feed  # sent as SyntheticFeed.messages(): no compression in the publisher

print(json.dumps(publish(sys.argv[1], start, rate=rate, count=n)))
"""
    return subprocess.Popen(
        [sys.executable, "-c", code, endpoint, ",".join(stations), str(rate), str(count)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
