"""``live_echoes``: one hour of the live feed (records, echoes, scan averages, gaps, rejects) in the catalog."""

import time

import dagster as dg

from radar_assets.defs.catalog.resources import CatalogResource
from radar_assets.defs.echoes.resources import FeedSpoolResource
from radar_assets.defs.partitions import Partitions

LIVE_ECHOES = "live_echoes"
FEED_POOL = "feed_echoes"  # one live_echoes run at a time: runs of one hour must not race on its chunk files
GAPS = "feed_gaps"
EXACTLY_ONCE = "records_exactly_once"
REJECTS = "no_rejected_messages"
SECOND_PASS_AFTER_S = 1.0  # an incremental pass that took this long is followed by one more


def _md_table(rows: list[dict], cols: list[str]) -> str:
    if not rows:
        return "none"
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _live_echoes(
    context: dg.AssetExecutionContext, feed_spool: FeedSpoolResource, catalog: CatalogResource
) -> dg.MaterializeResult:
    # Imported here, not at module level: the feed's catalog writer (pyarrow, DuckDB, numpy, dmap) would
    # otherwise load in every process that loads the code location, every run of every other asset included.
    from radar_assets.lib.feed.echoes import materialize_hour, record_id_counts

    cat = catalog.get_catalog()

    def one_pass():
        return materialize_hour(
            feed_spool.get_spool(),
            cat,
            context.partition_key,
            time.time_ns() // 1000,
            grace_s=feed_spool.grace_seconds,
        )

    started = time.monotonic()
    res = one_pass()
    if not res.final and time.monotonic() - started >= SECOND_PASS_AFTER_S:
        # Records spooled while that pass ran would wait for the hour's next run, a whole run later; one
        # more pass lands them now for the cost of those few seconds' records (docs/operations.md, "Live
        # feed latency").
        first, res = res, one_pass()
        res.new_records += first.new_records
        res.duplicates_dropped += first.duplicates_dropped
        res.files_written = first.files_written + res.files_written
        res.files_deleted = first.files_deleted + res.files_deleted
    context.log.info(
        f"{res.partition}: {res.records} records ({res.new_records:+d}), {res.echoes} echoes, {res.scans} scans, "
        f"{res.gaps} gaps, {res.rejects} rejects, {'final' if res.final else 'incremental'}"
    )
    n_ids, n_distinct = record_id_counts(cat, context.partition_key)
    by_cause: dict[str, int] = {}
    for g in res.gap_rows:
        by_cause[g["cause"]] = by_cause.get(g["cause"], 0) + 1
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": res.records,
            "records": res.records,
            "new_records": res.new_records,
            "echoes": res.echoes,
            "scans": res.scans,
            "complete_scans": res.complete_scans,
            "gaps": res.gaps,
            "rejects": res.rejects,
            "duplicates_dropped": res.duplicates_dropped,
            "final": res.final,
            "stations": dg.MetadataValue.json(res.stations),
            "spool_segments": dg.MetadataValue.json(res.segments),
            "catalog_files_written": dg.MetadataValue.json(res.files_written),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=GAPS,
                passed=res.gaps == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "gaps": res.gaps,
                    "gap_seconds": round(res.gap_seconds, 3),
                    "by_cause": dg.MetadataValue.json(by_cause),
                    "gaps_table": dg.MetadataValue.md(
                        _md_table(res.gap_rows[:20], ["station", "gap_start", "gap_end", "seconds", "cause"])
                    ),
                },
            ),
            dg.AssetCheckResult(
                check_name=EXACTLY_ONCE,
                passed=n_ids == n_distinct == res.records,
                metadata={"rows": n_ids, "distinct_record_ids": n_distinct, "records": res.records},
            ),
            dg.AssetCheckResult(
                check_name=REJECTS,
                passed=res.rejects == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"rejects": res.rejects, "by_reason": dg.MetadataValue.json(res.rejects_by_reason)},
            ),
        ],
    )


def build_live_echoes(partitions: Partitions) -> dg.AssetsDefinition:
    """``live_echoes`` on the deployment's partition grid."""
    return dg.asset(
        name=LIVE_ECHOES,
        partitions_def=partitions.hourly,
        group_name="echoes",
        kinds={"zeromq", "duckdb", "parquet"},
        pool=FEED_POOL,
        check_specs=[
            dg.AssetCheckSpec(
                GAPS, asset="live_echoes", description="No station has a gap longer than its scan cadence"
            ),
            dg.AssetCheckSpec(
                EXACTLY_ONCE, asset="live_echoes", description="Every record id is in the catalog once"
            ),
            dg.AssetCheckSpec(
                REJECTS, asset="live_echoes", description="No message received in the hour was rejected"
            ),
        ],
        description=(
            "Echoes of the live SuperDARN feed for one hour of record time, from the listener's spool: per-record "
            "rows (feed_records), per-echo rows (echoes), per-scan averages (echo_scans), gaps (feed_gaps) and "
            "rejected messages (feed_rejects). The open hour is updated incrementally; a closed hour is rebuilt once."
        ),
    )(_live_echoes)
