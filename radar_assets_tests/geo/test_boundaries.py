"""The boundaries registry: real county files in three formats, per-feature repair and rejection, catalog."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import shapely

from radar_assets.lib.catalog import local_catalog
from radar_assets.lib.geo import boundaries as reg
from radar_assets_tests.conftest import shared_path

SQUARE = [[[-88.0, 41.0], [-87.9, 41.0], [-87.9, 41.1], [-88.0, 41.1], [-88.0, 41.0]]]


def _feature(ident, geometry, name=None):
    return {"type": "Feature", "properties": {"ID": ident, "NAME": name or str(ident)}, "geometry": geometry}


@pytest.fixture()
def broken_file(tmp_path):
    """A GeoJSON file whose features are good, repairable, or broken in one way each."""
    features = [
        _feature("good", {"type": "Polygon", "coordinates": SQUARE}),
        _feature(
            "bowtie",
            {
                "type": "Polygon",
                "coordinates": [[[-88, 41], [-87.9, 41.1], [-87.9, 41], [-88, 41.1], [-88, 41]]],
            },
        ),
        _feature("line", {"type": "LineString", "coordinates": [[-88, 41], [-87.9, 41.1]]}),
        _feature(
            "nan",
            {"type": "Polygon", "coordinates": [[[-88, 41], [float("nan"), 41], [-87.9, 41.1], [-88, 41]]]},
        ),
        _feature("open-ring", {"type": "Polygon", "coordinates": [[[-88, 41], [-87.9, 41.1]]]}),
        _feature("nothing", None),
        _feature(None, {"type": "Polygon", "coordinates": SQUARE}, name="no id"),
        _feature("good", {"type": "Polygon", "coordinates": SQUARE}, name="duplicate"),
        _feature(
            "flat", {"type": "Polygon", "coordinates": [[[-88, 41], [-87.9, 41], [-87.8, 41], [-88, 41]]]}
        ),
        _feature("far", {"type": "Polygon", "coordinates": [[[500, 41], [501, 41], [501, 42], [500, 41]]]}),
    ]
    path = tmp_path / "broken.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_broken_features_are_rejected_by_name_and_the_others_register(broken_file, tmp_path):
    load = reg.read_boundaries(broken_file, "ID", "NAME", prefix="T-")
    assert load.ids == ["T-good", "T-bowtie"]
    repaired = dict(zip(load.ids, load.rows.column("repaired").to_pylist(), strict=True))
    assert repaired == {"T-good": False, "T-bowtie": True}
    bowtie = shapely.from_wkb(load.rows.column("geometry")[1].as_py())
    assert bowtie.is_valid and bowtie.geom_type == "MultiPolygon"  # two triangles kept
    messages = {r.index: r.message for r in load.rejects}
    assert set(messages) == {2, 3, 4, 5, 6, 7, 8, 9}
    assert messages[2] == "broken.geojson feature 2 (id 'T-line'): LineString is not a polygon"
    assert "feature 3 (id 'T-nan')" in messages[3] and "NaN" in messages[3]
    assert "feature 4 (id 'T-open-ring')" in messages[4] and "unreadable geometry" in messages[4]
    assert messages[5].endswith("(id 'T-nothing'): no geometry")
    assert messages[6] == "broken.geojson feature 6 (no id): empty id field 'ID'"
    assert messages[7].endswith("(id 'T-good'): duplicate id in this file")
    assert "no polygonal area" in messages[8]
    assert "outside longitude/latitude" in messages[9]

    catalog = local_catalog(tmp_path / "home")
    reg.register(catalog, load)
    assert reg.registered(catalog).column("id").to_pylist() == ["T-bowtie", "T-good"]


def test_illinois_counties_in_three_formats_register_the_same_polygons(tmp_path):
    import geopandas as gpd

    source = shared_path("boundaries", "derived", "illinois_counties.geojson")
    frame = gpd.read_file(source)
    shp = tmp_path / "il.shp"
    gpkg = tmp_path / "il.gpkg"
    frame.to_crs(26916).to_file(shp)  # UTM 16N: the registry reprojects it back
    frame.to_file(gpkg, driver="GPKG", layer="counties")
    loads = [reg.read_boundaries(p, "FIPS", "NAME", prefix="IL-") for p in (source, shp, gpkg)]
    for load in loads:
        assert load.rejects == [] and load.rows.num_rows == 102
        assert len(load.source_sha256) == 64
    geo, utm, pkg = loads
    assert geo.ids == utm.ids == pkg.ids
    cook = geo.ids.index("IL-17031")
    assert geo.rows.column("name")[cook].as_py() == "Cook"
    a = shapely.from_wkb(geo.rows.column("geometry")[cook].as_py())
    b = shapely.from_wkb(utm.rows.column("geometry")[cook].as_py())
    assert a.symmetric_difference(b).area < 1e-6 * a.area  # the UTM round trip lands on the same county
    assert geo.rows.column("area_km2")[cook].as_py() == pytest.approx(2450, rel=0.05)  # Cook: ~2,448 km²
    row = geo.rows.slice(cook, 1).to_pylist()[0]
    assert row["west"] < -87.7 < row["east"] and row["south"] < 41.8 < row["north"]
    assert json.loads(row["properties"])["NAME"] == "Cook"


def test_registry_add_is_idempotent_and_refuses_clashing_ids(tmp_path):
    source = shared_path("boundaries", "derived", "illinois_counties.geojson")
    catalog = local_catalog(tmp_path / "home")
    load = reg.read_boundaries(source, "FIPS", "NAME", prefix="IL-")
    key = reg.register(catalog, load)
    stamp = catalog.store.list_versions(f"{catalog.prefix}/boundaries/")
    again = reg.read_boundaries(source, "FIPS", "NAME", prefix="IL-")
    assert reg.register(catalog, again) == key
    assert list(catalog.store.list_versions(f"{catalog.prefix}/boundaries/")) == list(
        stamp
    )  # nothing rewritten

    copy = tmp_path / "copy_of_counties.geojson"
    copy.write_bytes(source.read_bytes())
    with pytest.raises(reg.BoundaryFileError, match="already registered from another file"):
        reg.register(catalog, reg.read_boundaries(copy, "FIPS", "NAME", prefix="IL-"))
    reg.register(catalog, reg.read_boundaries(copy, "FIPS", "NAME", prefix="X-"))
    assert reg.registered(catalog).num_rows == 204

    assert reg.remove(catalog, ["IL-17031", "X-17031", "nope"]) == ["IL-17031", "X-17031"]
    ids = reg.registered(catalog).column("id").to_pylist()
    assert "IL-17031" not in ids and len(ids) == 202
    assert reg.remove(catalog, [i for i in ids if i.startswith("X-")])
    assert sorted(catalog.tables()["boundaries"]) == [
        f"{catalog.prefix}/boundaries/IL-illinois_counties.parquet"
    ]


def test_file_level_errors_name_the_file_and_field(tmp_path, broken_file):
    with pytest.raises(reg.BoundaryFileError, match=r"id field 'FIPS' not found \(fields: ID, NAME\)"):
        reg.read_boundaries(broken_file, "FIPS")
    bad = tmp_path / "garbage.geojson"
    bad.write_text("{ this is not json")
    with pytest.raises(reg.BoundaryFileError, match="garbage.geojson: cannot read"):
        reg.read_boundaries(bad, "ID")
    with pytest.raises(reg.BoundaryFileError, match="missing.gpkg: no such file"):
        reg.read_boundaries(tmp_path / "missing.gpkg", "ID")


def test_ids_are_normalised_for_partition_keys():
    assert reg.normalise_id(17031, "IL-") == "IL-17031"
    assert reg.normalise_id(17031.0) == "17031"
    assert reg.normalise_id("Cook County|IL/x") == "Cook-County-IL-x"
    assert reg.normalise_id("  ", "IL-") is None and reg.normalise_id(None) is None
    assert reg.partition_for("illinois_counties.geojson", "IL-") == "IL-illinois_counties"


def test_geojson_feature_of_a_row(tmp_path, broken_file):
    load = reg.read_boundaries(broken_file, "ID", "NAME")
    row = load.rows.slice(0, 1).to_pylist()[0]
    feature = reg.to_geojson_feature(row)
    assert feature["id"] == "good" and feature["geometry"]["type"] == "Polygon"
    assert feature["properties"]["attributes"] == {"ID": "good", "NAME": "good"}
    assert isinstance(load.rows, pa.Table)


def test_shipped_counties_register_without_shared_data(tmp_path):
    shipped = reg.shipped_boundaries()
    assert [s.path.name for s in shipped] == ["illinois_counties.geojson", "oklahoma_counties.geojson"]
    catalog = local_catalog(tmp_path / "home")
    for item in shipped:
        load = reg.read_boundaries(item.path, item.id_field, item.name_field, prefix=item.prefix)
        assert load.rejects == []
        reg.register(catalog, load)
    ids = reg.registered(catalog).column("id").to_pylist()
    assert len(ids) == 102 + 77 and "IL-17031" in ids and "OK-40109" in ids
