"""The boundaries registry: polygons read from GeoJSON (RFC 7946), Shapefile or GeoPackage (OGC 12-128r18),
repaired or rejected per feature, in EPSG:4326, stored in catalog table ``boundaries``.

Reading goes through GDAL/OGR (pyogrio), so any vector format it opens works. Per feature:

1. the id is the ``id_field`` value (with an optional prefix), normalised to ``[A-Za-z0-9_.:-]`` so it can
   serve as a Dagster partition key and a URL path segment; a missing or duplicate id rejects the feature;
2. the geometry must exist and have finite coordinates; an invalid polygon is repaired with shapely's
   ``make_valid`` (OGC validity: self-intersections, bow ties, wrong ring orientation) keeping only its
   polygonal parts; what has no polygonal area left is rejected;
3. it is reprojected to EPSG:4326 (a file without a CRS is taken as EPSG:4326, as RFC 7946 says, but
   coordinates outside longitude/latitude ranges reject the feature).

A rejected feature never stops the others; its message names the file, the feature index and its id.

Catalog layout
--------------
One catalog partition per source file registration: the partition name is the id prefix plus the file's
stem (``IL-illinois_counties``), so adding the same file again replaces its rows (idempotent) and removing
a file's boundaries touches one partition. Ids are unique across partitions: registering an id that another
partition already holds is refused.

Invariants
----------
- Every row's geometry is a valid, non-empty Polygon or MultiPolygon in EPSG:4326, stored as WKB.
- ``west <= east`` and ``south <= north`` are the geometry's bounds.
- ``source_sha256`` is the sha256 of the source file's bytes (of the ``.shp`` for a Shapefile).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from radar_assets.lib.catalog import Catalog

TABLE = "boundaries"
TS = pa.timestamp("us", tz="UTC")

BOUNDARIES_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("name", pa.string()),
        ("geometry", pa.binary()),  # WKB, EPSG:4326
        ("geometry_type", pa.string()),
        ("west", pa.float64()),
        ("south", pa.float64()),
        ("east", pa.float64()),
        ("north", pa.float64()),
        ("area_km2", pa.float64()),  # geodesic area on the WGS84 ellipsoid
        ("repaired", pa.bool_()),
        ("properties", pa.string()),  # the feature's attributes, JSON
        ("source_file", pa.string()),  # file name (never a machine path)
        ("source_sha256", pa.string()),
        ("source_feature", pa.int64()),  # feature index in the source file
        ("partition", pa.string()),
        ("registered_at", TS),
    ]
)

_ID_BAD = re.compile(r"[^A-Za-z0-9_.:-]+")
_PARTITION_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


class BoundaryFileError(ValueError):
    """The file as a whole cannot be registered (unreadable, unknown id field, id conflicts)."""


@dataclass(frozen=True)
class FeatureReject:
    """A feature that could not be registered."""

    source_file: str
    index: int
    id: str | None
    reason: str

    @property
    def message(self) -> str:
        ident = f"id {self.id!r}" if self.id is not None else "no id"
        return f"{self.source_file} feature {self.index} ({ident}): {self.reason}"


@dataclass
class BoundaryLoad:
    """Accepted rows (``BOUNDARIES_SCHEMA``) and rejected features of one source file."""

    rows: pa.Table
    rejects: list[FeatureReject] = field(default_factory=list)
    source_file: str = ""
    source_sha256: str = ""
    partition: str = ""

    @property
    def ids(self) -> list[str]:
        return self.rows.column("id").to_pylist()


def normalise_id(value: object, prefix: str = "") -> str | None:
    """The registry id of an attribute value: prefix + value, runs of other characters as ``-``.

    Integral floats (``17031.0``, how some drivers return integer fields) lose their ``.0``. Returns None
    for a missing or empty value.
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _ID_BAD.sub("-", f"{prefix}{value}".strip()).strip("-")
    if not text or text == _ID_BAD.sub("-", prefix.strip()).strip("-"):
        return None
    return text


def partition_for(source_file: str, prefix: str = "") -> str:
    """Catalog partition of a source file's registration: prefix + file stem, file-name safe."""
    stem = Path(source_file).name
    for suffix in (".geojson", ".json", ".shp", ".gpkg", ".zip"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return _PARTITION_BAD.sub("-", f"{prefix}{stem}").strip("-") or "boundaries"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_boundaries(
    path: str | Path,
    id_field: str,
    name_field: str | None = None,
    prefix: str = "",
    layer: str | int | None = None,
    now: datetime | None = None,
) -> BoundaryLoad:
    """Read, repair, reproject and validate every feature of a boundary file.

    Parameters
    ----------
    path : path
        GeoJSON, Shapefile (``.shp`` with its sidecar files) or GeoPackage.
    id_field : str
        Attribute holding each feature's id.
    name_field : str, optional
        Attribute holding its display name (default: the id).
    prefix : str
        Prepended to every id (``IL-`` + ``17031``), to keep ids of several files apart.
    layer : str or int, optional
        Layer of a multi-layer source (GeoPackage); default the first.

    Raises
    ------
    BoundaryFileError
        The file cannot be opened, or ``id_field`` / ``name_field`` is not one of its attributes.
    """
    import pyogrio

    path = Path(path)
    source_file = path.name
    if not path.is_file():
        raise BoundaryFileError(f"{source_file}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # GDAL's notes on unclosed rings etc.
            meta, _fids, wkbs, field_data = pyogrio.raw.read(path, layer=layer)
    except Exception as exc:  # GDAL raises its own error types for unreadable files
        raise BoundaryFileError(f"{source_file}: cannot read as a vector file: {exc}") from exc
    columns = [str(c) for c in meta["fields"]]
    for label, name in (("id field", id_field), ("name field", name_field)):
        if name is not None and name not in columns:
            raise BoundaryFileError(
                f"{source_file}: {label} {name!r} not found (fields: {', '.join(columns)})"
            )
    transformer = _to_wgs84(meta.get("crs"))
    sha = file_sha256(path)
    partition = partition_for(source_file, prefix)
    registered_at = now or datetime.now(UTC)
    records = [dict(zip(columns, values, strict=True)) for values in zip(*field_data, strict=True)]
    if not columns:
        records = [{} for _ in wkbs]

    rows: list[dict] = []
    rejects: list[FeatureReject] = []
    seen: set[str] = set()
    for index, (wkb, attrs) in enumerate(zip(wkbs, records, strict=True)):
        raw_id = attrs.get(id_field)
        ident = normalise_id(raw_id, prefix)

        def reject(reason: str, ident=ident, index=index) -> None:
            rejects.append(FeatureReject(source_file, index, ident, reason))

        if ident is None:
            reject(f"empty id field {id_field!r}")
            continue
        if ident in seen:
            reject("duplicate id in this file")
            continue
        try:
            fixed, repaired = clean_geometry(_parse_wkb(wkb), transformer)
        except ValueError as exc:
            reject(str(exc))
            continue
        seen.add(ident)
        name = attrs.get(name_field) if name_field else None
        west, south, east, north = fixed.bounds
        rows.append(
            {
                "id": ident,
                "name": str(name) if name is not None and name == name else ident,
                "geometry": shapely.to_wkb(fixed),
                "geometry_type": fixed.geom_type,
                "west": west,
                "south": south,
                "east": east,
                "north": north,
                "area_km2": geodesic_area_km2(fixed),
                "repaired": repaired,
                "properties": json.dumps(_jsonable(attrs), sort_keys=True),
                "source_file": source_file,
                "source_sha256": sha,
                "source_feature": index,
                "partition": partition,
                "registered_at": registered_at,
            }
        )
    table = pa.Table.from_pylist(rows, schema=BOUNDARIES_SCHEMA)
    return BoundaryLoad(table, rejects, source_file, sha, partition)


def _parse_wkb(wkb: bytes | None) -> shapely.Geometry | None:
    if wkb is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN coordinates: checked by the caller
            return shapely.from_wkb(wkb)
    except shapely.errors.GEOSException as exc:
        raise ValueError(f"unreadable geometry: {exc}") from exc


def _to_wgs84(crs):
    """A coordinate transform to EPSG:4326 lon/lat, or None when the source already is (or has no CRS)."""
    if crs is None:
        return None
    from pyproj import CRS, Transformer

    source = CRS.from_user_input(crs)
    target = CRS.from_epsg(4326)
    if source.equals(target, ignore_axis_order=True) and source.is_geographic:
        return None
    return Transformer.from_crs(source, target, always_xy=True)


def clean_geometry(geom, transformer=None) -> tuple[shapely.Geometry, bool]:
    """A valid polygonal EPSG:4326 geometry from a feature's geometry, and whether it was repaired.

    Raises
    ------
    ValueError
        With the reason: no geometry, empty, non-finite coordinates, not polygonal, outside
        longitude/latitude ranges, or no polygonal area left after repair.
    """
    if geom is None:
        raise ValueError("no geometry")
    if geom.is_empty:
        raise ValueError("empty geometry")
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        raise ValueError("non-finite (NaN or infinite) coordinates")
    if geom.geom_type not in ("Polygon", "MultiPolygon", "GeometryCollection"):
        raise ValueError(f"{geom.geom_type} is not a polygon")
    if transformer is not None:
        geom = shapely.transform(geom, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
        coords = shapely.get_coordinates(geom)
        if not np.isfinite(coords).all():
            raise ValueError("coordinates cannot be reprojected to EPSG:4326")
    if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
        raise ValueError("coordinates outside longitude/latitude ranges (is the CRS right?)")
    repaired = not geom.is_valid
    if repaired:
        geom = shapely.make_valid(geom)
    polygonal = polygonal_part(geom)
    if polygonal is None:
        raise ValueError("no polygonal area" + (" after repair" if repaired else ""))
    return polygonal, repaired


def polygonal_part(geom: shapely.Geometry) -> shapely.Geometry | None:
    """The Polygon/MultiPolygon parts of a geometry (collections flattened), None when there are none."""
    parts = [p for p in _flatten(geom) if p.geom_type == "Polygon" and not p.is_empty]
    parts = [p for p in parts if p.area > 0]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    merged = shapely.union_all(parts)
    return merged if merged.geom_type in ("Polygon", "MultiPolygon") else polygonal_part(merged)


def _flatten(geom: shapely.Geometry) -> list[shapely.Geometry]:
    out = []
    for part in shapely.get_parts(geom):
        if part.geom_type in ("GeometryCollection", "MultiPolygon", "MultiLineString", "MultiPoint"):
            out.extend(_flatten(part))
        else:
            out.append(part)
    return out


def geodesic_area_km2(geom: shapely.Geometry) -> float:
    from pyproj import Geod

    area, _ = Geod(ellps="WGS84").geometry_area_perimeter(geom)
    return abs(area) / 1e6


def _jsonable(attrs: dict) -> dict:
    out = {}
    for key, value in attrs.items():
        if isinstance(value, (np.generic,)):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        elif isinstance(value, (datetime,)) or hasattr(value, "isoformat"):
            value = value.isoformat()
        elif not isinstance(value, (str, int, float, bool, type(None))):
            value = str(value)
        out[str(key)] = value
    return out


# --------------------------------------------------------------------------------------------------
# Registry on the catalog
# --------------------------------------------------------------------------------------------------


def _partition_name(key: str, catalog: Catalog) -> str:
    return key[len(catalog.prefix) + len(TABLE) + 2 : -len(".parquet")]


def _read_all(catalog: Catalog) -> dict[str, pa.Table]:
    """Partition file name -> its rows, for every partition of the ``boundaries`` table."""
    out = {}
    for key in sorted(catalog.tables().get(TABLE, [])):
        out[_partition_name(key, catalog)] = pq.read_table(io.BytesIO(catalog.store.get_bytes(key)))
    return out


def registered(catalog: Catalog) -> pa.Table:
    """Every registered boundary (``BOUNDARIES_SCHEMA``), sorted by id."""
    tables = [t.cast(BOUNDARIES_SCHEMA) for t in _read_all(catalog).values() if t.num_rows]
    if not tables:
        return BOUNDARIES_SCHEMA.empty_table()
    table = pa.concat_tables(tables)
    return table.take(pc.sort_indices(table, [("id", "ascending")]))


def register(catalog: Catalog, load: BoundaryLoad) -> str:
    """Write a file's accepted boundaries as its catalog partition (replacing a previous registration of
    the same file); returns the store key. Nothing is written when no feature was accepted or when the
    rows equal what is stored.

    Raises
    ------
    BoundaryFileError
        When an id is already registered from another partition.
    """
    from radar_assets.lib.catalog import partition_file

    existing = _read_all(catalog)
    mine = partition_file(load.partition)
    taken = {}
    for name, table in existing.items():
        if name != mine:
            for ident in table.column("id").to_pylist():
                taken[ident] = name
    clash = sorted(set(load.ids) & set(taken))
    if clash:
        listed = ", ".join(f"{i} (in {taken[i]})" for i in clash[:10])
        raise BoundaryFileError(
            f"{load.source_file}: {len(clash)} id(s) already registered from another file: {listed}; "
            "use a different --prefix or remove them first"
        )
    if load.rows.num_rows == 0:
        raise BoundaryFileError(f"{load.source_file}: no feature could be registered")
    previous = existing.get(mine)
    if previous is not None and _same_rows(previous, load.rows):
        return catalog.partition_key(TABLE, load.partition)
    return catalog.write_partition(TABLE, load.partition, load.rows)


def _same_rows(a: pa.Table, b: pa.Table) -> bool:
    # Everything but the registration time: re-adding an unchanged file rewrites nothing.
    cols = [c for c in BOUNDARIES_SCHEMA.names if c != "registered_at"]
    return a.num_rows == b.num_rows and a.select(cols).cast(b.select(cols).schema).equals(b.select(cols))


def remove(catalog: Catalog, ids: list[str]) -> list[str]:
    """Remove boundaries by id; returns the ids removed (unknown ids are ignored).

    A partition left empty is deleted; otherwise it is rewritten without the removed rows.
    """
    wanted = set(ids)
    removed: list[str] = []
    for name, table in _read_all(catalog).items():
        present = [i for i in table.column("id").to_pylist() if i in wanted]
        if not present:
            continue
        removed.extend(present)
        keep = pc.invert(pc.is_in(table.column("id"), pa.array(sorted(wanted))))
        remaining = table.filter(keep)
        key = f"{catalog.prefix}/{TABLE}/{name}.parquet"
        if remaining.num_rows == 0:
            catalog.store.delete(key)
        else:
            catalog.store.put_bytes(key, _parquet_bytes(remaining))
    return sorted(removed)


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def geometries(table: pa.Table) -> dict[str, shapely.Geometry]:
    """id -> EPSG:4326 geometry of registry rows."""
    ids = table.column("id").to_pylist()
    geoms = shapely.from_wkb(table.column("geometry").to_pylist())
    return dict(zip(ids, geoms, strict=True))


def to_geojson_feature(row: dict, include_geometry: bool = True) -> dict:
    """A GeoJSON Feature of one registry row (id, name, bbox, area, source, properties)."""
    geometry = None
    if include_geometry:
        geometry = json.loads(shapely.to_geojson(shapely.from_wkb(row["geometry"])))
    return {
        "type": "Feature",
        "id": row["id"],
        "bbox": [row["west"], row["south"], row["east"], row["north"]],
        "geometry": geometry,
        "properties": {
            "id": row["id"],
            "name": row["name"],
            "area_km2": row["area_km2"],
            "repaired": row["repaired"],
            "source_file": row["source_file"],
            "source_sha256": row["source_sha256"],
            "source_feature": row["source_feature"],
            "attributes": json.loads(row["properties"]) if row.get("properties") else {},
        },
    }


# --------------------------------------------------------------------------------------------------
# Boundaries shipped with the package (the demo's counties)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShippedBoundaries:
    """A boundary file inside the package: where it is and how to register it."""

    path: Path
    id_field: str
    name_field: str
    prefix: str
    sites: tuple[str, ...]  # the radar sites whose coverage it is for


def shipped_boundaries() -> list[ShippedBoundaries]:
    """The county files shipped in ``radar_assets/data/boundaries`` (public-domain Census polygons)."""
    from importlib.resources import files

    root = Path(str(files("radar_assets") / "data" / "boundaries"))
    return [
        ShippedBoundaries(root / "illinois_counties.geojson", "FIPS", "NAME", "IL-", ("KLOT",)),
        ShippedBoundaries(root / "oklahoma_counties.geojson", "FIPS", "NAME", "OK-", ("KTLX", "KOUN")),
    ]


def reject_rows(load: BoundaryLoad, asset: str, partition: str, now: datetime | None = None) -> pa.Table:
    """The rejected features of a load as rows of the catalog table ``rejects`` (``REJECTS_SCHEMA``)."""
    from radar_assets.lib.scans import REJECTS_SCHEMA

    when = now or datetime.now(UTC)
    rows = [
        {
            "source_key": f"{r.source_file}#{r.index}",
            "site": None,
            "level": None,
            "product": None,
            "partition": partition,
            "asset": asset,
            "reason": r.message,
            "bytes": None,
            "sha256": load.source_sha256,
            "rejected_at": when,
        }
        for r in load.rejects
    ]
    return pa.Table.from_pylist(rows, schema=REJECTS_SCHEMA)


def add_file(
    catalog: Catalog,
    path: str | Path,
    id_field: str,
    name_field: str | None = None,
    prefix: str = "",
    asset: str = "boundaries",
) -> BoundaryLoad:
    """Read a boundary file, register its accepted features and record its rejected ones in ``rejects``
    (partition ``<asset>|<registration partition>``, replaced on every add). Returns the load."""
    from radar_assets.lib.partitions import asset_scoped

    load = read_boundaries(path, id_field, name_field, prefix)
    register(catalog, load)
    scoped = asset_scoped(asset, load.partition)
    previous = catalog.read_partition("rejects", scoped)
    if load.rejects or previous is not None:
        catalog.write_partition("rejects", scoped, reject_rows(load, asset, scoped))
    return load
