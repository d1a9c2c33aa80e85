"""Per-scan zonal summaries of one site-day's rendered sweeps over the registered boundaries (catalog
table ``timeseries``), and the time-series plot shown with them.

What is summarised
------------------
- Level 2: the lowest sweep's reflectivity of every volume (moment ``REF``, smallest sweep index), product
  ``REF``;
- Level 3: the precipitation products in :data:`SUMMARISED_LEVEL3`, product = the product code.

Each summarised sweep's COG is read once; the statistics of all boundaries come from one gather over the
cached exact coverage weights (:mod:`radar_assets.lib.geo.zonal`). Only boundaries that intersect the
radar's coverage disc get rows: a boundary outside every site's coverage yields no rows (not zeros), while a
covered boundary without echo gets a row with ``count`` 0 and missing statistics.

Invariants
----------
- Incremental and idempotent: a previous row is reused unchanged when its sweep fingerprint (COG key and
  size, bounds, time) and its boundary's geometry hash are unchanged, so a re-run reads no COG and returns
  rows equal to the stored ones. Rows of removed boundaries disappear.
- Rows are sorted by (boundary, product, time); statistics are float64, missing as null (never NaN).
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import shapely

from radar_assets.lib.geo.zonal import (
    DBZ_THRESHOLD,
    STAT_NAMES,
    SweepRaster,
    WeightCache,
    ZonalIndex,
    read_cog,
)
from radar_assets.lib.render.grid import AEQD_RADIUS, aeqd_to_lonlat
from radar_assets.lib.store import ObjectStore

TABLE = "timeseries"
TS = pa.timestamp("us", tz="UTC")
#: Level 3 precipitation products summarised where present.
SUMMARISED_LEVEL3 = ("DAA", "DTA", "DPR", "N1P", "NTP")
#: Bump when the statistics change, so that every previous row is recomputed.
SUMMARY_VERSION = 1

TIMESERIES_SCHEMA = pa.schema(
    [
        ("boundary", pa.string()),
        ("site", pa.string()),
        ("scan_id", pa.string()),
        ("sweep_id", pa.string()),
        ("product", pa.string()),
        ("level", pa.int8()),
        ("time", TS),
        ("units", pa.string()),
        ("elevation", pa.float32()),
        ("count", pa.float64()),  # sum of covered fractions of valid cells (exactextract's count)
        ("cells", pa.int64()),  # valid cells touched
        ("coverage_fraction", pa.float64()),  # count / the boundary's area in cells
        ("mean", pa.float64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("p50", pa.float64()),
        ("p90", pa.float64()),
        ("frac_ge_20dbz", pa.float64()),  # reflectivity products only
        ("sweep_fingerprint", pa.string()),
        ("boundary_hash", pa.string()),
        ("partition", pa.string()),
    ]
)


@dataclass(frozen=True)
class Boundary:
    """A registered boundary: id, EPSG:4326 geometry (WKB) and the hash of that WKB."""

    id: str
    wkb: bytes
    bbox: tuple[float, float, float, float]

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.wkb).hexdigest()[:32]

    @property
    def geometry(self) -> shapely.Geometry:
        return shapely.from_wkb(self.wkb)


def boundaries_from_table(table: pa.Table) -> list[Boundary]:
    """:class:`Boundary` objects of registry rows (``BOUNDARIES_SCHEMA``)."""
    rows = table.select(["id", "geometry", "west", "south", "east", "north"]).to_pylist()
    return [Boundary(r["id"], r["geometry"], (r["west"], r["south"], r["east"], r["north"])) for r in rows]


@dataclass
class SummaryResult:
    rows: pa.Table
    sweeps_summarised: int = 0
    sweeps_reused: int = 0
    boundaries_covered: list[str] = field(default_factory=list)
    rejects: list[str] = field(default_factory=list)


def summarised_sweeps(sweeps: pa.Table) -> list[dict]:
    """The sweeps rows to summarise: the lowest REF sweep of each Level 2 scan, and Level 3 precipitation
    products; each with its ``summary_product``."""
    lowest: dict[str, dict] = {}
    level3 = []
    for row in sweeps.to_pylist():
        if row["level"] == 2 and row["moment"] == "REF":
            old = lowest.get(row["scan_id"])
            if old is None or row["sweep_index"] < old["sweep_index"]:
                lowest[row["scan_id"]] = row
        elif row["level"] == 3 and row["product"] in SUMMARISED_LEVEL3:
            level3.append({**row, "summary_product": row["product"]})
    out = [{**r, "summary_product": "REF"} for r in lowest.values()] + level3
    return sorted(out, key=lambda r: (r["sweep_time"], r["sweep_id"]))


def sweep_fingerprint(row: dict, cog_size: int) -> str:
    parts = (
        SUMMARY_VERSION,
        row["cog_key"],
        cog_size,
        row["sweep_time"].isoformat(),
        *(float(row[k]).hex() for k in ("west", "south", "east", "north")),
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def coverage_disc(radar_lat: float, radar_lon: float, north: float, points: int = 256) -> shapely.Polygon:
    """The radar's coverage disc in EPSG:4326: the sweep grid's north edge is the disc's northern point
    (the grid is the bounding box of the azimuthal-equidistant disc, see ``grid_for_range``)."""
    radius = AEQD_RADIUS * math.radians(north - radar_lat)
    az = np.radians(np.linspace(0.0, 360.0, points, endpoint=False))
    lons, lats = aeqd_to_lonlat(radius * np.sin(az), radius * np.cos(az), radar_lat, radar_lon)
    lons = (lons - radar_lon + 180.0) % 360.0 - 180.0 + radar_lon
    return shapely.Polygon(np.column_stack([lons, lats]))


def _radar_location(row: dict, store: ObjectStore) -> tuple[float, float]:
    import json

    bounds = json.loads(store.get_bytes(row["json_key"]))
    return float(bounds["radar_lat"]), float(bounds["radar_lon"])


def covered_boundaries(disc: shapely.Polygon, boundaries: list[Boundary]) -> list[Boundary]:
    """The boundaries whose polygon intersects a coverage disc (bounding boxes first, then exactly)."""
    w, s, e, n = disc.bounds
    near = [b for b in boundaries if b.bbox[0] <= e and b.bbox[2] >= w and b.bbox[1] <= n and b.bbox[3] >= s]
    if not near:
        return []
    shapely.prepare(disc)
    hits = shapely.intersects(disc, shapely.from_wkb([b.wkb for b in near]))
    return [b for b, hit in zip(near, hits, strict=True) if hit]


def _clean(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def summarise_partition(
    sweeps: pa.Table,
    store: ObjectStore,
    boundaries: list[Boundary],
    partition: str,
    previous: pa.Table | None = None,
    cache: WeightCache | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SummaryResult:
    """Rows of ``timeseries`` for one site-day partition.

    Parameters
    ----------
    sweeps : pyarrow.Table
        The partition's ``sweeps`` rows (``SWEEPS_SCHEMA``).
    store : ObjectStore
        Where the COGs and bounds JSON are.
    boundaries : list of Boundary
        The registered boundaries.
    partition : str
        The site-day partition key written into each row.
    previous : pyarrow.Table, optional
        The partition's stored rows, reused where unchanged.
    cache : WeightCache, optional
        Coverage weights cache (default: a fresh in-memory one).
    """
    cache = cache or WeightCache()
    reusable: dict[tuple[str, str, str], dict] = {}
    for row in previous.to_pylist() if previous is not None and previous.num_rows else []:
        reusable[(row["sweep_fingerprint"], row["boundary"], row["boundary_hash"])] = row
    result = SummaryResult(rows=None)  # type: ignore[arg-type]
    rows: list[dict] = []
    covered_ids: set[str] = set()
    discs: dict[tuple, list[Boundary]] = {}
    indexes: dict[tuple, tuple[ZonalIndex, list[Boundary]]] = {}
    todo = summarised_sweeps(sweeps)
    for done, sweep in enumerate(todo, start=1):
        try:
            fingerprint = sweep_fingerprint(sweep, store.size(sweep["cog_key"]))
            disc_key = (sweep["json_key"].rsplit("/", 1)[0], sweep["north"], sweep["west"], sweep["east"])
            candidates = discs.get(disc_key)
            if candidates is None:
                lat, lon = _radar_location(sweep, store)
                candidates = covered_boundaries(coverage_disc(lat, lon, sweep["north"]), boundaries)
                discs[disc_key] = candidates
            if not candidates:
                continue
            old = [reusable.get((fingerprint, b.id, b.hash)) for b in candidates]
            if all(r is not None for r in old):
                rows.extend(r for r in old)
                covered_ids.update(r["boundary"] for r in old)
                result.sweeps_reused += 1
                continue
            raster = read_cog(store.get_bytes(sweep["cog_key"]))
            index_key = (raster.grid, tuple(b.hash for b in candidates))
            if index_key not in indexes:
                weights = [cache.get(raster.grid, b.wkb) for b in candidates]
                kept = [i for i, w in enumerate(weights) if w.size]
                indexes[index_key] = (
                    ZonalIndex(raster.grid, [weights[i] for i in kept]),
                    [candidates[i] for i in kept],
                )
            index, on_grid = indexes[index_key]
            rows.extend(_rows_for(sweep, raster, index, on_grid, fingerprint, partition))
            covered_ids.update(b.id for b in on_grid)
            result.sweeps_summarised += 1
        except (OSError, ValueError, KeyError) as exc:
            result.rejects.append(f"{sweep['sweep_id']}: {type(exc).__name__}: {exc}")
        if progress:
            progress(done, len(todo))
    rows.sort(key=lambda r: (r["boundary"], r["product"], r["time"], r["sweep_id"]))
    result.rows = pa.Table.from_pylist(rows, schema=TIMESERIES_SCHEMA)
    result.boundaries_covered = sorted(covered_ids)
    return result


def _rows_for(
    sweep: dict,
    raster: SweepRaster,
    index: ZonalIndex,
    boundaries: list[Boundary],
    fingerprint: str,
    partition: str,
) -> list[dict]:
    reflectivity = sweep["summary_product"] in ("REF", "N0Q", "N0B")
    stats = raster.stats(index, DBZ_THRESHOLD)
    out = []
    for i, boundary in enumerate(boundaries):
        row = {
            "boundary": boundary.id,
            "site": sweep["site"],
            "scan_id": sweep["scan_id"],
            "sweep_id": sweep["sweep_id"],
            "product": sweep["summary_product"],
            "level": sweep["level"],
            "time": sweep["sweep_time"],
            "units": sweep["units"],
            "elevation": sweep["elevation"],
            "sweep_fingerprint": fingerprint,
            "boundary_hash": boundary.hash,
            "partition": partition,
        }
        for name in STAT_NAMES:
            value = stats[name][i]
            row[name] = int(value) if name == "cells" else _clean(float(value))
        if not reflectivity:
            row["frac_ge_20dbz"] = None
        out.append(row)
    return out


# --------------------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------------------


def top_boundaries(rows: pa.Table, k: int = 5, product: str = "REF") -> list[str]:
    """The ``k`` boundaries with most signal: the largest summed echo coverage (``coverage_fraction``)."""
    totals: dict[str, float] = {}
    for b, p, c in zip(
        rows.column("boundary").to_pylist(),
        rows.column("product").to_pylist(),
        rows.column("coverage_fraction").to_pylist(),
        strict=True,
    ):
        if p == product and c:
            totals[b] = totals.get(b, 0.0) + c
    return [b for b, total in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:k] if total > 0]


def plot_series(
    rows: pa.Table, boundaries: list[str], product: str = "REF", statistic: str = "mean", title: str = ""
) -> bytes:
    """PNG (matplotlib Agg) of one statistic over time, one line per boundary; gaps stay gaps."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    table = rows.to_pylist()
    units = ""
    for boundary in boundaries:
        series = sorted(
            (r for r in table if r["boundary"] == boundary and r["product"] == product),
            key=lambda r: r["time"],
        )
        if not series:
            continue
        units = series[0]["units"] or units
        values = [np.nan if r[statistic] is None else r[statistic] for r in series]
        ax.plot([r["time"] for r in series], values, marker=".", linewidth=1, label=boundary)
    ax.set_ylabel(f"{statistic} {product}" + (f" ({units})" if units else ""))
    ax.set_title(title or f"{statistic} {product} per scan", fontsize=10)
    ax.grid(alpha=0.3)
    if boundaries:
        ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# Ad-hoc extraction (the API's POST /timeseries/extract): same weights, nothing written
# --------------------------------------------------------------------------------------------------


def extract_geometry(
    geometry_4326: shapely.Geometry,
    sweeps: list[dict],
    read_bytes: Callable[[str], bytes],
    cache: WeightCache,
    max_cells: int | None = None,
) -> list[dict]:
    """Statistics of one EPSG:4326 geometry over summarised sweeps rows, computed from their COGs.

    ``sweeps`` are rows as :func:`summarised_sweeps` returns them (``summary_product`` set); ``read_bytes``
    reads a store key. The coverage weights come from ``cache`` (the same exact weights the asset uses);
    :class:`radar_assets.lib.geo.zonal.CellLimitError` is raised before any weight is computed when the
    geometry's bounding box spans more than ``max_cells`` cells of a sweep's grid. Returns one dict per sweep whose grid the
    geometry touches, in the order of ``sweeps``, statistics as floats or None.
    """
    from radar_assets.lib.geo.zonal import CellLimitError, to_mercator, window_cells

    wkb = shapely.to_wkb(geometry_4326)
    projected = to_mercator(geometry_4326)
    out = []
    indexes: dict = {}
    for sweep in sweeps:
        raster = read_cog(read_bytes(sweep["cog_key"]))
        if raster.grid not in indexes:
            cells = window_cells(raster.grid, projected)
            if max_cells is not None and cells > max_cells:
                raise CellLimitError(
                    f"the geometry spans {cells} cells of the {sweep['site']} grid, "
                    f"more than the limit of {max_cells}"
                )
            weights = cache.get(raster.grid, wkb)
            indexes[raster.grid] = ZonalIndex(raster.grid, [weights]) if weights.size else None
        index = indexes[raster.grid]
        if index is None:
            continue
        stats = raster.stats(index, DBZ_THRESHOLD)
        row = {
            "site": sweep["site"],
            "scan_id": sweep["scan_id"],
            "sweep_id": sweep["sweep_id"],
            "product": sweep["summary_product"],
            "time": sweep["sweep_time"],
            "units": sweep["units"],
        }
        for name in STAT_NAMES:
            value = float(stats[name][0])
            row[name] = int(value) if name == "cells" else _clean(value)
        if sweep["summary_product"] not in ("REF", "N0Q", "N0B"):
            row["frac_ge_20dbz"] = None
        out.append(row)
    return out
