"""A real pipeline for the timeseries tests: a KLOT volume through raw_scans and rendered_sweeps (512 px),
the shipped Illinois and Oklahoma counties through the ``boundaries`` asset, then ``timeseries_summaries``,
and a published catalog snapshot."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from radar_assets_tests.conftest import sample_partitions, settings_for, shared_path

PARTITION = "2019-06-17|KLOT"


def shipped_config() -> dict:
    from radar_assets.lib.geo.boundaries import shipped_boundaries

    files = [
        {"path": str(s.path), "id_field": s.id_field, "name_field": s.name_field, "prefix": s.prefix}
        for s in shipped_boundaries()
    ]
    return {"ops": {"boundaries": {"config": {"add": files}}}}


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    from radar_assets.defs.boundaries.assets import boundaries
    from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
    from radar_assets.defs.partitions import sites_partitions
    from radar_assets.defs.resources import RenderResource
    from radar_assets.defs.scans.assets import build_raw_scans
    from radar_assets.defs.scans.resources import RadarSourceResource
    from radar_assets.defs.sweeps.assets import build_rendered_sweeps
    from radar_assets.defs.timeseries.assets import ZonalResource, build_timeseries_summaries
    from radar_assets.lib.render.grid import lookup_cache_dir
    from radar_assets.lib.seed import seed
    from radar_assets.lib.store import LocalStore

    grid = sample_partitions()
    raw_scans, rendered_sweeps = build_raw_scans(grid), build_rendered_sweeps(grid)
    timeseries_summaries = build_timeseries_summaries(grid)

    home = tmp_path_factory.mktemp("timeseries")
    loose = home / "loose"
    loose.mkdir()
    shutil.copy(shared_path("level2", "KLOT", "KLOT20190617_181704_V06"), loose)
    seed(loose, LocalStore(home / "source"), log=lambda _m: None)
    settings = settings_for(home)
    store = StoreResource(url=str(settings.store.url))
    resources = {
        "source": RadarSourceResource(url=str(home / "source")),
        "store": store,
        "catalog": CatalogResource(store=store, snapshot_dir=str(settings.catalog.dir)),
        "render": RenderResource(cache_dir=str(lookup_cache_dir())),
        "zonal": ZonalResource(cache_dir=str(home / "weights")),
    }
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(sites_partitions.name, ["KLOT"])
    sweeps = dg.materialize(
        [raw_scans, rendered_sweeps],
        partition_key=PARTITION,
        instance=instance,
        resources=resources,
        run_config={"ops": {"rendered_sweeps": {"config": {"size": 512}}}},
    )
    assert sweeps.success
    registry = dg.materialize(
        [boundaries], instance=instance, resources=resources, run_config=shipped_config()
    )
    first = dg.materialize(
        [timeseries_summaries], partition_key=PARTITION, instance=instance, resources=resources
    )
    second = dg.materialize(
        [timeseries_summaries], partition_key=PARTITION, instance=instance, resources=resources
    )
    catalog = resources["catalog"].get_catalog()
    catalog.publish()
    return {
        "settings": settings,
        "resources": resources,
        "instance": instance,
        "catalog": catalog,
        "registry": registry,
        "first": first,
        "second": second,
    }
