"""Benchmark: synthetic NEXRAD Level 2 generation, one site-day (VCP 212, ~320 volumes).

Prints one JSON line: ``site_day_volumes``, ``seconds`` (wall time for the whole day with ``workers``
processes, bytes kept in memory -- no store; the one-off import of the site table is ``startup_s``), ``volumes_per_s``, ``target_s`` (60) and ``ratio_to_target``;
plus the mean compressed volume size and, as a baseline measured in the same run, the time Py-ART takes to
read one of the generated volumes (``pyart_read_one_s``) and the time to generate that one volume alone
(``one_volume_s``). ``cpu_seconds`` (parent + workers) and ``projected_idle_seconds`` (CPU time / workers)
say what the day costs independently of other load on a shared machine (``load_avg_1m``).

Usage: ``python bench/synth.py [--site KLOT] [--day 2024-05-01] [--seed 0] [--workers N] [--hours 24]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--site", default="KLOT")
    ap.add_argument("--day", default="2024-05-01")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vcp", type=int, default=212)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--clear-air-echo", action="store_true", help="add boundary-layer returns (slower)")
    args = ap.parse_args()

    import resource

    t_import = time.perf_counter()
    from radar_assets.lib.synth import generate_many, plan, to_epoch_ms

    t0 = datetime.fromisoformat(args.day).replace(tzinfo=UTC)
    # planning loads the site table (which imports Py-ART): a one-off start-up cost, reported apart
    jobs = plan(
        [args.site],
        to_epoch_ms(t0),
        to_epoch_ms(t0 + timedelta(hours=args.hours)),
        args.vcp,
        args.seed,
        args.clear_air_echo,
    )
    startup_s = time.perf_counter() - t_import

    start = time.perf_counter()
    cpu0 = time.process_time()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sizes = []
    sample = None
    for i, (_key, data) in enumerate(generate_many(jobs, workers=args.workers)):
        sizes.append(len(data))
        if i == len(jobs) // 2:
            sample = data
    seconds = time.perf_counter() - start
    parent_cpu = time.process_time() - cpu0
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    cpu_total = parent_cpu + worker_cpu
    load = os.getloadavg()[0]

    # baselines in the same run: one volume alone (warm caches), and Py-ART reading it
    from radar_assets.lib.synth import generate_volume

    mid = jobs[len(jobs) // 2]
    generate_volume(mid.site_id, mid.start_ms, mid.vcp, mid.seed, mid.number)
    t = time.perf_counter()
    generate_volume(mid.site_id, mid.start_ms, mid.vcp, mid.seed, mid.number)
    one_volume_s = time.perf_counter() - t
    pyart_s = None
    try:
        warnings.filterwarnings("ignore")
        import pyart

        with tempfile.NamedTemporaryFile(suffix="_V06") as fh:
            fh.write(sample or b"")
            fh.flush()
            t = time.perf_counter()
            pyart.io.read_nexrad_archive(fh.name)
            pyart_s = time.perf_counter() - t
    except ImportError:  # pragma: no cover - pyart is a dependency
        pass

    target = 60.0
    out = {
        "bench": "synth",
        "site": args.site,
        "vcp": args.vcp,
        "clear_air_echo": args.clear_air_echo,
        "hours": args.hours,
        "workers": args.workers,
        "site_day_volumes": len(jobs),
        "seconds": round(seconds, 2),
        "volumes_per_s": round(len(jobs) / seconds, 2) if seconds else None,
        "seconds_per_volume_core": round(seconds * args.workers / max(len(jobs), 1), 3),
        "target_s": target,
        "ratio_to_target": round(seconds / target * (24.0 / args.hours), 3),
        "mean_volume_mb": round(sum(sizes) / max(len(sizes), 1) / 1e6, 3),
        "one_volume_s": round(one_volume_s, 3),
        "pyart_read_one_s": round(pyart_s, 3) if pyart_s is not None else None,
        "cpu_seconds": round(cpu_total, 1),
        "cpu_seconds_per_volume": round(cpu_total / max(len(jobs), 1), 3),
        # what the day takes when the workers have their cores to themselves (shared machines are busy)
        "projected_idle_seconds": round(cpu_total / max(1, min(args.workers, os.cpu_count() or 1)), 1),
        "startup_s": round(startup_s, 2),
        "load_avg_1m": round(load, 2),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
