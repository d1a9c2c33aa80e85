"""Gather what one boundary x day package is built from, out of the catalog.

- the boundary: its row in the boundaries registry (:mod:`radar_assets.lib.geo.boundaries`);
- the day's ``scans`` and ``sweeps`` rows of every site (one catalog partition per site x day);
- the boundary's ``timeseries`` rows of the day (table of ``timeseries_summaries``), read by table name and
  filtered on its ``boundary`` column, so this module depends on that table only through those two names.
  Catalog bookkeeping columns (:data:`TIMESERIES_INTERNAL`) are not published.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from radar_assets.lib.catalog import Catalog
from radar_assets.lib.packages.build import Boundary
from radar_assets.lib.partitions import site_day

TIMESERIES_TABLE = "timeseries"
#: Columns of the time-series table that only serve incremental recomputation.
TIMESERIES_INTERNAL = ("sweep_fingerprint", "boundary_hash", "partition")


class UnknownBoundaryError(LookupError):
    """The partition names a boundary the registry does not hold."""


@dataclass
class PackageInputs:
    """Rows one package is built from (see :func:`gather_inputs`)."""

    boundary: Boundary
    day: str
    sweeps: list[dict]
    scans: list[dict]
    timeseries: pa.Table | None
    sites: list[str]


def load_boundary(catalog: Catalog, boundary_id: str) -> Boundary:
    """The registered boundary ``boundary_id`` as a :class:`Boundary` (geometry in EPSG:4326)."""
    import shapely

    from radar_assets.lib.geo.boundaries import registered

    table = registered(catalog)
    rows = table.filter(pc.equal(table.column("id"), boundary_id)).to_pylist()
    if not rows:
        raise UnknownBoundaryError(
            f"boundary {boundary_id!r} is not registered (radar-assets boundaries add FILE)"
        )
    row = rows[0]
    source = {"title": f"boundary file {row['source_file']} (sha256 {row['source_sha256']})"}
    return Boundary(
        id=row["id"], name=row["name"] or row["id"], geometry=shapely.from_wkb(row["geometry"]), source=source
    )


def _boundary_bounds(boundary: Boundary) -> tuple[float, float, float, float]:
    return tuple(float(v) for v in boundary.geometry.bounds)  # type: ignore[return-value]


def gather_inputs(catalog: Catalog, boundary: Boundary, day: str, sites: list[str]) -> PackageInputs:
    """Read the day's scans, sweeps and the boundary's time series for every site in ``sites``.

    Sweeps whose image bounds do not overlap the boundary's bounds are dropped here already (they cannot
    cover it), so only the relevant value COGs are read later.
    """
    west, south, east, north = _boundary_bounds(boundary)
    sweeps: list[dict] = []
    scans: list[dict] = []
    series: list[pa.Table] = []
    used: list[str] = []
    for site in sorted(set(sites)):
        key = site_day(site, day)
        table = catalog.read_partition("sweeps", key)
        if table is None or table.num_rows == 0:
            continue
        rows = [
            r
            for r in table.to_pylist()
            if r["cog_key"]
            and not (r["east"] < west or r["west"] > east or r["north"] < south or r["south"] > north)
        ]
        if not rows:
            continue
        used.append(site)
        sweeps.extend(rows)
        scan_table = catalog.read_partition("scans", key)
        if scan_table is not None:
            scans.extend(scan_table.to_pylist())
        ts = catalog.read_partition(TIMESERIES_TABLE, key)
        if ts is not None and "boundary" in ts.schema.names:
            mine = ts.filter(pc.equal(ts.column("boundary"), boundary.id))
            series.append(mine.drop_columns([c for c in TIMESERIES_INTERNAL if c in mine.schema.names]))
    timeseries = None
    if series:
        try:
            timeseries = pa.concat_tables(series, promote_options="default")
        except pa.ArrowInvalid:  # partitions written by different schema versions: keep the newest shape
            timeseries = series[-1]
    return PackageInputs(boundary, day, sweeps, scans, timeseries, used)


def describe(inputs: PackageInputs) -> str:
    """One line for logs."""
    return json.dumps(
        {
            "boundary": inputs.boundary.id,
            "day": inputs.day,
            "sites": inputs.sites,
            "sweeps": len(inputs.sweeps),
            "timeseries_rows": 0 if inputs.timeseries is None else inputs.timeseries.num_rows,
        }
    )
