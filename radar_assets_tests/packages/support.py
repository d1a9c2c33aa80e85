"""Shared helpers of the package tests: real KLOT volumes rendered into a store, Illinois counties.

Also runnable as a publisher process (``python -m radar_assets_tests.packages.support publish ...``) so the
tests can kill a writer with SIGKILL and race two writers against each other for real.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from datetime import datetime
from pathlib import Path

from radar_assets.lib.catalog import Catalog
from radar_assets.lib.keys import scan_id as make_scan_id
from radar_assets.lib.packages import Boundary, publish_package
from radar_assets.lib.store import LocalStore
from radar_assets.lib.sweeps import sweep_id, sweep_keys

SIZE = 1024  # pixels on the long side: the fixtures stay fast; the mask logic does not depend on it


def render_into_store(store: LocalStore, volume_path: Path, sweeps: tuple[int, ...] = (0, 1)):
    """Decode a real Level 2 volume, render REF/VEL of the given sweeps and store their value COGs.

    Returns ``(scan_row, sweep_rows)`` shaped like the ``scans`` and ``sweeps`` catalog rows.
    """
    import hashlib

    from radar_assets.lib.readers.nexrad_level2 import read_level2
    from radar_assets.lib.render.sweep import render_volume

    data = volume_path.read_bytes()
    volume = read_level2(data, ["REF", "VEL"], sweeps=list(sweeps), site_hint=volume_path.name[:4])
    start = volume.sweeps[0].start_time
    name = volume_path.name
    scan = {
        "scan_id": make_scan_id(volume.site, 2, "VOL", start),
        "site": volume.site,
        "level": 2,
        "volume_start": start,
        "source_key": f"{start:%Y/%m/%d}/{volume.site}/{name}",
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    rows = []
    for r in render_volume(volume, size=SIZE, workers=2):
        _png, json_key, cog_key = sweep_keys(scan, r.moment, r.sweep_index)
        store.put_bytes(cog_key, r.cog)
        store.put_bytes(json_key, json.dumps(r.bounds).encode())
        b = r.bounds
        rows.append(
            {
                "sweep_id": sweep_id(scan["scan_id"], r.moment, r.sweep_index),
                "scan_id": scan["scan_id"], "site": volume.site, "level": 2, "product": "VOL",
                "moment": r.moment, "units": b["units"], "sweep_index": r.sweep_index,
                "elevation": b["elevation"],
                "sweep_time": datetime.fromisoformat(b["time"].replace("Z", "+00:00")),
                "west": b["west"], "south": b["south"], "east": b["east"], "north": b["north"],
                "cog_key": cog_key, "json_key": json_key,
            }
        )  # fmt: skip
    return scan, rows


def illinois_counties(path: Path) -> dict[str, Boundary]:
    """Every county of the Illinois file as a :class:`Boundary` keyed by FIPS."""
    import json

    from shapely.geometry import shape

    features = json.loads(path.read_text())["features"]
    out = {}
    for f in features:
        p = f["properties"]
        out[p["FIPS"]] = Boundary(
            id=f"IL-{p['FIPS']}",
            name=f"{p['NAME']} County, IL",
            geometry=shape(f["geometry"]),
            source={
                "title": "US Census county boundaries (public domain)",
                "path": "illinois_counties.geojson",
            },
        )
    return out


def _publish(args) -> int:
    built = pickle.loads(Path(args.built).read_bytes())
    store = LocalStore(Path(args.store))
    catalog = Catalog(store, args.snapshots)
    state = {"n": 0}

    def on_write(key: str) -> None:
        state["n"] += 1
        if args.hang_after and state["n"] >= args.hang_after:
            Path(args.marker).write_text(key)
            time.sleep(3600)  # the test kills us here, mid-publication

    if args.start_at:
        time.sleep(max(0.0, args.start_at - time.time()))
    result = publish_package(
        store, catalog, built, boundary=built.boundary, day=built.day, run_id=args.run_id,
        lock_dir=args.lock_dir or None, on_write=on_write,
    )  # fmt: skip
    print(result.status, result.version, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("publish")
    p.add_argument("--built", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--snapshots", required=True)
    p.add_argument("--lock-dir", default="")
    p.add_argument("--run-id", default="")
    p.add_argument("--hang-after", type=int, default=0)
    p.add_argument("--marker", default="")
    p.add_argument("--start-at", type=float, default=0.0)
    args = parser.parse_args(argv)
    return _publish(args)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Skip interpreter teardown: native thread pools (Arrow, GDAL) occasionally abort in their static
    # destructors ("terminate called without an active exception") after the work is done.
    os._exit(code)
