"""Benchmark: render every reflectivity sweep of one Level 2 volume, ours vs the Py-ART/matplotlib way.

Usage: ``python bench/render.py VOLUME [--size 2048]``

Prints one JSON line:

* ``baseline_s``: Py-ART ``read_nexrad_archive`` + ``RadarDisplay.plot_ppi`` + transparent PNG
  (matplotlib Agg, the same pixel size as ours) for every sweep's reflectivity;
* ``ours_s``: decode (reflectivity only) + PNG + bounds JSON + COG for every sweep, in a fresh
  subprocess (cold caches, as for the first volume of a run);
* ``floor_s``: bzip2-decompressing every LDM record of the file, one after the other, nothing else;
* ``speedup`` = baseline / ours, ``floor_ratio`` = ours / floor;
* ``peak_rss_mb``: peak resident memory of the "ours" subprocess.

The polar lookups are cached on disk (``RADAR_ASSETS_RENDER_CACHE_DIR``, see
:func:`radar_assets.lib.render.grid.lookup_cache_dir`), so a repeated run measures a process whose
lookups are on disk, as for every Dagster run after a site's first; ``--cold-lookups`` gives the
subprocess an empty cache directory (the very first run for a site).
"""

from __future__ import annotations

import argparse
import bz2
import io
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYART_QUIET", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_ours(path: Path, size: int) -> dict:
    """Decode + render every REF sweep to PNG, JSON and COG; returns timing and sweep count."""
    # Imports are outside the timed region (the baseline's imports are too).
    from radar_assets.lib.readers.nexrad_level2 import read_level2
    from radar_assets.lib.render import render_volume
    from radar_assets.lib.render.grid import set_lookup_cache_dir
    from radar_assets.settings import load_settings

    set_lookup_cache_dir(load_settings().render.lookup_cache())
    start = time.perf_counter()
    volume = read_level2(path.read_bytes(), moments=["REF"], site_hint=path.name[:4])
    results = render_volume(volume, moments=["REF"], size=size)
    payloads = [(r.png, json.dumps(r.bounds).encode(), r.cog) for r in results]
    elapsed = time.perf_counter() - start
    total = sum(len(p) for triple in payloads for p in triple)
    return {"ours_s": elapsed, "sweeps": len(results), "bytes": total}


def run_floor(path: Path) -> float:
    """Serial bzip2 decompression of every LDM record (the irreducible cost of reading the file)."""
    data = path.read_bytes()
    start = time.perf_counter()
    pos = 24
    while pos + 4 <= len(data):
        (size,) = struct.unpack_from(">i", data, pos)
        size = abs(size)
        bz2.decompress(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return time.perf_counter() - start


def run_baseline(path: Path, size: int) -> tuple[float, int]:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyart

    warnings.filterwarnings("ignore")
    dpi = 100
    start = time.perf_counter()
    radar = pyart.io.read_nexrad_archive(str(path), include_fields=["reflectivity"])
    display = pyart.graph.RadarDisplay(radar)
    for sweep in range(radar.nsweeps):
        fig = plt.figure(figsize=(size / dpi, size / dpi), dpi=dpi)
        ax = fig.add_axes([0, 0, 1, 1])
        display.plot_ppi(
            "reflectivity",
            sweep=sweep,
            ax=ax,
            vmin=-20,
            vmax=60,
            cmap="NWSRef",
            colorbar_flag=False,
            title_flag=False,
            axislabels_flag=False,
        )
        ax.set_axis_off()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", transparent=True, dpi=dpi)
        plt.close(fig)
    return time.perf_counter() - start, radar.nsweeps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("volume", type=Path)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--cold-lookups", action="store_true", help="start with an empty lookup cache")
    parser.add_argument("--ours-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ours_only:
        out = run_ours(args.volume, args.size)
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(json.dumps(out))
        return
    # "Ours" runs first, in its own process, so its peak RSS is measured alone and cold.
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="radar-assets-lookups-") as empty:
        if args.cold_lookups:
            env["RADAR_ASSETS_RENDER_CACHE_DIR"] = empty
        proc = subprocess.run(
            [sys.executable, __file__, str(args.volume), "--size", str(args.size), "--ours-only"],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
    ours = json.loads(proc.stdout.strip().splitlines()[-1])
    floor_s = run_floor(args.volume)
    baseline_s, nsweeps = run_baseline(args.volume, args.size)
    print(
        json.dumps(
            {
                "volume": args.volume.name,
                "sweeps": ours["sweeps"],
                "baseline_sweeps": nsweeps,
                "size_px": args.size,
                "baseline_s": round(baseline_s, 3),
                "ours_s": round(ours["ours_s"], 3),
                "speedup": round(baseline_s / ours["ours_s"], 2),
                "floor_s": round(floor_s, 3),
                "floor_ratio": round(ours["ours_s"] / floor_s, 2),
                "peak_rss_mb": round(ours["peak_rss_mb"], 1),
                "lookups": "cold" if args.cold_lookups else "disk cache",
            }
        )
    )


if __name__ == "__main__":
    main()
