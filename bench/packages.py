"""Benchmark of boundary packages on a real KLOT volume and every Illinois county.

Renders REF (sweep 0) and VEL (sweep 1) of ``../shared/data/level2/KLOT/KLOT20210625_075154_V06`` at
``--size`` px (2048, as ``rendered_sweeps``) into a temporary LocalStore, then for every county:

1. clips each value COG with :func:`radar_assets.lib.packages.clip.clip_cog` (window read + polygon mask);
   baseline in the same run: read the whole raster and rasterise the polygon over the whole grid
   (``naive_clip_ms``), which is what a clip without a window costs;
2. builds the package (clip, encode, preview, descriptor), publishes it, and publishes it again with
   unchanged inputs (``rerun`` must write nothing: it only re-hashes what is stored).

Prints one JSON line::

    {"counties", "packaged", "clip_ms_p50", "naive_clip_ms_p50", "clip_speedup", "build_ms_p50",
     "publish_ms_p50", "rerun_ms_p50", "rerun_ratio", "frictionless_ms", "bytes_p50"}
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--limit", type=int, default=0, help="Counties to package (0: all)")
    args = parser.parse_args()

    from rasterio.features import geometry_mask
    from rasterio.io import MemoryFile

    from radar_assets.lib.catalog import Catalog
    from radar_assets.lib.packages import build_package, publish_package
    from radar_assets.lib.packages.clip import clip_cog, polygon_to_mercator
    from radar_assets.lib.packages.descriptor import validate_files
    from radar_assets.lib.store import LocalStore
    from radar_assets_tests.packages import support

    shared = ROOT.parent / "shared" / "data"
    volume = shared / "level2" / "KLOT" / "KLOT20210625_075154_V06"
    counties = support.illinois_counties(shared / "boundaries" / "derived" / "illinois_counties.geojson")
    support.SIZE = args.size
    with tempfile.TemporaryDirectory(prefix="bench-packages-") as tmp:
        store = LocalStore(Path(tmp) / "store")
        scan, rows = support.render_into_store(store, volume)
        catalog = Catalog(store, Path(tmp) / "snap")
        cogs = [store.get_bytes(r["cog_key"]) for r in rows]
        clip_ms, naive_ms, build_ms, publish_ms, rerun_ms, sizes = [], [], [], [], [], []
        fl_ms = 0.0
        chosen = list(counties.values())[: args.limit or None]
        for county in chosen:
            geom = polygon_to_mercator(county.geometry)
            t = time.perf_counter()
            clipped = [clip_cog(c, geom) for c in cogs]
            elapsed = (time.perf_counter() - t) * 1e3
            if all(c is None for c in clipped):
                continue
            clip_ms.append(elapsed)
            t = time.perf_counter()
            for c in cogs:  # baseline: whole raster, mask over the whole grid
                with MemoryFile(c) as mem, mem.open() as src:
                    data = src.read(1)
                    inside = geometry_mask([geom], data.shape, src.transform, invert=True)
                    data[~inside] = 0
            naive_ms.append((time.perf_counter() - t) * 1e3)
            t = time.perf_counter()
            built = build_package(store, county, "2021-06-25", rows, [scan])
            build_ms.append((time.perf_counter() - t) * 1e3)
            if built is None:
                continue
            t = time.perf_counter()
            publish_package(
                store, catalog, built, boundary=county.id, day="2021-06-25", lock_dir=Path(tmp) / "l"
            )
            publish_ms.append((time.perf_counter() - t) * 1e3)
            t = time.perf_counter()
            again = publish_package(
                store, catalog, built, boundary=county.id, day="2021-06-25", lock_dir=Path(tmp) / "l"
            )
            rerun_ms.append((time.perf_counter() - t) * 1e3)
            assert again.status == "unchanged" and not again.written
            sizes.append(built.total_bytes)
            if len(sizes) == 1:
                t = time.perf_counter()
                assert validate_files(built.datapackage, {f.path: f.data for f in built.files}).valid
                fl_ms = (time.perf_counter() - t) * 1e3
    p50 = statistics.median
    print(
        json.dumps(
            {
                "counties": len(chosen),
                "packaged": len(sizes),
                "size_px": args.size,
                "clip_ms_p50": round(p50(clip_ms), 2),
                "naive_clip_ms_p50": round(p50(naive_ms), 2),
                "clip_speedup": round(p50(naive_ms) / p50(clip_ms), 1),
                "build_ms_p50": round(p50(build_ms), 1),
                "publish_ms_p50": round(p50(publish_ms), 1),
                "rerun_ms_p50": round(p50(rerun_ms), 1),
                "rerun_ratio": round(p50(rerun_ms) / p50(publish_ms), 2),
                "frictionless_ms": round(fl_ms, 1),
                "bytes_p50": int(p50(sizes)),
            }
        )
    )


if __name__ == "__main__":
    main()
