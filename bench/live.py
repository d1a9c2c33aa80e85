"""Live stream end to end: simulator -> listener -> spool -> API (uvicorn, real HTTP) -> N SSE clients.

Every part is its own process, as deployed: the simulator (``SyntheticFeed`` over ZeroMQ XPUB, SNDHWM 0),
the real listener (``Listener``, spool on disk), the API (``radar-assets api``: ``create_app`` from settings,
``/live/stream`` registered like every router) and the SSE clients (one asyncio process reading N streams
over loopback, parsing every event). A synthetic record's time is the moment it was made, just before
being compressed and sent, so ``receive time - record time`` is the publish -> client latency (an upper
bound), whether or not the simulator keeps its schedule (``rate_per_s`` is the rate it achieved).

Baseline (same run): the same records read straight from the spool files by cursor every 20 ms in this
process (frames only: no decoding, no API, no HTTP): the floor the stream cannot beat, so
``api_over_spool_p95`` is what the API adds. Each process's CPU seconds over the run are printed too
(``cpu_s``): on a 2-core machine the simulator, the listener, the API and the clients share the cores.
Optional slow clients (``--slow-clients``) connect and read nothing for ``--slow-seconds`` (30 s in the
issue), then read what the server kept for them; their ``dropped`` notices are counted.

Prints one JSON line: published, delivered_per_client, lost, p50_ms, p95_ms, p99_ms, max_ms and more.
Targets: 0 lost, p95 <= 1000 ms, p99 <= 2000 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from radar_assets.lib.feed.spool import Spool  # noqa: E402

STATIONS = ["sas", "pgr", "inv", "rkn", "cly", "kap", "gbr", "han", "pyk", "lyr"]

LISTENER = """
import sys
from radar_assets.lib.feed.listener import Listener
Listener([sys.argv[1]], sys.argv[2]).run(install_signals=True)
"""

SIMULATOR = """
import itertools, json, sys, time
from radar_assets.lib.feed.simulate import SyntheticFeed, publish
stations, rate, n = sys.argv[2].split(","), float(sys.argv[3]), int(sys.argv[4])
feed = SyntheticFeed(stations, rate, 0)  # templates made before publishing starts

last = [0]

def now(_i):
    # Record time = the moment the record is made, just before it is encoded and sent (strictly
    # increasing, so ids stay unique): latency counts from the actual send, not from a schedule the
    # simulator may lag behind on a loaded machine (rate_per_s says what it achieved).
    last[0] = max(time.time_ns() // 1000, last[0] + 1)
    return last[0]

start = lambda _start_us: itertools.islice(feed.messages(now), n)
print(json.dumps(publish(sys.argv[1], start, rate=rate, count=n, subscribers=1, encoded=True)))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- SSE clients (run in their own process: ``bench/live.py --clients-only``) ---------------------------
async def _read_stream(host: str, port: int, path: str, out: dict, stop: asyncio.Event, stall: float) -> None:
    sock = socket.socket()
    if stall:  # a small receive window, so the stall reaches the server's queue instead of kernel buffers
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock, limit=64 << 20)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"stream refused: {head[:200]!r}")
    out["connected"] = True
    if stall:
        await asyncio.sleep(
            stall
        )  # a slow client: reads nothing (the kernel buffers fill, then the server's queue)
    buf = b""
    lat, ids = out["lat"], out["ids"]
    while not stop.is_set():
        size_line = await reader.readuntil(b"\r\n")  # chunked transfer encoding
        size = int(size_line.strip(), 16)
        if size == 0:
            break
        chunk = await reader.readexactly(size + 2)
        buf += chunk[:-2]
        now_us = time.time_ns() // 1000
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            kind, data = b"message", None
            for line in event.split(b"\n"):
                if line.startswith(b"event: "):
                    kind = line[7:]
                elif line.startswith(b"data: "):
                    data = line[6:]
            if kind == b"records" and data is not None:
                recs = json.loads(data)["records"]
                lat.extend(now_us - r["record_time_us"] for r in recs)
                ids.extend(r["id"] for r in recs)
            elif kind == b"dropped" and data is not None:
                out["dropped"].append(json.loads(data))
    writer.close()


async def _clients(args) -> dict:
    stop = asyncio.Event()
    outs = [
        {"lat": [], "ids": [], "dropped": [], "connected": False, "slow": i >= args.clients}
        for i in range(args.clients + args.slow_clients)
    ]
    tasks = [
        asyncio.create_task(
            _read_stream(
                "127.0.0.1", args.port, "/live/stream", o, stop, args.slow_seconds if o["slow"] else 0.0
            )
        )
        for o in outs
    ]
    print("ready", flush=True)
    # The parent writes one line when publishing is over and everything should have arrived.
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    stop.set()
    await asyncio.sleep(0.5)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    result = []
    for o in outs:
        lat = np.asarray(o["lat"], np.int64)
        result.append(
            {
                "slow": o["slow"],
                "delivered": len(o["ids"]),
                "distinct": len(set(o["ids"])),
                "in_order": o["ids"] == sorted(o["ids"]),
                "dropped_records": sum(d["records"] for d in o["dropped"]),
                "lat_file": _save(lat),
            }
        )
    return {"clients": result}


def _save(arr: np.ndarray) -> str:
    fd, path = tempfile.mkstemp(suffix=".npy")
    os.close(fd)
    np.save(path, arr)
    return path


def clients_main(args) -> None:
    print(json.dumps(asyncio.run(_clients(args))), flush=True)


# -- the run -------------------------------------------------------------------------------------------
def _get(url: str, timeout: float = 2.0) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children so far; 0 once it is gone."""
    import psutil

    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system + t.children_user + t.children_system


def _wait(cond, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return bool(cond())


def spool_baseline(spool_dir: Path, stop: threading.Event, lat: list[int]) -> None:
    """The floor: publish -> readable in the spool, frames read by cursor every 20 ms (no decoding, no API)."""
    while not (spool_dir / "segments").is_dir() and not stop.is_set():
        time.sleep(0.02)
    spool = Spool(spool_dir)
    seg, pos = None, 0
    while not stop.is_set():
        segs = spool.segments()
        if seg is None and segs:
            seg = segs[0]
        got = 0
        if seg is not None:
            now_us = time.time_ns() // 1000
            for fr in spool.iter_records(seg, pos):
                lat.append(now_us - fr.record_time_us)
                pos = fr.end
                got += 1
            later = [s for s in segs if s > seg]
            if not got and later and spool.index_path(seg).is_file():  # sealed and read: next segment
                seg, pos = later[0], 0
                continue
        if not got:
            time.sleep(0.02)


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-live-"))
    procs: list[subprocess.Popen] = []
    try:
        spool_dir = work / "spool"
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        port = free_port()
        env = {
            **os.environ,
            "RADAR_ASSETS_HOME": str(work / "home"),
            "RADAR_ASSETS_FEED_SPOOL_DIR": str(spool_dir),
            "RADAR_ASSETS_FEED_LIVE_BATCH_INTERVAL": str(args.batch_interval),
        }
        listener = subprocess.Popen([sys.executable, "-c", LISTENER, endpoint, str(spool_dir)], cwd=ROOT)
        procs.append(listener)
        api = subprocess.Popen(
            [sys.executable, "-m", "radar_assets.cli", "api", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
        )
        procs.append(api)
        if not _wait(lambda: _get(f"http://127.0.0.1:{port}/live/status") is not None, 60):
            raise RuntimeError("the API did not start")
        args.port = port
        clients = subprocess.Popen(
            [sys.executable, __file__, "--clients-only", "--port", str(port), "--clients", str(args.clients),
             "--slow-clients", str(args.slow_clients), "--slow-seconds", str(args.slow_seconds)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(clients)
        assert clients.stdout.readline().strip() == "ready"
        want = args.clients + args.slow_clients
        if not _wait(lambda: (_get(f"http://127.0.0.1:{port}/live/status") or {}).get("clients") == want, 30):
            raise RuntimeError("the clients did not all connect")
        stop = threading.Event()
        floor: list[int] = []
        base = threading.Thread(target=spool_baseline, args=(spool_dir, stop, floor), daemon=True)
        base.start()
        import psutil

        api_ps = psutil.Process(api.pid)
        rss0 = api_ps.memory_info().rss
        n = int(args.rate * args.seconds)
        sim = subprocess.Popen(
            [sys.executable, "-c", SIMULATOR, endpoint, ",".join(STATIONS[: args.stations]), str(args.rate), str(n)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(sim)
        rss_peak = rss0
        watched = {"listener": listener, "api": api, "clients": clients, "simulator": sim}
        cpu0 = {k: _cpu(p.pid) for k, p in watched.items()}
        cpu = dict(cpu0)
        own0 = time.process_time()
        while sim.poll() is None:
            rss_peak = max(rss_peak, api_ps.memory_info().rss)
            cpu["simulator"] = _cpu(sim.pid) or cpu["simulator"]
            time.sleep(0.2)
        sim_out = json.loads(sim.stdout.read().strip().splitlines()[-1])
        published = sim_out["published"]

        # Drain: the listener may still be validating a backlog (a loaded machine); then the API.
        def accepted() -> int:
            try:
                return json.loads((spool_dir / "heartbeat.json").read_text()).get("accepted", 0)
            except (OSError, ValueError):
                return 0

        _wait(lambda: accepted() >= published, args.drain_timeout, 0.2)
        _wait(
            lambda: (_get(f"http://127.0.0.1:{port}/live/status") or {}).get("records", 0) >= accepted(),
            args.drain_timeout,
            0.2,
        )
        extra = args.slow_seconds if args.slow_clients else 0
        time.sleep(1.0 + extra)
        rss_peak = max(rss_peak, api_ps.memory_info().rss)
        for k in ("listener", "api", "clients"):
            cpu[k] = _cpu(watched[k].pid)
        cpu["bench_baseline"] = time.process_time() - own0
        status = _get(f"http://127.0.0.1:{port}/live/status") or {}
        clients.stdin.write("done\n")
        clients.stdin.flush()
        out = json.loads(clients.stdout.readline())
        stop.set()
        base.join(5)
        fast = [c for c in out["clients"] if not c["slow"]]
        slow = [c for c in out["clients"] if c["slow"]]
        lats = [np.load(c["lat_file"]) for c in fast]
        for c in out["clients"]:
            os.unlink(c["lat_file"])
        lat_ms = np.concatenate(lats) / 1000 if lats else np.empty(0)
        floor_ms = np.asarray(floor) / 1000
        pct = lambda a, q: round(float(np.percentile(a, q)), 1) if len(a) else None  # noqa: E731
        hb = json.loads((spool_dir / "heartbeat.json").read_text())
        result = {
            "published": published,
            "delivered_per_client": [c["distinct"] for c in fast],
            "lost": int(max(published - min((c["distinct"] for c in fast), default=0), 0)),
            "p50_ms": pct(lat_ms, 50),
            "p95_ms": pct(lat_ms, 95),
            "p99_ms": pct(lat_ms, 99),
            "max_ms": round(float(lat_ms.max()), 1) if len(lat_ms) else None,
            "rate_per_s": sim_out["rate_per_s"],
            "seconds": args.seconds,
            "clients": args.clients,
            "duplicates": sum(c["delivered"] - c["distinct"] for c in fast),
            "in_order": all(c["in_order"] for c in fast),
            "listener_accepted": hb.get("accepted"),
            # What the stream itself lost (accepted by the listener, never delivered), vs "lost" end to end.
            "lost_by_stream": int(max((hb.get("accepted") or 0) - min((c["distinct"] for c in fast), default=0), 0)),
            "baseline_spool_p50_ms": pct(floor_ms, 50),
            "baseline_spool_p95_ms": pct(floor_ms, 95),
            "api_over_spool_p95": round(pct(lat_ms, 95) / pct(floor_ms, 95), 2) if len(floor_ms) and len(lat_ms) else None,
            "api_rss_mb_start": round(rss0 / 2**20, 1),
            "api_rss_mb_peak": round(rss_peak / 2**20, 1),
            "api_batches": status.get("batches"),
            "batch_interval_s": args.batch_interval,
            "cpu_s": {k: round(v - cpu0.get(k, 0.0), 1) for k, v in cpu.items()},
            "loadavg": open("/proc/loadavg").read().split()[:3],
            "targets_met": None,
        }  # fmt: skip
        if slow:
            result["slow_clients"] = [
                {
                    "delivered": c["distinct"],
                    "told_dropped": c["dropped_records"],
                    "seconds": args.slow_seconds,
                }
                for c in slow
            ]
        result["targets_met"] = bool(
            result["lost"] == 0
            and result["p95_ms"] is not None
            and result["p95_ms"] <= 1000
            and result["p99_ms"] <= 2000
        )
        return result
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=5000.0, help="records/s published")
    ap.add_argument("--seconds", type=float, default=60.0, help="publishing duration")
    ap.add_argument("--clients", type=int, default=8, help="SSE clients reading everything")
    ap.add_argument(
        "--slow-clients", type=int, default=0, help="clients that read nothing for --slow-seconds"
    )
    ap.add_argument("--slow-seconds", type=float, default=30.0)
    ap.add_argument("--stations", type=int, default=5)
    ap.add_argument("--batch-interval", type=float, default=0.1, help="the API's spool read interval")
    ap.add_argument("--drain-timeout", type=float, default=300.0)
    ap.add_argument("--clients-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.clients_only:
        clients_main(args)
        return
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
