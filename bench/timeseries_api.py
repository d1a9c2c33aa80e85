"""Load benchmark of ``GET /timeseries``: one boundary over 30 days of 5-minute scans, per request.

Builds a catalog of ``--boundaries`` (102) boundaries x ``--days`` (30) days x 288 scans of ``timeseries``
rows (the asset's schema; 881,280 rows by default, one Parquet partition per site-day as the asset writes
them) and publishes it; serves it with ``radar-assets api`` (uvicorn, one worker) in a subprocess and drives
it from another process with the load generator of ``bench/api_load.py`` (asyncio + aiohttp, on the same
cores) at ``--concurrency`` for ``--duration`` seconds per phase:

1. every boundary's series once (``first_pass``: a fresh server, every answer cold), then
   ``/timeseries?boundary=<random>&site=KLOT&start=<day 1>&end=<day 31>&transform=zscore_selected&smoother=trailing&width=12``
   -- 8,640 points per answer, statistic, z-score and moving average applied. The server keeps decoded
   series and the JSON of their columns in its memory LRU (``RADAR_ASSETS_API_TIMESERIES_CACHE_BYTES``,
   default 256 MiB, which holds all 102 series), the transformed values per transform too: after the
   first pass, these requests are the cache's steady state (no query, no computation; answered from
   the event loop with the cached bytes);
2. ``varied``: the same with a random statistic and smoothing width per request (102 x 2 x 200
   combinations), so the transform and the value column's JSON are mostly computed per request;
3. ``/health`` -- the baseline (same server, no query);
4. the same requests as 1. against a second server started with
   ``RADAR_ASSETS_API_TIMESERIES_CACHE_BYTES=0``: every request cold (DuckDB query, ISO times, every
   column encoded).

Prints one JSON line: ``{"rows", "points_per_request", "health_p50_ms", "health_p99_ms", "timeseries_p50_ms",
"timeseries_p99_ms", "p99_ratio", "timeseries_rps", "first_pass_p50_ms", "first_pass_p99_ms", "varied_p50_ms",
"varied_p99_ms", "varied_rps", "uncached_p50_ms", "uncached_p99_ms", "uncached_rps", "errors", "loadavg_1m",
...}``. Target: ``timeseries_p99_ms`` <= 50.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

START = datetime(2024, 5, 1, tzinfo=UTC)
SCANS_PER_DAY = 288


def build(root: Path, boundaries: int, days: int) -> dict:
    import numpy as np
    import pyarrow as pa

    from radar_assets.lib.catalog import local_catalog
    from radar_assets.lib.partitions import site_day
    from radar_assets.lib.timeseries.summaries import TIMESERIES_SCHEMA

    catalog = local_catalog(root)
    ids = [f"IL-{17001 + 2 * i}" for i in range(boundaries)]
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    for d in range(days):
        day = (START + timedelta(days=d)).strftime("%Y-%m-%d")
        n = SCANS_PER_DAY * boundaries
        scan = np.repeat(np.arange(SCANS_PER_DAY), boundaries)
        times = (np.datetime64(START.replace(tzinfo=None), "us") + np.timedelta64(d, "D")
                 + scan * np.timedelta64(5, "m"))  # fmt: skip
        mean = 10 + 8 * np.sin(scan / 20 + rng.uniform(0, 6, n)) + rng.normal(0, 1, n)
        missing = rng.random(n) < 0.05
        table = pa.table(
            {
                "boundary": np.tile(ids, SCANS_PER_DAY), "site": ["KLOT"] * n,
                "scan_id": [f"KLOT-{day}-{s:03d}" for s in scan], "sweep_id": [f"KLOT-{day}-{s:03d}-REF-00" for s in scan],
                "product": ["REF"] * n, "level": np.full(n, 2, np.int8),
                "time": pa.array(times, pa.timestamp("us", tz="UTC")), "units": ["dBZ"] * n,
                "elevation": np.full(n, 0.5, np.float32), "count": pa.array(np.where(missing, 0.0, 900.0)),
                "cells": np.where(missing, 0, 950), "coverage_fraction": rng.uniform(0, 1, n),
                "mean": pa.array(mean, mask=missing), "min": pa.array(mean - 10, mask=missing),
                "max": pa.array(mean + 20, mask=missing), "p50": pa.array(mean - 1, mask=missing),
                "p90": pa.array(mean + 9, mask=missing), "frac_ge_20dbz": rng.uniform(0, 0.3, n),
                "sweep_fingerprint": ["f"] * n, "boundary_hash": ["h"] * n, "partition": [site_day("KLOT", day)] * n,
            },
            schema=TIMESERIES_SCHEMA,
        )  # fmt: skip
        catalog.write_partition("timeseries", site_day("KLOT", day), table)
    generate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    counts = catalog.publish()
    return {"ids": ids, "rows": counts.get("timeseries", 0), "generate_s": round(generate_s, 1),
            "publish_s": round(time.perf_counter() - t0, 1)}  # fmt: skip


async def first_pass(base: str, urls: list[str], concurrency: int) -> dict:
    """Every url once, ``concurrency`` at a time (a fresh server's first requests: all cold)."""
    import asyncio

    import aiohttp
    from api_load import percentile

    latencies: list[float] = []
    errors = 0
    pending = list(urls)
    async with aiohttp.ClientSession(
        base_url=base, connector=aiohttp.TCPConnector(limit=concurrency)
    ) as session:

        async def worker() -> None:
            nonlocal errors
            while pending:
                url = pending.pop()
                t = time.perf_counter()
                async with session.get(url) as r:
                    await r.read()
                    errors += r.status != 200
                latencies.append((time.perf_counter() - t) * 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99), "errors": errors}


def load_process(base: str, ids: list[str], days: int, duration: float, concurrency: int, health: bool, out):
    import asyncio

    from api_load import _drive

    end = (START + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    begin = START.strftime("%Y-%m-%dT%H:%M:%SZ")

    def health_url(rng: random.Random) -> str:
        return "/health"

    def series(rng: random.Random) -> str:
        return (
            f"/timeseries?boundary={rng.choice(ids)}&site=KLOT&start={begin}&end={end}"
            "&transform=zscore_selected&smoother=trailing&width=12"
        )

    def varied(rng: random.Random) -> str:
        return (
            f"/timeseries?boundary={rng.choice(ids)}&site=KLOT&start={begin}&end={end}"
            f"&statistic={rng.choice(('mean', 'median'))}&transform=zscore_selected&smoother=trailing"
            f"&width={rng.randint(1, 200)}"
        )

    query = series(random.Random(0)).split("&", 1)[1]
    # One request per boundary first, so that the timed phase measures a server that has answered each
    # series before (the cache's steady state); those cold answers are reported as ``first_pass``.
    result = {
        "first_pass": asyncio.run(
            first_pass(base, [f"/timeseries?boundary={b}&{query}" for b in ids], concurrency)
        )
    }
    result["timeseries"] = asyncio.run(_drive(base, series, duration, concurrency))
    if health:
        # The transforms computed per request: a random statistic and smoothing width per request
        # (102 x 2 x 200 combinations), so the cached transformed values rarely answer.
        result["varied"] = asyncio.run(_drive(base, varied, duration, concurrency))
        result["health"] = asyncio.run(_drive(base, health_url, duration, concurrency))
    out.put(result)


def serve_and_load(workdir: Path, built: dict, args, env_extra: dict, health: bool) -> dict:
    """Start ``radar-assets api`` on the catalog, run the load phases from another process, stop it."""
    from api_load import _wait_ready, free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RADAR_ASSETS_HOME": str(workdir), **env_extra}
    cmd = [sys.executable, "-c", "from radar_assets.cli.api import api; api()", "--port", str(port),
           "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        _wait_ready(base, server)
        queue: mp.Queue = mp.get_context("spawn").Queue()
        loader = mp.get_context("spawn").Process(
            target=load_process,
            args=(base, built["ids"], args.days, args.duration, args.concurrency, health, queue),
        )
        loader.start()
        result = queue.get(timeout=4 * args.duration + 120)
        loader.join(30)
        return result
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boundaries", type=int, default=102)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="timeseries-load-"))
    try:
        built = build(workdir, args.boundaries, args.days)
        cached = serve_and_load(workdir, built, args, {}, health=True)
        uncached = serve_and_load(
            workdir, built, args, {"RADAR_ASSETS_API_TIMESERIES_CACHE_BYTES": "0"}, False
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    h, t, u = cached["health"], cached["timeseries"], uncached["timeseries"]
    f, v = cached["first_pass"], cached["varied"]
    line = {
        "rows": built["rows"],
        "points_per_request": SCANS_PER_DAY * args.days,
        "health_p50_ms": round(h["p50_ms"], 2),
        "health_p99_ms": round(h["p99_ms"], 2),
        "timeseries_p50_ms": round(t["p50_ms"], 2),
        "timeseries_p99_ms": round(t["p99_ms"], 2),
        "p99_ratio": round(t["p99_ms"] / h["p99_ms"], 2) if h["p99_ms"] else None,
        "timeseries_rps": round(t["rps"], 1),
        "first_pass_p50_ms": round(f["p50_ms"], 2),
        "first_pass_p99_ms": round(f["p99_ms"], 2),
        "varied_p50_ms": round(v["p50_ms"], 2),
        "varied_p99_ms": round(v["p99_ms"], 2),
        "varied_rps": round(v["rps"], 1),
        "uncached_p50_ms": round(u["p50_ms"], 2),
        "uncached_p99_ms": round(u["p99_ms"], 2),
        "uncached_rps": round(u["rps"], 1),
        "errors": h["errors"] + t["errors"] + u["errors"] + f["errors"] + v["errors"],
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "generate_s": built["generate_s"],
        "publish_s": built["publish_s"],
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    samples = h["error_samples"] + t["error_samples"] + u["error_samples"] + v["error_samples"]
    if samples:
        print("error samples: " + " | ".join(samples), file=sys.stderr)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
