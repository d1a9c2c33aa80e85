"""Small but real catalogs for the API tests: Parquet partitions with the assets' schemas, published as a
DuckDB snapshot, and real PNG / bounds JSON / COG files in the store for some sweeps."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from radar_assets.lib.catalog import Catalog, local_catalog
from radar_assets.lib.feed.echoes import ECHO_SCANS_SCHEMA, ECHOES_SCHEMA
from radar_assets.lib.scans import SCANS_SCHEMA
from radar_assets.lib.sweeps import SWEEPS_SCHEMA

# The assets' own schemas, so the API is tested against exactly what the assets write.
SITES = ("KLOT", "KDMX", "KTLX")
L3_PRODUCTS = (("N0Q", 94), ("N0U", 99), ("NST", 58))
DAY0 = datetime(2021, 6, 25, tzinfo=UTC)
# The one sweep with real files in the store (PNG, bounds JSON, COG) and its footprint.
FILE_SWEEP = "KLOT-L2-VOL-20210625T000000Z-REF-00"
KLOT_LON, KLOT_LAT = -88.0847, 41.6044


def scan_id(site: str, level: int, product: str, t: datetime) -> str:
    return f"{site}-L{level}-{product}-{t.strftime('%Y%m%dT%H%M%SZ')}"


def scan_rows(volumes_per_site: int = 30, step_minutes: int = 10) -> list[dict]:
    """Level 2 volumes of every site at the same times (ties on volume_start), plus KLOT/KTLX Level 3."""
    rows = []
    for i in range(volumes_per_site):
        t = DAY0 + timedelta(minutes=step_minutes * i)
        day = t.strftime("%Y-%m-%d")
        for site in SITES:
            sid = scan_id(site, 2, "VOL", t)
            name = f"{site}{t.strftime('%Y%m%d_%H%M%S')}_V06"
            rows.append(
                {
                    "scan_id": sid,
                    "site": site,
                    "level": 2,
                    "product": "VOL",
                    "product_code": None,
                    "volume_start": t,
                    "vcp": 212 if i % 2 else 35,
                    "sweep_count": 3,
                    "elevations": [0.5, 0.9, 1.3],
                    "bytes": 1000 + i,
                    "sha256": f"{i:064x}",
                    "source_key": f"{t.strftime('%Y/%m/%d')}/{site}/{name}",
                    "store_key": f"raw/level2/{site}/{t.strftime('%Y/%m/%d')}/{name}",
                    "partition": f"{day}|{site}",
                    "ingested_at": t + timedelta(minutes=5),
                }
            )
        for site in ("KLOT", "KTLX"):
            for product, code in L3_PRODUCTS[: 2 if site == "KTLX" else 3]:
                t3 = t + timedelta(minutes=2)
                flat = f"{site[1:]}_{product}_{t3.strftime('%Y_%m_%d_%H_%M_%S')}"
                rows.append(
                    {
                        "scan_id": scan_id(site, 3, product, t3),
                        "site": site,
                        "level": 3,
                        "product": product,
                        "product_code": code,
                        "volume_start": t3,
                        "vcp": None,
                        "sweep_count": None,
                        "elevations": [0.5],
                        "bytes": 200 + i,
                        "sha256": f"{i + 7:064x}",
                        "source_key": flat,
                        "store_key": f"raw/level3/{site}/{t3.strftime('%Y/%m/%d')}/{flat}",
                        "partition": f"{t3.strftime('%Y-%m-%d')}|{site}",
                        "ingested_at": t3 + timedelta(minutes=5),
                    }
                )
    return rows


def _box(lon: float, lat: float, half_deg: float = 2.0) -> tuple[float, float, float, float]:
    return lon - half_deg, lat - half_deg * 0.75, lon + half_deg, lat + half_deg * 0.75


def sweep_rows(scans: list[dict], per_scan: int = 2) -> list[dict]:
    """REF and VEL sweeps for the first Level 2 volumes; only FILE_SWEEP has objects in the store."""
    rows = []
    for scan in [s for s in scans if s["level"] == 2][:12]:
        for moment, units, vmin, vmax in (("REF", "dBZ", -30.0, 75.0), ("VEL", "m/s", -30.0, 30.0)):
            for k in range(per_scan):
                sid = f"{scan['scan_id']}-{moment}-{k:02d}"
                w, s, e, n = _box(KLOT_LON, KLOT_LAT) if scan["site"] == "KLOT" else _box(-95.0 + k, 38.0)
                base = f"sweeps/{scan['site']}/{sid}"
                rows.append(
                    {
                        "sweep_id": sid,
                        "scan_id": scan["scan_id"],
                        "site": scan["site"],
                        "level": 2,
                        "product": "VOL",
                        "moment": moment,
                        "units": units,
                        "sweep_index": k,
                        "elevation": [0.5, 0.9, 1.3][k],
                        "sweep_time": scan["volume_start"] + timedelta(seconds=20 * k),
                        "west": w,
                        "south": s,
                        "east": e,
                        "north": n,
                        "corners": json.dumps([[w, n], [e, n], [e, s], [w, s]]),
                        "vmin": vmin,
                        "vmax": vmax,
                        # Half the sweeps have no COG (not rendered as GeoTIFF): no tif/tiles links.
                        "png_key": base + ".png",
                        "json_key": base + ".json",
                        "cog_key": base + ".tif" if k == 0 else None,
                        "partition": scan["partition"],
                    }
                )
    return rows


def echo_rows(records: int = 24, gates: int = 5) -> tuple[list[dict], list[dict]]:
    """Live-feed echoes (several gates per record, some ties on record_time) and per-scan averages."""
    echoes, scans = [], []
    for station, offset in (("sas", 0), ("pgr", 0), ("rkn", 7)):
        for r in range(records):
            t = DAY0 + timedelta(seconds=3 * r + offset)
            for g in range(gates):
                echoes.append(
                    {
                        "record_id": f"{station}-{t.strftime('%Y%m%dT%H%M%S')}-{r:04d}",
                        "station": station,
                        "record_time": t,
                        "beam": r % 16,
                        "scan_flag": 1 if r % 8 == 0 else 0,
                        "range_gate": 10 + g,
                        "velocity": float(g * 10 - r) if g != 3 else float("nan"),
                        "power": 12.5 + g,
                        "spectral_width": 50.0,
                        "ground_scatter": g == 0,
                        "elevation": None,
                        "frequency": 10500,
                        "noise": 2.0,
                        "partition": t.strftime("%Y-%m-%d-%H"),
                    }
                )
        for s in range(records // 8):
            t0 = DAY0 + timedelta(seconds=24 * s + offset)
            scans.append(
                {
                    "station": station,
                    "scan_start": t0,
                    "scan_end": t0 + timedelta(seconds=24),
                    "records": 8,
                    "echoes": 8 * gates,
                    "mean_velocity": 1.5 * s,
                    "mean_power": 14.0,
                    "mean_width": 50.0,
                    "partition": t0.strftime("%Y-%m-%d-%H"),
                }
            )
    return echoes, scans


def table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def write_by_partition(catalog: Catalog, name: str, rows: list[dict], schema: pa.Schema) -> None:
    parts: dict[str, list[dict]] = {}
    for row in rows:
        parts.setdefault(row["partition"], []).append(row)
    for partition, part_rows in parts.items():
        catalog.write_partition(name, partition, table(part_rows, schema))


def cog_bytes(bounds: tuple[float, float, float, float], size: int = 256) -> bytes:
    """A float32 COG on an EPSG:3857 grid over ``bounds`` (lon/lat): a ring pattern, NaN outside a disc."""
    from pyproj import Transformer
    from rasterio.io import MemoryFile
    from rasterio.transform import from_bounds

    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    w, s = to_merc.transform(bounds[0], bounds[1])
    e, n = to_merc.transform(bounds[2], bounds[3])
    yy, xx = np.mgrid[0:size, 0:size].astype("float32")
    r = np.hypot(xx - size / 2, yy - size / 2)
    data = (75 * np.cos(r / 9.0)).astype("float32")
    data[r > size / 2 - 2] = np.nan
    with MemoryFile() as mem:
        with mem.open(
            driver="COG",
            width=size,
            height=size,
            count=1,
            dtype="float32",
            crs="EPSG:3857",
            transform=from_bounds(w, s, e, n, size, size),
            nodata=float("nan"),
        ) as dst:
            dst.write(data, 1)
        return mem.read()


def png_bytes(size: int = 64) -> bytes:
    from PIL import Image

    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    for i in range(size):
        img.putpixel((i, i), (255, 0, 0, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def build_catalog(root: Path, *, volumes_per_site: int = 30, echoes: bool = True) -> Catalog:
    """Write every table's partitions, the files of FILE_SWEEP, and publish. Returns the catalog."""
    catalog = local_catalog(root)
    scans = scan_rows(volumes_per_site)
    write_by_partition(catalog, "scans", scans, SCANS_SCHEMA)
    sweeps = sweep_rows(scans)
    write_by_partition(catalog, "sweeps", sweeps, SWEEPS_SCHEMA)
    if echoes:
        echo, echo_scan = echo_rows()
        write_by_partition(catalog, "echoes", echo, ECHOES_SCHEMA)
        write_by_partition(catalog, "echo_scans", echo_scan, ECHO_SCANS_SCHEMA)
    row = next(r for r in sweeps if r["sweep_id"] == FILE_SWEEP)
    catalog.store.put_bytes(row["png_key"], png_bytes())
    bounds = (row["west"], row["south"], row["east"], row["north"])
    catalog.store.put_bytes(
        row["json_key"], json.dumps({"bounds": bounds, "corners": json.loads(row["corners"])}).encode()
    )
    catalog.store.put_bytes(row["cog_key"], cog_bytes(bounds))
    catalog.publish()
    return catalog


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y
