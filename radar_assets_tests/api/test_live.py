"""Against a real uvicorn server: snapshots published under a running API, and the event stream."""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from radar_assets.api import create_app
from radar_assets_tests.api.catalog_data import FILE_SWEEP, SCANS_SCHEMA, build_catalog, scan_rows, table
from radar_assets_tests.api.conftest import serve
from radar_assets_tests.conftest import settings_for


def new_site_rows(n: int) -> list[dict]:
    """``n`` Level 2 scans of a site the base catalog does not have."""
    rows = []
    for row in scan_rows(n)[: 3 * n : 3]:
        t = row["volume_start"] + timedelta(days=1)
        rows.append(
            {
                **row,
                "site": "KNEW",
                "scan_id": f"KNEW-L2-VOL-{t.strftime('%Y%m%dT%H%M%SZ')}",
                "volume_start": t,
            }
        )
    return rows


def open_snapshot_fds(root: Path) -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(root)) and ".duckdb" in target:
            out.append(target)
    return out


@pytest.fixture
def live_catalog(tmp_path):
    return build_catalog(tmp_path, volumes_per_site=10)


def test_api_keeps_answering_while_snapshots_are_published(live_catalog, tmp_path):
    settings = settings_for(tmp_path, snapshot_check_interval=0.0, pool_size=4)
    publishes = 12
    done = threading.Event()
    statuses: list[tuple[str, int]] = []
    seen_new: list[int] = []

    def publisher():
        try:
            for i in range(1, publishes + 1):
                live_catalog.write_partition(
                    "scans", "2021-06-26|KNEW", table(new_site_rows(i), SCANS_SCHEMA)
                )
                live_catalog.publish()
                time.sleep(0.03)
        finally:
            done.set()

    urls = [
        "/health",
        "/scans?site=KLOT&limit=5",
        "/scans?site=KNEW&limit=1000",
        "/sites",
        f"/sweeps/{FILE_SWEEP}.png",
    ]

    def reader(base: str, k: int):
        with httpx.Client(base_url=base, timeout=10) as c:
            n = 0
            while not done.is_set() or n < len(urls):
                url = urls[(n + k) % len(urls)]
                r = c.get(url)
                statuses.append((url, r.status_code))
                if url.startswith("/scans?site=KNEW") and r.status_code == 200:
                    seen_new.append(len(r.json()["items"]))
                n += 1

    with serve(create_app(settings)) as base:
        with ThreadPoolExecutor(5) as pool:
            futures = [pool.submit(reader, base, k) for k in range(4)]
            pool.submit(publisher).result(60)
            for f in futures:
                f.result(60)
        bad = [s for s in statuses if s[1] != 200]
        assert not bad, bad[:10]
        assert len(statuses) > 50
        # New rows became visible while the readers ran, and only ever grew (each snapshot is whole).
        assert max(seen_new) > 0
        with httpx.Client(base_url=base, timeout=10) as c:
            final = c.get("/scans", params={"site": "KNEW", "limit": 1000}).json()["items"]
            assert len(final) == publishes
            assert (
                c.get("/health").json()["snapshot"]["row_counts"]["scans"] == len(scan_rows(10)) + publishes
            )
            # Retired snapshots were closed once idle: only the current file is still open.
            time.sleep(0.2)
            c.get("/health")
            assert len(open_snapshot_fds(tmp_path)) == 1, open_snapshot_fds(tmp_path)


def read_events(lines, count: int, timeout: float = 15.0) -> list[tuple[str, dict]]:
    """The next ``count`` events (name, JSON data) from an SSE line iterator; fails after ``timeout`` s."""
    events: list[tuple[str, dict]] = []
    name, data = None, []
    deadline = time.monotonic() + timeout
    for line in lines:
        assert time.monotonic() < deadline, "timed out waiting for events"
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data.append(line.split(":", 1)[1].strip())
        elif line == "" and name:
            events.append((name, json.loads("\n".join(data))))
            name, data = None, []
            if len(events) == count:
                return events
    return events


def test_events_announce_new_snapshots(live_catalog, tmp_path):
    settings = settings_for(tmp_path, snapshot_check_interval=0.0, events_poll_interval=0.05)
    with serve(create_app(settings)) as base:
        with httpx.Client(base_url=base, timeout=httpx.Timeout(10, read=15)) as c:
            with c.stream("GET", "/events") as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.iter_lines()
                [(name, first)] = read_events(lines, 1)
                assert name == "catalog" and first["new_rows"] is None
                base_scans = first["row_counts"]["scans"]
                # The stream holds no cursor and does not block the server.
                t0 = time.monotonic()
                assert c.get("/health").status_code == 200 and time.monotonic() - t0 < 2
                live_catalog.write_partition(
                    "scans", "2021-06-26|KNEW", table(new_site_rows(3), SCANS_SCHEMA)
                )
                live_catalog.publish()
                [(name, second)] = read_events(lines, 1)
                assert name == "catalog"
                assert second["previous_version"] == first["version"] != second["version"]
                assert second["row_counts"]["scans"] == base_scans + 3
                assert second["new_rows"]["scans"] == 3 and second["new_rows"]["sweeps"] == 0
                assert c.get("/scans", params={"site": "KNEW"}).json()["items"][0]["site"] == "KNEW"

            # max_events closes the stream; Last-Event-ID of the current snapshot skips the replay.
            with c.stream("GET", "/events", params={"max_events": 1}) as stream:
                events = read_events(stream.iter_lines(), 5)
                assert [e[1]["version"] for e in events] == [second["version"]]
            box: dict = {}

            def listen():
                with c.stream(
                    "GET", "/events", params={"max_events": 1}, headers={"Last-Event-ID": second["version"]}
                ) as s:
                    box["events"] = read_events(s.iter_lines(), 1)

            t = threading.Thread(target=listen)
            t.start()
            time.sleep(0.5)
            assert "events" not in box  # nothing new yet
            live_catalog.write_partition(
                "scans", "2021-06-27|KNEW", table(new_site_rows(2)[1:], SCANS_SCHEMA)
            )
            live_catalog.publish()
            t.join(15)
            # Relative to the snapshot the client said it had seen.
            assert box["events"][0][1]["previous_version"] == second["version"]
            assert box["events"][0][1]["new_rows"]["scans"] == 1
            assert box["events"][0][1]["row_counts"]["scans"] == base_scans + 4
            head = c.head("/events")
            assert head.status_code == 200 and head.content == b""


def test_events_wait_for_the_first_snapshot(tmp_path):
    settings = settings_for(tmp_path, snapshot_check_interval=0.0, events_poll_interval=0.05)
    with serve(create_app(settings)) as base:
        with httpx.Client(base_url=base, timeout=httpx.Timeout(10, read=15)) as c:
            assert c.get("/health").status_code == 503
            box: dict = {}

            def listen():
                with c.stream("GET", "/events", params={"max_events": 1}) as s:
                    box["events"] = read_events(s.iter_lines(), 1)

            t = threading.Thread(target=listen)
            t.start()
            time.sleep(0.3)
            build_catalog(tmp_path, volumes_per_site=2, echoes=False)
            t.join(15)
            assert box["events"][0][1]["row_counts"]["scans"] == len(scan_rows(2))
            assert c.get("/health").status_code == 200


def test_cli_api_command_serves(tmp_path):
    """``radar-assets api`` (the click command) builds settings from its options and runs uvicorn."""
    import subprocess
    import sys

    from radar_assets_tests.conftest import free_port

    build_catalog(tmp_path, volumes_per_site=2, echoes=False)
    port = free_port()
    code = "from radar_assets.cli.api import api; api()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--root",
            str(tmp_path),
            "--port",
            str(port),
            "--cors-origin",
            "https://a.example",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/health", headers={"Origin": "https://a.example"}, timeout=2
                )
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["snapshot"]["row_counts"]["scans"] == len(scan_rows(2))
        assert r.headers["access-control-allow-origin"] == "https://a.example"
        assert httpx.post(f"http://127.0.0.1:{port}/scans", timeout=2).status_code == 405
    finally:
        proc.terminate()
        proc.wait(15)
