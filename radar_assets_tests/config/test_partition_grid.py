"""The first day and hour of the partition grid are deployment settings that reach every partitioned definition."""

from __future__ import annotations

import dagster as dg

from radar_assets.defs.partitions import partitions_for
from radar_assets.settings import PartitionsSettings


def _time_dimension(pd) -> dg.TimeWindowPartitionsDefinition:
    if isinstance(pd, dg.MultiPartitionsDefinition):
        (time,) = [d.partitions_def for d in pd.partitions_defs if d.name == "day"]
        return time
    return pd


def test_code_location_builds_every_time_dimension_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RADAR_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("RADAR_ASSETS_PARTITIONS_FIRST_DAY", "2013-05-20")
    monkeypatch.setenv("RADAR_ASSETS_PARTITIONS_FIRST_HOUR", "2024-01-01-06:00")
    import radar_assets.definitions as location

    repo = location.defs().get_repository_def()  # what Dagster calls when it loads the code location
    graph = repo.asset_graph
    starts = {
        key.to_user_string(): f"{_time_dimension(graph.get(key).partitions_def).start:%Y-%m-%d %H:%M}"
        for key in graph.get_all_asset_keys()
        if graph.get(key).partitions_def is not None
    }
    assert starts == {
        "raw_scans": "2013-05-20 00:00",
        "rendered_sweeps": "2013-05-20 00:00",
        "timeseries_summaries": "2013-05-20 00:00",
        "clipped_packages": "2013-05-20 00:00",
        "live_echoes": "2024-01-01 06:00",
    }
    # Checks and jobs are partitioned like their assets; the day before the first day is no partition.
    for assets_def in repo.assets_defs_by_key.values():
        for spec in assets_def.check_specs:
            if spec.partitions_def is not None:
                assert spec.partitions_def == graph.get(spec.asset_key).partitions_def, spec.key
    grid = partitions_for(PartitionsSettings(first_day="2013-05-20"))
    for job in ("site_day_pipeline_job", "raw_scans_job"):
        assert repo.get_job(job).partitions_def == grid.site_day, job
    day = _time_dimension(grid.site_day)
    assert day.has_partition_key("2013-05-20") and not day.has_partition_key("2013-05-19")


def test_default_grid_is_the_demos_range_not_2005():
    from radar_assets.cli.demo import DEMO_START

    grid = partitions_for(PartitionsSettings())
    assert grid.first_day == DEMO_START[:10] == "2024-05-01"
    assert grid.first_hour == "2024-05-01-00:00"
    assert not grid.has_day("2024-04-30") and grid.has_day("2024-05-01")
    # Equal settings give the same definitions (families compare them to find the site x day assets).
    assert partitions_for(PartitionsSettings(first_day="2024-05-01")) is grid
