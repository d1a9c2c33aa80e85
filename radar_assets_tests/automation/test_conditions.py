"""The automation conditions evaluated against a real Dagster instance (no mocks, no daemon).

Upstream partitions are recorded as real materialisations in the instance; the evaluation is the same code the
daemon's automation sensor runs.
"""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.events import AssetMaterializationPlannedData

from radar_assets.definitions import build_definitions
from radar_assets.defs.automation import AUTOMATION_SENSOR, SITE_DAY_JOB, site_day_keys
from radar_assets.defs.partitions import partitions_for, site_day_key, sites_partitions
from radar_assets.settings import Settings
from radar_assets_tests.conftest import SAMPLE_FIRST_DAY

SWEEPS = dg.AssetKey("rendered_sweeps")
RAW = dg.AssetKey("raw_scans")


@pytest.fixture
def defs(tmp_path):
    # The partitions below are days of the samples (2013, 2021).
    return build_definitions(Settings(home=tmp_path, partitions={"first_day": SAMPLE_FIRST_DAY}))


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions(sites_partitions.name, ["KLOT", "KTLX"])
        yield inst


def _materialised(instance, asset: dg.AssetKey, *partitions: tuple[str, str]) -> None:
    for site, day in partitions:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=asset, partition=str(site_day_key(site, day)))
        )


def _downstream_assets(defs) -> list[dg.AssetKey]:
    """Every partitioned asset the automation sensor evaluates (sweeps now; summaries/packages when they land)."""
    graph = defs.get_repository_def().asset_graph
    return [
        key
        for key in graph.get_all_asset_keys()
        if graph.get(key).automation_condition is not None and graph.get(key).partitions_def is not None
    ]


def _requested(result, key: dg.AssetKey) -> set[str]:
    return {str(pk) for pk in result.get_requested_partitions(key)}


def test_requests_only_partitions_whose_upstream_exists_and_only_once(defs, instance):
    selection = dg.AssetSelection.assets(*_downstream_assets(defs))
    # First tick of a fresh deployment: nothing upstream, nothing requested (and not 15 000 "missing" partitions).
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    assert first.total_requested == 0

    _materialised(instance, RAW, ("KLOT", "2021-06-25"), ("KTLX", "2013-05-20"))
    second = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=first.cursor
    )
    assert _requested(second, SWEEPS) == {"2021-06-25|KLOT", "2013-05-20|KTLX"}
    # Nothing downstream of a partition whose raw scans do not exist: the other site on the same days, other days.
    for key in _downstream_assets(defs):
        assert _requested(second, key) <= {"2021-06-25|KLOT", "2013-05-20|KTLX"}

    third = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=second.cursor
    )
    assert third.total_requested == 0, "a handled partition is not requested again"

    # Re-ingesting one upstream partition requests exactly that downstream partition again.
    _materialised(instance, RAW, ("KLOT", "2021-06-25"))
    fourth = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=third.cursor
    )
    assert _requested(fourth, SWEEPS) == {"2021-06-25|KLOT"}


def test_new_site_or_day_alone_requests_nothing(defs, instance):
    selection = dg.AssetSelection.assets(*_downstream_assets(defs))
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    instance.add_dynamic_partitions(sites_partitions.name, ["KFWS", "KEWX", "KHGX"])
    second = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=first.cursor
    )
    assert second.total_requested == 0


def test_downstream_waits_while_its_upstream_partition_is_running(defs, instance):
    selection = dg.AssetSelection.assets(*_downstream_assets(defs))
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    _materialised(instance, RAW, ("KLOT", "2021-06-25"))
    # A run re-ingesting that partition has started and not finished.
    job = defs.resolve_job_def(SITE_DAY_JOB)
    run = instance.create_run_for_job(
        job_def=job,
        asset_selection=frozenset({RAW}),
        tags={"dagster/partition": "2021-06-25|KLOT"},
        status=dg.DagsterRunStatus.STARTED,
    )
    instance.handle_new_event(
        dg.EventLogEntry(
            error_info=None,
            level="debug",
            user_message="",
            run_id=run.run_id,
            timestamp=0.0,
            dagster_event=dg.DagsterEvent(
                event_type_value="ASSET_MATERIALIZATION_PLANNED",
                job_name=job.name,
                event_specific_data=AssetMaterializationPlannedData(RAW, partition="2021-06-25|KLOT"),
            ),
        )
    )
    waiting = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=first.cursor
    )
    assert _requested(waiting, SWEEPS) == set()
    # The run ends: the remembered upstream update is now acted on.
    instance.report_run_failed(instance.get_run_by_id(run.run_id))
    after = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=waiting.cursor
    )
    assert _requested(after, SWEEPS) == {"2021-06-25|KLOT"}


def test_sensors_target_downstream_assets_and_start_running(defs):
    repo = defs.get_repository_def()
    sensor = repo.get_sensor_def(AUTOMATION_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    targeted = sensor.asset_selection.resolve(repo.asset_graph)
    assert set(_downstream_assets(defs)) <= targeted
    assert dg.AssetKey("catalog_snapshot") not in targeted  # it has its own single-writer sensor
    jobs = {j.name for j in repo.get_all_jobs() if not j.name.startswith("__")}
    assert {SITE_DAY_JOB, "raw_scans_job"} <= jobs
    grid = partitions_for(Settings(partitions={"first_day": SAMPLE_FIRST_DAY}))
    assert {RAW, SWEEPS} <= set(site_day_keys([a for a in repo.assets_defs_by_key.values()], grid))


def _boundary_day(boundary: str, day: str) -> str:
    return str(dg.MultiPartitionKey({"boundary": boundary, "day": day}))


def test_a_volume_flows_down_the_whole_chain_one_step_per_existing_upstream(defs, instance):
    summaries, packages = dg.AssetKey("timeseries_summaries"), dg.AssetKey("clipped_packages")
    selection = dg.AssetSelection.assets(*_downstream_assets(defs))
    instance.add_dynamic_partitions("boundaries", ["cook-il", "dupage-il"])
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)

    def step():
        nonlocal tick
        tick = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=selection, cursor=tick.cursor
        )
        return {key.to_user_string(): _requested(tick, key) for key in (SWEEPS, summaries, packages)}

    _materialised(instance, RAW, ("KLOT", "2021-06-25"))
    # Summaries need the boundaries registry: without it, sweeps only.
    assert step() == {
        "rendered_sweeps": {"2021-06-25|KLOT"},
        "timeseries_summaries": set(),
        "clipped_packages": set(),
    }
    _materialised(instance, SWEEPS, ("KLOT", "2021-06-25"))
    assert step()["timeseries_summaries"] == set()
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="boundaries"))
    # The registry landing does not trigger (ignored), but the remembered sweeps update now can proceed.
    assert step() == {
        "rendered_sweeps": set(),
        "timeseries_summaries": {"2021-06-25|KLOT"},
        "clipped_packages": set(),
    }
    _materialised(instance, summaries, ("KLOT", "2021-06-25"))
    # Every registered boundary of that day, no other day, although KTLX has no summaries that day.
    assert step()["clipped_packages"] == {
        _boundary_day("cook-il", "2021-06-25"),
        _boundary_day("dupage-il", "2021-06-25"),
    }
    assert step() == {"rendered_sweeps": set(), "timeseries_summaries": set(), "clipped_packages": set()}


CATALOG = dg.AssetKey("catalog_snapshot")


def test_catalog_publishes_a_partition_that_landed_after_a_publish_seen_in_the_same_tick(defs, instance):
    """The lost publish CI caught: the catalog's run finished and then rendered sweeps landed, and the
    catalog's sensor first saw both in one tick; the publish must be requested, and only once. A dependency
    published by the run that landed it (feed runs) must not ask for another publish."""
    only = dg.AssetSelection.assets(CATALOG)

    def tick(cursor):
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=only, cursor=cursor
        )
        return bool(result.get_requested_partitions(CATALOG)), result.cursor

    _, cursor = tick(None)
    requested, cursor = tick(cursor)
    assert requested  # no snapshot yet: the first one is requested (from the second tick on)
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=CATALOG))
    requested, cursor = tick(cursor)
    assert not requested

    _materialised(instance, RAW, ("KLOT", "2021-06-25"))
    requested, cursor = tick(cursor)
    assert requested  # raw scans landed: publish
    requested, cursor = tick(cursor)
    assert not requested  # requested once, not again while nothing new lands

    # That publish ran, then the sweeps landed; the next tick sees both.
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=CATALOG))
    _materialised(instance, SWEEPS, ("KLOT", "2021-06-25"))
    requested, cursor = tick(cursor)
    assert requested, "sweeps that landed after the last publish must be published"
    requested, cursor = tick(cursor)
    assert not requested

    # A run that lands rows and then publishes them itself: nothing left to publish.
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=CATALOG))
    requested, cursor = tick(cursor)
    assert not requested
    _materialised(instance, SWEEPS, ("KLOT", "2021-06-25"))
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=CATALOG))
    requested, cursor = tick(cursor)
    assert not requested, "rows published by the run that landed them need no second publish"
