"""The feed sensor: reads the spool by cursor, requests ``live_echoes`` hours, reports the listener's health.

Each tick reads at most ``MAX_BYTES_PER_TICK`` of new spool frames from the cursor (no socket, no lock,
no waiting on the listener), so it never blocks. Then:

- every hour that received records gets a run (run key = hour + spool position, so a re-evaluated tick
  requests the same run and Dagster de-duplicates it), unless a run of that hour is waiting to start (it
  reads the spool when it starts, so it takes these records too): the hour stays pending in the cursor.
  While a run of the hour is going, the next one is requested at once (``feed.queue_next_run``) and waits
  in the queue behind it (one run per partition at a time, ``dagster.yaml``), so it starts as soon as the
  queue lets it rather than a tick after; at most one run per hour waits. Without that knob the hour stays
  pending until the running one ended;
- every hour seen that has been closed for ``grace_seconds`` gets one more, final run (run key
  ``<hour>:final``; the asset then rebuilds the hour in one file from the spool). Records arriving for a
  closed hour later request one more final run;
- the listener heartbeat is evaluated as the ``listener_heartbeat`` asset check (reported when it changes
  and at least every ``HEARTBEAT_REPORT_SECONDS``).
"""

import json
import time

import dagster as dg

from radar_assets.defs.catalog.assets import CATALOG_SNAPSHOT
from radar_assets.defs.echoes.assets import EXACTLY_ONCE, GAPS, LIVE_ECHOES, REJECTS
from radar_assets.defs.echoes.checks import LISTENER_HEARTBEAT
from radar_assets.defs.echoes.resources import FeedSpoolResource
from radar_assets.defs.partitions import Partitions
from radar_assets.defs.runs import RUNNING, WAITING
from radar_assets.lib.partitions import HOUR_US, hour_key, hour_start_us
from radar_assets.settings import Settings

MAX_BYTES_PER_TICK = 256 << 20
HEARTBEAT_REPORT_SECONDS = 300
FAMILY_TAG = "radar-assets/family"


def _run_state(context: dg.SensorEvaluationContext, hour: str) -> str | None:
    """``"waiting"`` when a feed run of ``hour`` is queued or starting, else ``"running"`` when one is
    executing, else None."""
    tags = {FAMILY_TAG: "live_echoes", "dagster/partition": hour}
    # A waiting run reads the spool when it begins executing: new records need no other run.
    for state, statuses in (("waiting", WAITING), ("running", RUNNING)):
        if context.instance.get_run_records(filters=dg.RunsFilter(statuses=statuses, tags=tags), limit=1):
            return state
    return None


def _valid_hour(hour: str, now_us: int, first_hour: str) -> bool:
    # Partition keys outside the definition (clock-skewed records, hours before the grid's first hour) cannot
    # be requested; they stay in the spool.
    return first_hour <= hour <= hour_key(now_us + HOUR_US)


def evaluate_feed(
    cursor: dict,
    feed_spool: FeedSpoolResource,
    now: float,
    is_active=lambda hour: None,
    *,
    first_hour: str,
    run_options: dict | None = None,
    queue_next: bool = False,
) -> tuple[list[dg.RunRequest], dict, list[dg.AssetCheckEvaluation], list[str]]:
    """The sensor's logic without Dagster's context (tested directly). Returns requests, cursor, checks, notes.

    ``is_active(hour)`` says whether a feed run of the hour is ``"waiting"`` (queued or starting; any other
    true value counts as waiting) or ``"running"``, or neither (falsy). ``queue_next`` requests the next run
    of an hour while one is running (see the module docstring). ``first_hour`` is the first key of the hourly
    grid (``Partitions.first_hour``); ``run_options`` are more ``RunRequest`` arguments of every run
    (:func:`feed_run_options`).
    """
    spool = feed_spool.get_spool()
    now_us = int(now * 1e6)
    pos = tuple(cursor["pos"]) if cursor.get("pos") else None
    new_pos, hours, _read = spool.advance(pos, MAX_BYTES_PER_TICK)
    pending: dict[str, int] = dict(cursor.get("pending", {}))
    for h, n in hours.items():
        pending[h] = pending.get(h, 0) + n
    seen_hours: list[str] = sorted(set(cursor.get("open", [])) | set(hours))
    finalised: list[str] = list(cursor.get("finalised", []))
    requests, notes = [], []
    mark = f"{new_pos[0]}:{new_pos[1]}"
    still_open = []
    for hour in sorted(set(pending) | set(seen_hours)):
        if not _valid_hour(hour, now_us, first_hour):
            if hour in pending:
                notes.append(
                    f"{pending.pop(hour)} records with record time in {hour}, outside the partitions"
                )
            continue
        closed = now_us >= hour_start_us(hour) + HOUR_US + feed_spool.grace_seconds * 1e6
        state = is_active(hour)
        if state and not (queue_next and state == "running"):
            still_open.append(hour)  # requested again once the waiting or running one started or ended
            continue
        if hour in pending:
            # New records: an open hour is updated incrementally; a closed one (late records) rebuilt once.
            mode = "final" if closed else "incremental"
            key = f"live_echoes:{hour}:{mark}:{mode}"
            del pending[hour]
        elif closed:
            mode, key = "final", f"live_echoes:{hour}:final"
        else:
            still_open.append(hour)
            continue
        requests.append(
            dg.RunRequest(
                run_key=key,
                partition_key=hour,
                tags={FAMILY_TAG: "live_echoes", "radar-assets/feed-mode": mode},
                **(run_options or {}),
            )
        )
        if mode == "final":
            finalised.append(hour)
        else:
            still_open.append(hour)
    checks = []
    fresh, meta = feed_spool.heartbeat_status(now)
    last = cursor.get("heartbeat") or {}
    if last.get("fresh") is not fresh or now - last.get("reported", 0) >= HEARTBEAT_REPORT_SECONDS:
        checks.append(
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(LIVE_ECHOES), check_name=LISTENER_HEARTBEAT, passed=fresh, metadata=meta
            )
        )
        last = {"fresh": fresh, "reported": now}
    new_cursor = {
        "pos": list(new_pos),
        "pending": pending,
        "open": still_open,
        "finalised": finalised[-48:],  # bounded: a late record reopens an hour as pending anyway
        "heartbeat": last,
    }
    return requests, new_cursor, checks, notes


def feed_run_options(settings: Settings | None) -> dict:
    """``RunRequest`` arguments that cut record -> queryable latency (settings ``feed.runs_in_process``,
    ``feed.publish_in_runs``; docs/operations.md, "Live feed latency")."""
    if settings is None:
        return {}
    options: dict = {}
    if settings.feed.publish_in_runs:
        options["asset_selection"] = [dg.AssetKey(LIVE_ECHOES), dg.AssetKey(CATALOG_SNAPSHOT)]
        # live_echoes' own checks only: the sensor evaluates listener_heartbeat itself every tick, and in a
        # run it would be one more step before the run ends.
        options["asset_check_keys"] = [
            dg.AssetCheckKey(dg.AssetKey(LIVE_ECHOES), name) for name in (GAPS, EXACTLY_ONCE, REJECTS)
        ]
    if settings.feed.runs_in_process and settings.execution.executor == "multiprocess":
        options["run_config"] = {"execution": {"config": {"in_process": {}}}}
    return options


def build_feed_sensor(partitions: Partitions, settings: Settings | None = None) -> dg.SensorDefinition:
    """The feed sensor of the deployment's hourly grid (run options from ``settings``, see feed_run_options)."""
    run_options = feed_run_options(settings)

    def live_echoes_feed_sensor(
        context: dg.SensorEvaluationContext, feed_spool: FeedSpoolResource
    ) -> dg.SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        requests, new_cursor, checks, notes = evaluate_feed(
            cursor,
            feed_spool,
            time.time(),
            is_active=lambda hour: _run_state(context, hour),
            first_hour=partitions.first_hour,
            run_options=run_options,
            queue_next=settings is not None and settings.feed.queue_next_run,
        )
        for note in notes:
            context.log.warning(note)
        return dg.SensorResult(
            run_requests=requests,
            cursor=json.dumps(new_cursor, sort_keys=True),
            asset_events=checks,
            skip_reason=None if requests or checks else dg.SkipReason("no new spool records"),
        )

    return dg.sensor(
        name="live_echoes_feed_sensor",
        asset_selection=run_options.get("asset_selection", [dg.AssetKey(LIVE_ECHOES)]),
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Reads the feed spool by cursor; requests live_echoes hours; checks the listener heartbeat.",
    )(live_echoes_feed_sensor)
