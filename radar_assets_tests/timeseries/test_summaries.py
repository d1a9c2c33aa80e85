"""Per-scan summaries of real rendered KLOT sweeps over real county boundaries."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest
import shapely

from radar_assets.lib.geo import boundaries as reg
from radar_assets.lib.geo.zonal import WeightCache, ZonalIndex, read_cog, to_mercator
from radar_assets.lib.store import LocalStore
from radar_assets.lib.sweeps import SWEEPS_SCHEMA, sweep_id
from radar_assets.lib.timeseries import summaries as sm
from radar_assets_tests.conftest import shared_path

PARTITION = "2021-06-25|KLOT"


@pytest.fixture(scope="module")
def klot_sweep():
    """The lowest REF sweep of a stormy KLOT volume, rendered (bounds + COG)."""
    from radar_assets.lib.readers.nexrad_level2 import read_level2
    from radar_assets.lib.render.sweep import render_sweep

    volume = read_level2(shared_path("level2", "KLOT", "KLOT20210625_075154_V06").read_bytes())
    sweep = next(s for s in volume.sweeps if "REF" in s.moments)
    return render_sweep(sweep, volume.lat, volume.lon, "REF", site=volume.site)


@pytest.fixture(scope="module")
def county_boundaries():
    """Illinois counties (KLOT's) and Oklahoma counties (beyond its coverage), as registry rows."""
    il = reg.read_boundaries(
        shared_path("boundaries", "derived", "illinois_counties.geojson"), "FIPS", "NAME", prefix="IL-"
    )
    ok = reg.read_boundaries(
        shared_path("boundaries", "derived", "oklahoma_counties.geojson"), "FIPS", "NAME", prefix="OK-"
    )
    return pa.concat_tables([il.rows, ok.rows])


def _store_scans(store: LocalStore, rendered, times: list) -> pa.Table:
    """Store the rendered sweep as the lowest REF sweep of one scan per time (sweeps rows as the asset writes)."""
    rows = []
    for n, when in enumerate(times):
        scan_id = f"KLOT-{when:%Y%m%d%H%M%S}-{n}"
        base = f"sweeps/KLOT/{when:%Y/%m/%d}/{scan_id}/REF-00"
        store.put_bytes(base + ".tif", rendered.cog)
        store.put_bytes(base + ".json", json.dumps(rendered.bounds).encode())
        b = rendered.bounds
        for index, moment in ((0, "REF"), (1, "VEL"), (2, "REF")):  # only sweep 0 REF is summarised
            rows.append(
                {
                    "sweep_id": sweep_id(scan_id, moment, index), "scan_id": scan_id, "site": "KLOT", "level": 2,
                    "product": "L2", "moment": moment, "units": "dBZ", "sweep_index": index, "elevation": 0.5,
                    "sweep_time": when + timedelta(seconds=index), "west": b["west"], "south": b["south"],
                    "east": b["east"], "north": b["north"], "corners": "[]", "vmin": None, "vmax": None,
                    "png_key": base + ".png", "json_key": base + ".json", "cog_key": base + ".tif",
                    "partition": PARTITION,
                }
            )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=SWEEPS_SCHEMA)


def test_rows_per_scan_and_boundary_match_the_zonal_statistics(tmp_path, klot_sweep, county_boundaries):
    from datetime import UTC, datetime

    store = LocalStore(tmp_path / "store")
    t0 = datetime(2021, 6, 25, 7, 51, tzinfo=UTC)
    sweeps = _store_scans(store, klot_sweep, [t0, t0 + timedelta(minutes=5)])
    boundaries = sm.boundaries_from_table(county_boundaries)
    result = sm.summarise_partition(sweeps, store, boundaries, PARTITION, cache=WeightCache(tmp_path / "w"))
    rows = result.rows.to_pylist()
    assert result.sweeps_summarised == 2 and not result.rejects
    covered = set(result.boundaries_covered)
    # Only Illinois counties within the radar's disc; Oklahoma is beyond every site's coverage: no rows.
    assert covered and all(b.startswith("IL-") for b in covered)
    assert not any(r["boundary"].startswith("OK-") for r in rows)
    assert len(rows) == 2 * len(covered)
    assert {r["product"] for r in rows} == {"REF"} and {r["sweep_id"][-6:] for r in rows} == {"REF-00"}
    # Cook: the row equals the zonal statistics computed directly from the COG.
    raster = read_cog(klot_sweep.cog)
    cook = next(b for b in boundaries if b.id == "IL-17031")
    from radar_assets.lib.geo.zonal import coverage_weights

    direct = raster.stats(
        ZonalIndex(raster.grid, [coverage_weights(raster.grid, to_mercator(cook.geometry))])
    )
    cook_rows = [r for r in rows if r["boundary"] == "IL-17031"]
    assert [r["time"] for r in cook_rows] == [t0, t0 + timedelta(minutes=5)]
    for name in ("count", "mean", "min", "max", "p50", "p90", "frac_ge_20dbz", "coverage_fraction"):
        assert cook_rows[0][name] == pytest.approx(float(direct[name][0]), rel=1e-12), name
    assert cook_rows[0]["cells"] == int(direct["cells"][0]) > 0
    # Missing statistics are nulls, never NaN.
    for r in rows:
        assert all(v is None or np.isfinite(v) for k, v in r.items() if isinstance(v, float)), r["boundary"]
    # A county far in the south-west of Illinois, outside the disc, has no row either.
    far = next(b for b in boundaries if b.id == "IL-17003")  # Alexander County, ~520 km from KLOT
    assert far.id not in covered


def test_rerun_reuses_rows_and_follows_boundary_changes(tmp_path, klot_sweep, county_boundaries):
    from datetime import UTC, datetime

    store = LocalStore(tmp_path / "store")
    t0 = datetime(2021, 6, 25, 7, 51, tzinfo=UTC)
    sweeps = _store_scans(store, klot_sweep, [t0, t0 + timedelta(minutes=5)])
    il = county_boundaries.filter(pa.compute.starts_with(county_boundaries.column("id"), "IL-"))
    boundaries = sm.boundaries_from_table(il)
    first = sm.summarise_partition(sweeps, store, boundaries, PARTITION)
    again = sm.summarise_partition(sweeps, store, boundaries, PARTITION, previous=first.rows)
    assert again.sweeps_reused == 2 and again.sweeps_summarised == 0
    assert again.rows.equals(first.rows)

    # Change one boundary (shrink Cook) and drop another (DuPage): both sweeps recomputed, Cook's rows
    # change, DuPage's disappear, the other rows are identical.
    changed = []
    for b in boundaries:
        if b.id == "IL-17043":
            continue
        if b.id == "IL-17031":
            smaller = shapely.affinity.scale(b.geometry, 0.5, 0.5, origin="centroid")
            b = sm.Boundary(b.id, shapely.to_wkb(smaller), smaller.bounds)
        changed.append(b)
    third = sm.summarise_partition(sweeps, store, changed, PARTITION, previous=first.rows)
    assert third.sweeps_summarised == 2
    ids = set(third.rows.column("boundary").to_pylist())
    assert "IL-17043" not in ids and "IL-17031" in ids
    old_cook = [r for r in first.rows.to_pylist() if r["boundary"] == "IL-17031"]
    new_cook = [r for r in third.rows.to_pylist() if r["boundary"] == "IL-17031"]
    assert new_cook[0]["boundary_hash"] != old_cook[0]["boundary_hash"]
    assert new_cook[0]["count"] < old_cook[0]["count"]
    keep = lambda rows: [r for r in rows if r["boundary"] not in ("IL-17031", "IL-17043")]  # noqa: E731
    assert keep(third.rows.to_pylist()) == keep(first.rows.to_pylist())


def test_plot_of_the_boundaries_with_most_signal(tmp_path, klot_sweep, county_boundaries):
    from datetime import UTC, datetime

    store = LocalStore(tmp_path / "store")
    t0 = datetime(2021, 6, 25, 7, 51, tzinfo=UTC)
    sweeps = _store_scans(store, klot_sweep, [t0 + timedelta(minutes=5 * i) for i in range(3)])
    result = sm.summarise_partition(sweeps, store, sm.boundaries_from_table(county_boundaries), PARTITION)
    top = sm.top_boundaries(result.rows, k=3)
    assert len(top) == 3
    totals = {}
    for r in result.rows.to_pylist():
        totals[r["boundary"]] = totals.get(r["boundary"], 0.0) + (r["coverage_fraction"] or 0.0)
    assert min(totals[b] for b in top) >= max(v for b, v in totals.items() if b not in top)
    png = sm.plot_series(result.rows, top)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_coverage_disc_is_the_grid_inscribed_circle(klot_sweep):
    b = klot_sweep.bounds
    disc = sm.coverage_disc(b["radar_lat"], b["radar_lon"], b["north"])
    w, s, e, n = disc.bounds
    assert n == pytest.approx(b["north"], abs=1e-6)
    assert w == pytest.approx(b["west"], abs=0.02) and e == pytest.approx(b["east"], abs=0.02)
    assert s == pytest.approx(b["south"], abs=0.02)


def test_level3_precipitation_product_is_summarised_from_its_float_cog(tmp_path, county_boundaries):
    from datetime import UTC, datetime

    from radar_assets.lib.readers.nexrad_level3 import read_level3
    from radar_assets.lib.render.sweep import render_sweep

    product = read_level3(
        shared_path("level3", "KLOT", "LOT_DAA_2021_02_28_12_14_47").read_bytes(), site_hint="KLOT"
    )
    rendered = render_sweep(product.sweeps[0], product.lat, product.lon, "PRECIP", size=512, site="KLOT")
    assert rendered.bounds["cog_encoding"]["dtype"] == "float32"
    store = LocalStore(tmp_path / "store")
    base = "sweeps/KLOT/2021/02/28/LOT-DAA/PRECIP-00"
    store.put_bytes(base + ".tif", rendered.cog)
    store.put_bytes(base + ".json", json.dumps(rendered.bounds).encode())
    b = rendered.bounds
    row = {
        "sweep_id": "LOT-DAA-PRECIP-00", "scan_id": "LOT-DAA", "site": "KLOT", "level": 3, "product": "DAA",
        "moment": "PRECIP", "units": "in", "sweep_index": 0, "elevation": 0.5,
        "sweep_time": datetime(2021, 2, 28, 12, 14, 47, tzinfo=UTC), "west": b["west"], "south": b["south"],
        "east": b["east"], "north": b["north"], "corners": "[]", "vmin": None, "vmax": None,
        "png_key": base + ".png", "json_key": base + ".json", "cog_key": base + ".tif", "partition": "2021-02-28|KLOT",
    }  # fmt: skip
    sweeps = pa.Table.from_pylist([row], schema=SWEEPS_SCHEMA)
    result = sm.summarise_partition(
        sweeps, store, sm.boundaries_from_table(county_boundaries), "2021-02-28|KLOT"
    )
    rows = result.rows.to_pylist()
    assert rows and {r["product"] for r in rows} == {"DAA"} and not result.rejects
    assert all(r["frac_ge_20dbz"] is None for r in rows)  # a reflectivity threshold means nothing for inches
    raster = read_cog(rendered.cog)
    cook = next(b for b in sm.boundaries_from_table(county_boundaries) if b.id == "IL-17031")
    from radar_assets.lib.geo.zonal import coverage_weights

    direct = raster.stats(
        ZonalIndex(raster.grid, [coverage_weights(raster.grid, to_mercator(cook.geometry))])
    )
    got = next(r for r in rows if r["boundary"] == "IL-17031")
    assert got["count"] == pytest.approx(float(direct["count"][0]))
    if got["cells"]:
        assert got["mean"] == pytest.approx(float(direct["mean"][0]))
