"""Asset checks are tied to their partition: a failed check names its site-day in the instance (and the UI)."""

from __future__ import annotations

import dagster as dg

from radar_assets.definitions import build_definitions
from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
from radar_assets.defs.partitions import site_day_key, sites_partitions
from radar_assets.defs.resources import RenderResource
from radar_assets.defs.scans.assets import ALL_CATALOGUED, NO_REJECTS, build_raw_scans
from radar_assets.defs.scans.resources import RadarSourceResource
from radar_assets.lib.store import LocalStore
from radar_assets.settings import Settings
from radar_assets_tests.conftest import sample_partitions


def test_every_check_of_a_partitioned_asset_is_partitioned_like_it(tmp_path):
    repo = build_definitions(Settings(home=tmp_path)).get_repository_def()
    graph = repo.asset_graph
    checks = [
        (key, graph.get(key).partitions_def, spec)
        for assets_def in repo.assets_defs_by_key.values()
        for spec in assets_def.check_specs
        if (key := spec.asset_key) in graph.get_all_asset_keys()
    ]
    tied = ("raw_scans", "rendered_sweeps", "timeseries_summaries", "clipped_packages")
    for key, partitions_def, spec in checks:
        if partitions_def is not None and key.to_user_string() in tied:
            assert spec.partitions_def == partitions_def, spec.key


def test_check_evaluation_records_the_partition(tmp_path):
    archive = LocalStore(tmp_path / "archive")
    # One unreadable volume: NO_REJECTS fails, and the failure must point at its site-day.
    archive.put_bytes("2021/06/25/KLOT/KLOT20210625_075154_V06", b"not a volume")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(sites_partitions.name, ["KLOT"])
        result = dg.materialize(
            [build_raw_scans(sample_partitions())],
            partition_key=str(site_day_key("KLOT", "2021-06-25")),
            instance=instance,
            resources={
                "source": RadarSourceResource(url=str(tmp_path / "archive"), level3_products=[]),
                "store": StoreResource(url=str(tmp_path / "store")),
                "catalog": CatalogResource(
                    store=StoreResource(url=str(tmp_path / "store")), snapshot_dir=str(tmp_path / "snap")
                ),
                "render": RenderResource(cache_dir=None),
            },
        )
        assert result.success
        for name, passed in ((NO_REJECTS, False), (ALL_CATALOGUED, True)):
            (record,) = instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(dg.AssetKey("raw_scans"), name), limit=5
            )
            evaluation = record.event.dagster_event.event_specific_data
            assert (record.partition, evaluation.partition, evaluation.passed) == ("2021-06-25|KLOT",) * 2 + (
                passed,
            )
