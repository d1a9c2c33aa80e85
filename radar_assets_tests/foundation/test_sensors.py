import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from radar_assets.defs.partitions import partitions_for, sites_partitions
from radar_assets.defs.scans.resources import RadarSourceResource
from radar_assets.defs.scans.schedules import build_daily_schedule, build_raw_scans_job
from radar_assets.defs.scans.sensors import SitesConfig, build_source_sensor, sites_from_config_sensor
from radar_assets.lib.store import LocalStore
from radar_assets.settings import PartitionsSettings

GRID = partitions_for(PartitionsSettings())
raw_scans_source_sensor = build_source_sensor(dg.DefaultSensorStatus.STOPPED, GRID)
raw_scans_daily = build_daily_schedule(dg.DefaultScheduleStatus.STOPPED, GRID, build_raw_scans_job())


def _tick(instance, source, cursor):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"source": source})
    result = raw_scans_source_sensor(ctx)
    return result.run_requests, result.cursor


def test_source_sensor_requests_changed_site_days_once(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(sites_partitions.name, ["KLOT", "KTLX"])
    archive = LocalStore(tmp_path / "archive")
    today = datetime.now(UTC)
    stamp = today.strftime("%Y%m%d")
    archive.put_bytes(f"{today:%Y/%m/%d}/KLOT/KLOT{stamp}_000100_V06", b"x" * 10)
    archive.put_bytes(f"{today:%Y/%m/%d}/KLOT/KLOT{stamp}_000100_V06_MDM", b"ignored")
    archive.put_bytes(f"LOT_N0Q_{today:%Y_%m_%d}_00_01_00", b"y" * 5)
    source = RadarSourceResource(url=str(tmp_path / "archive"))

    requests, cursor = _tick(instance, source, None)
    assert [r.partition_key for r in requests] == [f"{today:%Y-%m-%d}|KLOT"]
    first_key = requests[0].run_key
    marks = json.loads(cursor)["marks"]["KLOT"][f"{today:%Y-%m-%d}"]
    assert marks == {
        "L2": f"{today:%Y/%m/%d}/KLOT/KLOT{stamp}_000100_V06_MDM",
        "N0Q": f"LOT_N0Q_{today:%Y_%m_%d}_00_01_00",
    }

    again, cursor = _tick(instance, source, cursor)
    assert again == []  # nothing changed, nothing requested

    yesterday = today - timedelta(days=1)
    archive.put_bytes(f"{today:%Y/%m/%d}/KLOT/KLOT{stamp}_000600_V06", b"z" * 10)
    archive.put_bytes(f"{yesterday:%Y/%m/%d}/KTLX/KTLX{yesterday:%Y%m%d}_235900_V06", b"z" * 10)
    requests, cursor = _tick(instance, source, cursor)
    assert sorted(r.partition_key for r in requests) == sorted(
        [f"{today:%Y-%m-%d}|KLOT", f"{yesterday:%Y-%m-%d}|KTLX"]
    )
    assert first_key not in {r.run_key for r in requests}
    # deterministic: the same state from the same cursor gives the same run keys
    replay, _ = _tick(instance, source, None)
    assert {r.run_key for r in replay} >= {r.run_key for r in requests}


def test_sites_sensor_adds_configured_sites():
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(sites_partitions.name, ["KLOT"])
    ctx = dg.build_sensor_context(
        instance=instance, resources={"sites_config": SitesConfig(sites=["klot", "KTLX", " "])}
    )
    result = sites_from_config_sensor(ctx)
    (req,) = result.dynamic_partitions_requests
    assert list(req.partition_keys) == ["KTLX"]


def test_daily_schedule_finalises_yesterday_for_every_site():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(sites_partitions.name, ["KTLX", "KLOT"])
        when = datetime(2024, 5, 2, 0, 15, tzinfo=UTC)
        requests = raw_scans_daily(
            dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
        )
    assert [r.partition_key for r in requests] == ["2024-05-01|KLOT", "2024-05-01|KTLX"]
    assert len({r.run_key for r in requests}) == 2


def test_daily_schedule_skips_a_day_before_the_grid():
    assert GRID.first_day == "2024-05-01"
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(sites_partitions.name, ["KLOT"])
        when = datetime(2024, 5, 1, 0, 15, tzinfo=UTC)  # yesterday is 2024-04-30, before the first day
        result = raw_scans_daily(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
    assert isinstance(result, dg.SkipReason) and "2024-05-01" in result.skip_message
