"""Unattended operation with the real processes: SeaweedFS archive, ``dagster-daemon``, ``dagster-webserver``.

A real volume is uploaded into the S3 archive under today's key; with no manual step, the source sensor
requests ``raw_scans``, the automation sensor requests ``rendered_sweeps`` once the raw scans exist, and
``catalog_snapshot`` publishes: the sweeps must be in the published catalog within 180 s of the upload.
Then a backfill over a partition range is launched through the webserver's GraphQL API and every
partition must succeed. The daemon is ``radar-assets daemon run`` (Dagster's daemon with a 2 s backfill loop
here, ``RADAR_ASSETS_AUTOMATION_BACKFILL_LOOP_SECONDS``): a second backfill, launched just after the daemon's
iteration that marked the first one done, must have its run created within 10 s, where Dagster's own 30 s
loop would make it wait about 27 s.
"""

from __future__ import annotations

import collections
import shutil
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus

from radar_assets.lib.catalog import query_readonly
from radar_assets.lib.store import S3Store
from radar_assets_tests.conftest import SAMPLE_FIRST_DAY, free_port, shared_path
from radar_assets_tests.deployment.processes import (
    BIN,
    LAUNCH_BACKFILL,
    ROOT,
    Process,
    base_environment,
    graphql,
    http_ok,
    stop_all,
    wait_until,
)
from radar_assets_tests.seaweed import ACCESS_KEY, SECRET_KEY, seaweedfs

pytestmark = pytest.mark.integration

VOLUME = "KCRP20210101_000031_V06"  # small real volume (VCP 35, 12 sweeps)
BUCKET = "archive"
UNFINISHED = (BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING, BulkActionStatus.FAILING)


def _sweep_count(snapshot, partition: str) -> int:
    if not snapshot.exists():
        return 0
    try:
        _, rows = query_readonly(snapshot, f"select count(*) from sweeps where partition = '{partition}'")
    except Exception:  # the sweeps table is not published yet
        return 0
    return rows[0][0]


def test_new_volume_flows_to_published_sweeps_then_graphql_backfill(tmp_path):
    volume = shared_path("level2", "KCRP", VOLUME)
    home, logs = tmp_path / "home", tmp_path / "logs"
    logs.mkdir()
    instance_dir = home / "dagster"
    instance_dir.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", instance_dir / "dagster.yaml")
    (tmp_path / "weed").mkdir()
    with seaweedfs(tmp_path / "weed") as endpoint:
        archive = S3Store(
            BUCKET, endpoint_url=endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
        )
        archive.ensure_bucket()
        env = base_environment(
            RADAR_ASSETS_HOME=str(home),
            DAGSTER_HOME=str(instance_dir),
            RADAR_ASSETS_SOURCE_URL=f"s3://{BUCKET}",
            RADAR_ASSETS_SOURCE_ENDPOINT=endpoint,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            RADAR_ASSETS_AUTOMATION_SOURCE_SENSOR="1",
            RADAR_ASSETS_EXECUTION_EXECUTOR="in_process",
            # What sensors and automation render when no run config says otherwise (the default is 2048 px).
            RADAR_ASSETS_RENDER_SIZE="512",
            # The backfill below covers a day of the samples (2021).
            RADAR_ASSETS_PARTITIONS_FIRST_DAY=SAMPLE_FIRST_DAY,
            RADAR_ASSETS_AUTOMATION_BACKFILL_LOOP_SECONDS="2",
        )
        added = Process("sites", [str(BIN / "radar-assets"), "sites", "add", "KCRP"], env, logs)
        assert added.proc.wait(timeout=300) == 0, added.tail()

        web_port = free_port()
        workspace = str(ROOT / "workspace.yaml")
        daemon = Process("daemon", [str(BIN / "radar-assets"), "daemon", "run", "-w", workspace], env, logs)
        web = Process(
            "webserver",
            [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), "-w", workspace],
            env,
            logs,
        )
        processes = [daemon, web]
        snapshot = home / "catalog" / "catalog.duckdb"
        try:
            # A new volume lands in the archive: today's key, so the source sensor's window sees it.
            today = datetime.now(UTC)
            key = f"{today:%Y/%m/%d}/KCRP/KCRP{today:%Y%m%d}_000031_V06"
            partition = f"{today:%Y-%m-%d}|KCRP"
            archive.put_bytes(key, volume.read_bytes())
            uploaded = time.monotonic()
            wait_until(
                lambda: _sweep_count(snapshot, partition) > 0, 180, "published sweeps", processes, every=2
            )
            elapsed = time.monotonic() - uploaded
            assert elapsed <= 180

            # A backfill over a range of days, launched through GraphQL like the UI does.
            first = datetime(2021, 1, 1, tzinfo=UTC)
            archive.put_bytes(f"2021/01/01/KCRP/{VOLUME}", volume.read_bytes())
            keys = [f"{(first + timedelta(days=n)):%Y-%m-%d}|KCRP" for n in range(3)]
            wait_until(
                lambda: http_ok(f"http://127.0.0.1:{web_port}/server_info"), 180, "the webserver", [web]
            )
            params = {
                "partitionNames": keys,
                "assetSelection": [{"path": ["raw_scans"]}, {"path": ["rendered_sweeps"]}],
                "runConfigData": {"ops": {"rendered_sweeps": {"config": {"size": 128, "moments": ["REF"]}}}},
                "title": "unattended test",
            }
            launched = graphql(web_port, LAUNCH_BACKFILL, {"params": params})["data"][
                "launchPartitionBackfill"
            ]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            with dg.DagsterInstance.from_config(str(instance_dir)) as instance:

                def done():
                    backfill = instance.get_backfill(launched["backfillId"])
                    return backfill.status not in UNFINISHED and backfill

                backfill = wait_until(done, 600, "the backfill", processes, every=2)
                assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, backfill.status
                # The automation-launched render used the deployment's render size.
                (auto,) = instance.fetch_materializations(
                    dg.AssetRecordsFilter(
                        asset_key=dg.AssetKey("rendered_sweeps"), asset_partitions=[partition]
                    ),
                    limit=1,
                ).records
                assert auto.asset_materialization.metadata["size_px"].value == 512
                for asset in ("raw_scans", "rendered_sweeps"):
                    records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
                    counts = collections.Counter(r.partition_key for r in records)
                    assert all(counts[k] == 1 for k in keys), (asset, counts)

                # The daemon marked the first backfill done in a loop iteration a moment ago (polled every
                # 2 s): the next backfill's first run must not wait for Dagster's 30 s loop.
                again = graphql(web_port, LAUNCH_BACKFILL, {"params": {**params, "partitionNames": keys[:1]}})
                again = again["data"]["launchPartitionBackfill"]
                assert again["__typename"] == "LaunchBackfillSuccess", again
                launched_at = instance.get_backfill(again["backfillId"]).backfill_timestamp

                def first_run():
                    runs = instance.get_runs(dg.RunsFilter.for_backfill(again["backfillId"]), limit=1)
                    return runs and instance.get_run_record_by_id(runs[0].run_id)

                record = wait_until(first_run, 120, "the second backfill's run", processes, every=0.5)
                waited = record.create_timestamp.timestamp() - launched_at
                assert waited <= 10, f"the backfill's first run was created {waited:.1f} s after its launch"
        finally:
            stop_all(reversed(processes))
    print(f"upload -> published sweeps: {elapsed:.0f} s")
