"""Assemble one boundary x day package in memory: clipped rasters, time-series CSV, preview, descriptor.

Choice of rasters: **one COG per product per scan**, not a time-stacked COG per product, because

* every file then derives from exactly one archive object, so its ``sources`` and input checksum are exact;
* each keeps its own sweep grid: grids differ between sites and can change with the volume coverage
  pattern, so a time stack would have to resample (losing the "every cell is a source cell" invariant);
* it stays a plain single-band COG any GDAL reader understands, with no band-to-time convention to learn.

"Product" means, for Level 2, one moment at its lowest sweep carrying it (``REF`` from the surveillance cut,
``VEL`` from the Doppler cut, as Level 3 ``N0Q``/``N0U``) and, for Level 3, the product itself. Higher
sweeps are left out by default (``all_sweeps=True`` keeps them): they multiply the package size by the
number of elevations for little use at boundary scale.

Coverage: a sweep covers a boundary when the polygon meets the radar's coverage disc (the same disc as
``timeseries_summaries``) and at least one cell centre of its grid lies inside the polygon.
A boundary that no sweep of the day covers (outside every site's coverage, or a day without scans) yields
**no package** (:func:`build_package` returns ``None``), never an error or an empty package.

Version: the hex sha256 (first 20 digits) of the package format, the partition, the boundary, every input
checksum and every payload file's checksum. Unchanged inputs give the same version and the same bytes; a
changed input, polygon, or code that changes an output gives a new version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from radar_assets.lib.packages.clip import ClippedRaster, clip_cog, encode_clipped, polygon_to_mercator
from radar_assets.lib.packages.descriptor import (
    ARCHIVE_SOURCES,
    PackageFile,
    build_descriptor,
    serialise,
    sha256_hex,
)
from radar_assets.lib.packages.preview import preview_png
from radar_assets.lib.packages.tabular import table_schema, timeseries_csv
from radar_assets.lib.partitions import boundary_day
from radar_assets.lib.store import ObjectStore

#: Bump when the layout or encoding of packages changes (part of every version hash).
PACKAGE_FORMAT = 1
PACKAGES_PREFIX = "packages"
_BOUNDARY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
REFLECTIVITY_PRODUCTS = frozenset({"REF", "N0Q", "N0B", "N0R"})


@dataclass(frozen=True)
class Boundary:
    """A boundary polygon as the packager needs it.

    Attributes
    ----------
    id : str
        Registry id (``[A-Za-z0-9][A-Za-z0-9_.:-]*``, as the registry normalises them; part of store keys).
    name : str
        Display name.
    geometry : shapely geometry
        Polygon or MultiPolygon in EPSG:4326 (lon, lat).
    source : dict, optional
        Data Package ``sources`` entry of the polygon (``title``, ``path``), e.g. the Census file.
    """

    id: str
    name: str
    geometry: object
    source: dict | None = None


def check_boundary_id(boundary: str) -> str:
    if not _BOUNDARY_ID.match(boundary or ""):
        raise ValueError(
            f"boundary id {boundary!r} is not usable in a package key ([A-Za-z0-9][A-Za-z0-9_.:-]*)"
        )
    return boundary


def check_day(day: str) -> str:
    try:
        if date.fromisoformat(day).isoformat() != day:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"day {day!r} is not a YYYY-MM-DD date") from None
    return day


def package_prefix(boundary: str, day: str) -> str:
    """Store prefix holding every version of one partition's package (ends with ``/``)."""
    return f"{PACKAGES_PREFIX}/{check_boundary_id(boundary)}/{check_day(day)}/"


@dataclass
class BuiltPackage:
    """A package assembled in memory, ready to publish.

    Attributes
    ----------
    boundary, day, version : str
        Partition and content version.
    files : list of PackageFile
        Payload files in descriptor order (rasters by time, then CSV, then preview).
    descriptor : dict
        The ``datapackage.json`` content.
    datapackage : bytes
        Its serialised bytes (written last).
    inputs : list of dict
        ``{"key", "sha256"}`` of every input object.
    clipped : list of ClippedRaster
        The clipped rasters (for tests and metadata).
    """

    boundary: str
    boundary_name: str
    day: str
    version: str
    files: list[PackageFile]
    descriptor: dict
    datapackage: bytes
    inputs: list[dict] = field(default_factory=list)
    clipped: list[ClippedRaster] = field(default_factory=list, repr=False)

    @property
    def prefix(self) -> str:
        return f"{package_prefix(self.boundary, self.day)}{self.version}/"

    @property
    def total_bytes(self) -> int:
        return sum(len(f.data) for f in self.files) + len(self.datapackage)

    @property
    def preview(self) -> bytes | None:
        return next((f.data for f in self.files if f.name == "preview"), None)


def _rows(table: pa.Table | Iterable[dict] | None) -> list[dict]:
    if table is None:
        return []
    if isinstance(table, pa.Table):
        return table.to_pylist()
    return list(table)


def select_sweeps(sweeps: list[dict], all_sweeps: bool = False) -> list[dict]:
    """The sweeps packaged: per scan and moment the lowest sweep index (or every sweep), sorted by time."""
    if all_sweeps:
        chosen = list(sweeps)
    else:
        lowest: dict[tuple[str, str], dict] = {}
        for row in sweeps:
            k = (row["scan_id"], row["moment"])
            if k not in lowest or row["sweep_index"] < lowest[k]["sweep_index"]:
                lowest[k] = row
        chosen = list(lowest.values())
    return sorted(chosen, key=lambda r: (r["sweep_time"], r["site"], r["sweep_id"]))


def _overlaps(row: dict, bounds: tuple[float, float, float, float]) -> bool:
    west, south, east, north = bounds
    return not (row["east"] < west or row["west"] > east or row["north"] < south or row["south"] > north)


class _CoverageDiscs:
    """Whether a sweep's coverage disc (the radar's range, inscribed in its grid) meets a polygon.

    The radar location comes from the sweep's bounds JSON (``json_key``), read once per site; rows without
    one fall back to the grid test alone. Same disc as the time series (``coverage_disc``), so a boundary
    gets a package exactly when it gets time-series rows.
    """

    def __init__(self, store: ObjectStore):
        self.store = store
        self.location: dict[str, tuple[float, float] | None] = {}
        self.hits: dict[tuple, bool] = {}

    def covers(self, row: dict, geometry) -> bool:
        site = row.get("site")
        if site not in self.location:
            self.location[site] = self._locate(row)
        where = self.location[site]
        if where is None:
            return True
        key = (site, round(float(row["north"]), 6))
        if key not in self.hits:
            from radar_assets.lib.timeseries.summaries import coverage_disc

            self.hits[key] = bool(coverage_disc(where[0], where[1], float(row["north"])).intersects(geometry))
        return self.hits[key]

    def _locate(self, row: dict) -> tuple[float, float] | None:
        key = row.get("json_key")
        if not key or not self.store.exists(key):
            return None
        try:
            bounds = json.loads(self.store.get_bytes(key))
            return float(bounds["radar_lat"]), float(bounds["radar_lon"])
        except (ValueError, KeyError, TypeError):
            return None


def _archive_source(scan: dict | None, source_urls: dict[int, str]) -> dict:
    if scan is None:
        return {"title": "archive object (scan not in the scans table)"}
    base = source_urls.get(int(scan["level"]))
    key = scan["source_key"]
    return {
        "title": f"NEXRAD Level {scan['level']} archive object {key}",
        "path": f"{base.rstrip('/')}/{key}" if base else key,
    }


def build_package(
    store: ObjectStore,
    boundary: Boundary,
    day: str,
    sweeps: pa.Table | Iterable[dict],
    scans: pa.Table | Iterable[dict] | None = None,
    timeseries: pa.Table | None = None,
    *,
    code_version: str = "",
    run_id: str = "",
    source_urls: dict[int, str] | None = None,
    all_sweeps: bool = False,
    preview_size: int = 512,
) -> BuiltPackage | None:
    """Build the package of ``boundary`` on ``day`` from the day's sweep rows (any sites).

    Parameters
    ----------
    store : ObjectStore
        Platform store holding the sweeps' value COGs (``cog_key``).
    boundary : Boundary
        Polygon (EPSG:4326) and id.
    day : str
        ``YYYY-MM-DD``.
    sweeps : pyarrow.Table or iterable of dict
        Rows of the ``sweeps`` catalog table (``SWEEPS_SCHEMA``) for the day, any sites.
    scans : pyarrow.Table or iterable of dict, optional
        Rows of the ``scans`` table (``scan_id``, ``level``, ``source_key``, ``sha256``) naming the archive
        objects; used for ``sources`` and input checksums.
    timeseries : pyarrow.Table, optional
        The boundary's time-series rows for the day (any schema; written as CSV in its column order).
    code_version, run_id : str
        Recorded in the provenance block (not part of the version).
    source_urls : dict, optional
        Level (2, 3) -> archive base URL (``s3://unidata-nexrad-level2``) prefixed to source keys.
    all_sweeps : bool
        Package every sweep instead of the lowest per moment.
    preview_size : int
        Long side of the preview PNG.

    Returns
    -------
    BuiltPackage or None
        ``None`` when no sweep covers the boundary.
    """
    check_boundary_id(boundary.id)
    check_day(day)
    source_urls = source_urls or {}
    scans_by_id = {s["scan_id"]: s for s in _rows(scans)}
    geom = polygon_to_mercator(boundary.geometry)
    bounds = tuple(float(v) for v in boundary.geometry.bounds)

    files: list[PackageFile] = []
    inputs: list[dict] = []
    clipped_all: list[ClippedRaster] = []
    reflectivity: list[ClippedRaster] = []
    discs = _CoverageDiscs(store)
    for row in select_sweeps([r for r in _rows(sweeps) if _overlaps(r, bounds)], all_sweeps):
        if not discs.covers(row, boundary.geometry):
            continue
        cog = store.get_bytes(row["cog_key"])
        cog_sha = sha256_hex(cog)
        clipped = clip_cog(cog, geom)
        if clipped is None:
            continue
        scan = scans_by_id.get(row["scan_id"])
        tags = {"boundary": boundary.id, "source_cog": row["cog_key"], "source_cog_sha256": cog_sha}
        data = encode_clipped(clipped, tags)
        if scan is not None:
            inputs.append({"key": scan["source_key"], "sha256": scan["sha256"], "role": "archive object"})
        inputs.append({"key": row["cog_key"], "sha256": cog_sha, "role": "value COG"})
        files.append(
            PackageFile(
                name=row["sweep_id"].lower(),
                path=f"rasters/{row['sweep_id']}.tif",
                data=data,
                format="tif",
                mediatype="image/tiff; application=geotiff; profile=cloud-optimized",
                title=(
                    f"{row['site']} {row['moment']} sweep {row['sweep_index']} ({row['elevation']:.1f} deg) "
                    f"at {row['sweep_time'].strftime('%Y-%m-%dT%H:%M:%SZ')}, clipped to {boundary.name}"
                ),
                sources=(_archive_source(scan, source_urls),),
            )
        )
        clipped_all.append(clipped)
        if row["moment"] in REFLECTIVITY_PRODUCTS:
            reflectivity.append(clipped)
    if not files:
        return None

    levels = sorted({int(s["level"]) for s in scans_by_id.values()} or {2})
    archive_sources = tuple(ARCHIVE_SOURCES[lv] for lv in levels if lv in ARCHIVE_SOURCES)
    if timeseries is not None:
        csv_bytes = timeseries_csv(timeseries)
        files.append(
            PackageFile(
                name="timeseries",
                path="timeseries.csv",
                data=csv_bytes,
                format="csv",
                mediatype="text/csv",
                title=f"Zonal statistics per scan and product inside {boundary.name} on {day}",
                sources=archive_sources,
                schema=table_schema(timeseries.schema),
            )
        )
        inputs.append({"key": "timeseries_summaries", "sha256": sha256_hex(csv_bytes), "role": "time series"})
    files.append(
        PackageFile(
            name="preview",
            path="preview.png",
            data=preview_png(reflectivity, geom, preview_size),
            format="png",
            mediatype="image/png",
            title=f"Maximum reflectivity inside {boundary.name} on {day}, with the boundary outline",
            sources=archive_sources,
        )
    )
    geometry_sha = sha256_hex(boundary.geometry.wkb)
    inputs.append(
        {"key": f"boundary:{boundary.id}", "sha256": geometry_sha, "role": "boundary polygon (WKB)"}
    )

    version_basis = {
        "format": PACKAGE_FORMAT,
        "boundary": boundary.id,
        "name": boundary.name,
        "day": day,
        "inputs": inputs,
        "files": [[f.path, f.sha256] for f in files],
    }
    version = sha256_hex(json.dumps(version_basis, sort_keys=True).encode())[:20]
    provenance = {
        "package_format": PACKAGE_FORMAT,
        "package_version": version,
        "code_version": code_version,
        "dagster_run_id": run_id,
        "partition": {"boundary": boundary.id, "day": day, "key": boundary_day(boundary.id, day)},
        "boundary": {
            "id": boundary.id,
            "name": boundary.name,
            "crs": "EPSG:4326",
            "wkb_sha256": geometry_sha,
        },
        "clip": "cells whose centre lies inside the polygon keep their value; all others are nodata",
        "inputs": inputs,
    }
    sources = [*archive_sources, *([boundary.source] if boundary.source else [])]
    descriptor = build_descriptor(
        name=re.sub(r"[^a-z0-9._-]", "-", f"radar-{boundary.id}-{day}".lower()),
        title=f"Weather radar over {boundary.name} on {day}",
        description=(
            f"NEXRAD radar products of {day} clipped to {boundary.name} ({boundary.id}) with a polygon mask "
            "(cells outside the boundary are nodata), the boundary's zonal time series and a preview."
        ),
        version=version,
        files=files,
        sources=sources,
        provenance=provenance,
        keywords=("weather radar", "NEXRAD", boundary.id),
    )
    return BuiltPackage(
        boundary=boundary.id,
        boundary_name=boundary.name,
        day=day,
        version=version,
        files=files,
        descriptor=descriptor,
        datapackage=serialise(descriptor),
        inputs=inputs,
        clipped=clipped_all,
    )
