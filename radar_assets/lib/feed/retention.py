"""Spool retention: remove record segments that are old, landed in ``live_echoes`` and published.

A segment may go only when ALL of these hold (anything else keeps it; :func:`plan_retention` says why):

1. it is sealed (its index sidecar exists) and it is not the newest segment: the listener only appends to
   the newest, and new segment numbers are derived from the newest existing one, so it must stay;
2. its last record arrived more than ``window_s`` ago (``created_ns`` for a segment without records);
3. landed: for every record hour it holds, the ``live_echoes`` state of that hour
   (``feed_state/live_echoes/<hour>.json``, written by :func:`~radar_assets.lib.feed.echoes.materialize_hour`
   after the hour's files) is final and lists this segment read up to at least the hour's end offset in it;
4. published: every ``feed_records`` and ``echoes`` file of those hours is in the current catalog snapshot
   with the version it has in the store now (the snapshot's ``catalog_files`` table).

Removal appends the segment's hours and end offsets to ``pruned.jsonl`` first (so the batch layer knows the
rows of a vanished segment are in the catalog, see ``materialize_hour``), then deletes the segment file, then
its index. Reject segments are not removed (they are small and ``feed_rejects`` is rebuilt from them).

Invariants
----------
- Nothing un-landed or un-published is ever removed; a segment is removed at most once.
- Readers never see a half-removed segment as data: the ``.seg`` file goes first, so a reader listing
  segments either reads the whole segment or finds it gone (the live tailer reports ``expired``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb

from radar_assets.lib.catalog import Catalog, partition_file
from radar_assets.lib.feed.spool import Spool

LANDED_TABLES = ("feed_records", "echoes")


@dataclass
class RetentionPlan:
    """Per segment: removable (reason None) or kept with the reason."""

    removable: list[int] = field(default_factory=list)
    kept: dict[int, str] = field(default_factory=dict)
    removed: list[int] = field(default_factory=list)
    bytes_freed: int = 0

    def summary(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for why in self.kept.values():
            key = why.split(":", 1)[0]
            reasons[key] = reasons.get(key, 0) + 1
        return {
            "removed": self.removed,
            "bytes_freed": self.bytes_freed,
            "kept": len(self.kept),
            "kept_by_reason": reasons,
        }


def _hour_state(catalog: Catalog, hour: str) -> dict[str, Any] | None:
    key = f"feed_state/live_echoes/{partition_file(hour)}.json"
    if not catalog.store.exists(key):
        return None
    return json.loads(catalog.store.get_bytes(key))


def published_versions(catalog: Catalog) -> dict[str, str]:
    """URI -> version of every partition file in the current snapshot (empty when there is none)."""
    path = catalog.snapshot_path
    if not path.is_file():
        return {}
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return {}
    try:
        return dict(con.execute("SELECT uri, version FROM catalog_files").fetchall())
    except duckdb.Error:
        return {}
    finally:
        con.close()


def _hour_published(catalog: Catalog, hour: str, published: dict[str, str]) -> str | None:
    """None when every landed file of ``hour`` is in the snapshot at its current version, else why not."""
    for table in LANDED_TABLES:
        prefix = f"{catalog.prefix}/{table}/{partition_file(hour)}"
        versions = list(catalog.store.list_versions(prefix))
        if not versions:
            return f"unpublished: no {table} file for {hour}"
        for key, version in versions:
            if published.get(catalog.store.uri(key)) != version:
                return f"unpublished: {key} is not in the current snapshot"
    return None


def plan_retention(
    spool: Spool, catalog: Catalog, *, window_s: float, now_ns: int | None = None
) -> RetentionPlan:
    """Which record segments may be removed now (see the module rules), without removing anything."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    plan = RetentionPlan()
    segs = spool.segments()
    published: dict[str, str] | None = None
    states: dict[str, dict[str, Any] | None] = {}
    for seq in segs:
        if seq == segs[-1]:
            plan.kept[seq] = "newest: the listener numbers new segments after it"
            continue
        if not spool.index_path(seq).is_file():
            plan.kept[seq] = "open: not sealed"
            continue
        index = spool.index(seq)
        last_ns = index.last_arrival_ns or index.created_ns
        if now_ns - last_ns < window_s * 1e9:
            plan.kept[seq] = "recent: inside the retention window"
            continue
        why = None
        for hour, h in sorted(index.hours.items()):
            if hour not in states:
                states[hour] = _hour_state(catalog, hour)
            state = states[hour]
            if state is None or state.get("final") is not True:
                why = f"unlanded: hour {hour} not finally materialised"
                break
            if int(state.get("segments", {}).get(str(seq), -1)) < h["end_offset"]:
                why = f"unlanded: hour {hour} did not read this segment to its end"
                break
            if published is None:
                published = published_versions(catalog)
            why = _hour_published(catalog, hour, published)
            if why:
                break
        if why:
            plan.kept[seq] = why
        else:
            plan.removable.append(seq)
    return plan


def prune_spool(
    spool: Spool, catalog: Catalog, *, window_s: float, now_ns: int | None = None, dry_run: bool = False
) -> RetentionPlan:
    """Remove the segments :func:`plan_retention` allows (unless ``dry_run``); returns the plan with results."""
    plan = plan_retention(spool, catalog, window_s=window_s, now_ns=now_ns)
    if dry_run:
        return plan
    for seq in plan.removable:
        index = spool.index(seq)
        path = spool.segment_path(seq)
        size = path.stat().st_size
        entry = {
            "segment": seq,
            "removed_ns": time.time_ns(),
            "frames": index.frames,
            "bytes": size,
            "hours": {h: v["end_offset"] for h, v in index.hours.items()},
        }
        with open(spool.root / "pruned.jsonl", "a") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink(missing_ok=True)
        spool.index_path(seq).unlink(missing_ok=True)
        plan.removed.append(seq)
        plan.bytes_freed += size
    return plan
