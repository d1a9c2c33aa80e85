"""Retention: delete published files older than N days, keeping their catalog rows as expired history.

A family's rows move from their table (``sweeps``, ``packages``) to its expired table (``expired_sweeps``,
``expired_packages``: the same columns plus ``expired_at``), and only then are their files deleted.

Order (what makes "no list or API response points at a deleted file" hold):

1. rewrite each affected partition: the live table keeps only the rows younger than the cutoff, the
   expired table gains the others (each write is an atomic Parquet replace);
2. publish a snapshot (the caller's ``publish``), so the API's newest snapshot no longer lists them;
3. delete the files of the moved rows.

A crash before 3 leaves files no catalog row points at (harmless, and the next passes delete them: step 3
also covers the rows of expired partitions of the last :data:`RECOVERY_DAYS` days before the cutoff).
Rows whose day is on or after the cutoff day are never touched: nothing younger than N days is deleted.
This module owns the schemas of the expired tables.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from radar_assets.lib.catalog import Catalog
from radar_assets.lib.packages.publish import PACKAGES_SCHEMA, PACKAGES_TABLE
from radar_assets.lib.sweeps import SWEEPS_SCHEMA

TS = pa.timestamp("us", tz="UTC")
_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")

#: Days before the cutoff whose expired rows' files are deleted again if still present (after a failed pass).
RECOVERY_DAYS = 7


def _expired_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([*schema, pa.field("expired_at", TS)])


EXPIRED_SWEEPS_SCHEMA = _expired_schema(SWEEPS_SCHEMA)
EXPIRED_PACKAGES_SCHEMA = _expired_schema(PACKAGES_SCHEMA)


@dataclass(frozen=True)
class Family:
    """How one catalog table's rows age and which store objects each row owns."""

    table: str
    expired_table: str
    expired_schema: pa.Schema
    id_column: str
    day_of: Callable[[dict], date]
    keys_of: Callable[[dict], list[str]]


def _sweep_keys(row: dict) -> list[str]:
    return [k for k in (row.get("png_key"), row.get("json_key"), row.get("cog_key")) if k]


def _package_keys(row: dict) -> list[str]:
    # The descriptor first: a version without it stops counting as complete at once.
    keys = [row["datapackage_key"]] if row.get("datapackage_key") else []
    return keys + [r["key"] for r in row.get("resources") or [] if r.get("key")]


SWEEPS = Family(
    "sweeps",
    "expired_sweeps",
    EXPIRED_SWEEPS_SCHEMA,
    "sweep_id",
    lambda row: row["sweep_time"].astimezone(UTC).date(),
    _sweep_keys,
)
PACKAGES = Family(
    PACKAGES_TABLE,
    "expired_packages",
    EXPIRED_PACKAGES_SCHEMA,
    "partition",
    lambda row: date.fromisoformat(row["day"]),
    _package_keys,
)


@dataclass
class ExpiryReport:
    table: str
    cutoff_day: str
    partitions: list[str] = field(default_factory=list)
    rows_expired: int = 0
    files_deleted: int = 0
    published: bool = False


def cutoff_day(days: int, now: datetime) -> date:
    """Rows of days strictly before this one expire (``days`` whole days are kept, today included)."""
    if days < 1:
        raise ValueError(f"retention must keep at least one day, got {days}")
    return (now.astimezone(UTC) - timedelta(days=days)).date() + timedelta(days=1)


def expire(
    catalog: Catalog,
    family: Family,
    days: int,
    now: datetime,
    publish: Callable[[], object],
) -> ExpiryReport:
    """Expire ``family``'s rows older than ``days`` days: move the rows, publish, then delete their files."""
    cutoff = cutoff_day(days, now)
    report = ExpiryReport(family.table, cutoff.isoformat())
    store = catalog.store
    doomed: list[str] = []
    for key in sorted(catalog.tables().get(family.table, [])):
        # Partition files are named after their partition key, which holds the day: only old ones are read.
        match = _DAY.search(key.rsplit("/", 1)[-1])
        if match is None or date.fromisoformat(match.group(1)) >= cutoff:
            continue
        table = pq.read_table(io.BytesIO(store.get_bytes(key)))
        rows = table.to_pylist()
        old = [r for r in rows if family.day_of(r) < cutoff]
        if not rows:
            continue
        partition = rows[0]["partition"]
        previous = catalog.read_partition(family.expired_table, partition)
        history = previous.to_pylist() if previous is not None else []
        doomed += [k for r in history for k in family.keys_of(r)]
        if not old:
            continue
        known = {r[family.id_column] for r in history}
        history += [{**r, "expired_at": now} for r in old if r[family.id_column] not in known]
        catalog.write_partition(
            family.expired_table, partition, pa.Table.from_pylist(history, schema=family.expired_schema)
        )
        kept = [r for r in rows if family.day_of(r) >= cutoff]
        catalog.write_partition(family.table, partition, pa.Table.from_pylist(kept, schema=table.schema))
        doomed += [k for r in old for k in family.keys_of(r)]
        report.partitions.append(partition)
        report.rows_expired += len(old)
    # Files of rows expired by an earlier pass that failed before deleting them.
    for key in catalog.tables().get(family.expired_table, []):
        match = _DAY.search(key.rsplit("/", 1)[-1])
        if match and cutoff - timedelta(days=RECOVERY_DAYS) <= date.fromisoformat(match.group(1)) < cutoff:
            for row in pq.read_table(io.BytesIO(store.get_bytes(key))).to_pylist():
                doomed += family.keys_of(row)
    present = [key for key in dict.fromkeys(doomed) if store.exists(key)]
    # Publish before any deletion, also when only leftovers of a failed pass remain: that pass's rows may
    # still be in the published snapshot.
    if report.partitions or present:
        publish()
        report.published = True
    for key in present:
        store.delete(key)
        report.files_deleted += 1
    return report
