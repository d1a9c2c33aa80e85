"""Rendering of one site-day's scans into sweep images, bounds and value COGs, with one catalog row per image.

Invariants
----------
- Store keys derive from the scan id, moment and sweep index only, so a re-run overwrites nothing new.
- A scan whose images all exist with a catalog row is not decoded again (incremental).
- A scan that cannot be decoded is recorded in ``rejects`` (asset ``rendered_sweeps``); the others still land.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from radar_assets.lib.keys import sha256_hex
from radar_assets.lib.scans import REJECTS_SCHEMA, TS
from radar_assets.lib.store import ObjectStore, StoreError

if TYPE_CHECKING:
    from radar_assets.lib.readers.stream_cache import StreamCache

# Level 3 products rendered as imagery: reflectivity, hydrometeor class, precipitation.
RENDERED_LEVEL3 = frozenset({"N0Q", "N0B", "N0H", "HHC", "DAA", "DTA", "DPR", "N1P", "NTP"})
MAX_BOUNDS_KM = 500.0

SWEEPS_SCHEMA = pa.schema(
    [
        ("sweep_id", pa.string()),
        ("scan_id", pa.string()),
        ("site", pa.string()),
        ("level", pa.int8()),
        ("product", pa.string()),
        ("moment", pa.string()),
        ("units", pa.string()),
        ("sweep_index", pa.int16()),
        ("elevation", pa.float32()),
        ("sweep_time", TS),
        ("west", pa.float64()),
        ("south", pa.float64()),
        ("east", pa.float64()),
        ("north", pa.float64()),
        ("corners", pa.string()),
        ("vmin", pa.float32()),
        ("vmax", pa.float32()),
        ("png_key", pa.string()),
        ("json_key", pa.string()),
        ("cog_key", pa.string()),
        ("partition", pa.string()),
    ]
)


def sweep_id(scan_id: str, moment: str, index: int) -> str:
    return f"{scan_id}-{moment}-{index:02d}"


def sweep_keys(scan: dict, moment: str, index: int) -> tuple[str, str, str]:
    """(png, json, tif) store keys of one rendered sweep."""
    day = scan["volume_start"].strftime("%Y/%m/%d")
    base = f"sweeps/{scan['site']}/{day}/{scan['scan_id']}/{moment}-{index:02d}"
    return f"{base}.png", f"{base}.json", f"{base}.tif"


def wanted(scan: dict) -> bool:
    return scan["level"] == 2 or scan["product"] in RENDERED_LEVEL3


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0088 * 2 * math.asin(math.sqrt(a))


def bounds_extent_km(bounds: dict) -> float:
    """Largest distance from the radar to the middle of an edge of the image (its coverage radius)."""
    lat, lon = bounds["radar_lat"], bounds["radar_lon"]
    mid_lat, mid_lon = (bounds["south"] + bounds["north"]) / 2, (bounds["west"] + bounds["east"]) / 2
    edges = [
        (bounds["north"], mid_lon),
        (bounds["south"], mid_lon),
        (mid_lat, bounds["east"]),
        (mid_lat, bounds["west"]),
    ]
    return max(distance_km(lat, lon, a, b) for a, b in edges)


@dataclass
class RenderResult:
    sweeps: pa.Table
    rejects: pa.Table
    rendered_scans: int = 0
    reused_scans: int = 0
    images: int = 0
    thumbnail: bytes | None = None
    thumbnail_caption: str = ""
    location_from_site_table: list[str] = field(default_factory=list)
    max_extent_km: float = 0.0
    #: Level 2 volumes rendered from the stream ingest decompressed (not decompressed again).
    streams_reused: int = 0


def _decode(scan: dict, data: bytes, streams: StreamCache | None = None):
    """The decoded volume, and whether its decompressed stream came from ``streams``."""
    if scan["level"] == 2:
        from radar_assets.lib.readers.nexrad_level2 import read_level2

        # The stream ingest decompressed from these very bytes (keyed by their sha256), if it left it.
        stream = streams.take(sha256_hex(data)) if streams is not None else None
        return read_level2(stream if stream is not None else data, site_hint=scan["site"]), stream is not None
    from radar_assets.lib.readers.nexrad_level3 import read_level3

    return read_level3(data, site_hint=scan["site"]), False


def render_partition(
    scans: pa.Table,
    store: ObjectStore,
    partition: str,
    previous: pa.Table | None = None,
    size: int = 2048,
    moments: list[str] | None = None,
    now: Callable[[], datetime] | None = None,
    progress: Callable[[int, int], None] | None = None,
    streams: StreamCache | None = None,
) -> RenderResult:
    """Render every wanted scan of a partition that has no complete set of images yet.

    With ``streams``, a Level 2 volume whose decompressed stream ingest left there is not decompressed again
    (the images are identical either way)."""
    from radar_assets.lib.render.sweep import render_volume

    prev_by_scan: dict[str, list[dict]] = {}
    for row in previous.to_pylist() if previous is not None else []:
        prev_by_scan.setdefault(row["scan_id"], []).append(row)
    rows: list[dict] = []
    rejects: list[dict] = []
    result = RenderResult(sweeps=None, rejects=None)  # type: ignore[arg-type]
    todo = [s for s in scans.to_pylist() if wanted(s)]
    for done, scan in enumerate(todo, start=1):
        old = prev_by_scan.get(scan["scan_id"])
        if old and all(store.exists(r["png_key"]) and store.exists(r["cog_key"]) for r in old):
            rows.extend(old)
            result.reused_scans += 1
            continue
        try:
            volume, reused_stream = _decode(scan, store.get_bytes(scan["store_key"]), streams)
            rendered = render_volume(volume, moments, size)
        except (ValueError, KeyError) as exc:  # decode errors are ValueErrors naming the problem
            rejects.append(
                {
                    "source_key": scan["source_key"], "site": scan["site"], "level": scan["level"],
                    "product": scan["product"], "partition": partition, "asset": "rendered_sweeps",
                    "reason": f"{scan['store_key']}: {type(exc).__name__}: {exc}", "bytes": scan["bytes"],
                    "sha256": scan["sha256"], "rejected_at": (now or _utcnow)(),
                }
            )  # fmt: skip
            continue
        if getattr(volume, "location_from_site_table", False):
            result.location_from_site_table.append(scan["scan_id"])
        for r in rendered:
            png_key, json_key, cog_key = sweep_keys(scan, r.moment, r.sweep_index)
            b = {
                **r.bounds,
                "scan_id": scan["scan_id"],
                "sweep_id": sweep_id(scan["scan_id"], r.moment, r.sweep_index),
            }
            b["location_from_site_table"] = bool(getattr(volume, "location_from_site_table", False))
            store.put_bytes(png_key, r.png)
            store.put_bytes(cog_key, r.cog)
            store.put_bytes(json_key, json.dumps(b, indent=1).encode())
            data_range = b.get("data_range") or [None, None]
            rows.append(
                {
                    "sweep_id": b["sweep_id"], "scan_id": scan["scan_id"], "site": scan["site"],
                    "level": scan["level"], "product": scan["product"], "moment": r.moment, "units": b["units"],
                    "sweep_index": r.sweep_index, "elevation": b["elevation"],
                    "sweep_time": datetime.fromisoformat(b["time"].replace("Z", "+00:00")),
                    "west": b["west"], "south": b["south"], "east": b["east"], "north": b["north"],
                    "corners": json.dumps(b["coordinates"]), "vmin": data_range[0], "vmax": data_range[1],
                    "png_key": png_key, "json_key": json_key, "cog_key": cog_key, "partition": partition,
                }
            )  # fmt: skip
            result.images += 1
            result.max_extent_km = max(result.max_extent_km, bounds_extent_km(b))
        result.rendered_scans += 1
        result.streams_reused += reused_stream
        if progress:
            progress(done, len(todo))
    rows.sort(key=lambda r: (r["scan_id"], r["moment"], r["sweep_index"]))
    _latest_thumbnail(result, rows, store)
    result.sweeps = pa.Table.from_pylist(rows, schema=SWEEPS_SCHEMA)
    result.rejects = pa.Table.from_pylist(rejects, schema=REJECTS_SCHEMA)
    return result


def _latest_thumbnail(result: RenderResult, rows: list[dict], store: ObjectStore) -> None:
    """The partition's newest scan (reflectivity when it has some, lowest sweep) over state lines, with a legend."""
    from radar_assets.lib.render.thumbnail import map_thumbnail

    if not rows:
        return
    newest = max(rows, key=lambda r: (r["sweep_time"], r["scan_id"]))["scan_id"]
    of_scan = [r for r in rows if r["scan_id"] == newest]
    row = min(of_scan, key=lambda r: (r["moment"] != "REF", r["elevation"], r["sweep_index"], r["moment"]))
    try:
        png = store.get_bytes(row["png_key"])
    except (StoreError, OSError):  # a thumbnail is not worth failing the partition for
        return
    when = row["sweep_time"].strftime("%Y-%m-%d %H:%M:%SZ")
    caption = f"{row['site']} {when}  {row['moment']} {row['elevation']:.1f} deg  (newest scan of {row['partition']})"
    bounds = (row["west"], row["south"], row["east"], row["north"])
    result.thumbnail = map_thumbnail(png, bounds, row["moment"], caption)
    result.thumbnail_caption = (
        f"{newest} {row['moment']} sweep {row['sweep_index']} ({row['elevation']:.1f}°)"
    )


def _utcnow() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


def coverage_problems(scans: pa.Table, sweeps: pa.Table, rejected: set[str]) -> list[str]:
    """Scans with a sweep that got no image at all (Message 1 Doppler cuts carry VEL only, so any moment counts)."""
    by_scan: dict[str, set[int]] = {}
    for scan_id, index in zip(
        sweeps.column("scan_id").to_pylist(), sweeps.column("sweep_index").to_pylist(), strict=True
    ):
        by_scan.setdefault(scan_id, set()).add(index)
    problems = []
    for scan in scans.to_pylist():
        if not wanted(scan) or scan["source_key"] in rejected:
            continue
        expected = scan["sweep_count"] if scan["level"] == 2 else 1
        got = len(by_scan.get(scan["scan_id"], ()))
        if got != expected:
            problems.append(f"{scan['scan_id']}: {got} of {expected} sweeps rendered")
    return problems
