"""The catalog: Parquet per partition per table, published as an immutable DuckDB snapshot.

DuckDB allows one read-write process or many read-only ones, never both. So assets never open DuckDB for
writing: each writes its partition's rows as one Parquet file (atomically, replacing the partition's previous
file). A single writer (:meth:`Catalog.publish`, a Dagster pool of size 1 and a file lock) builds a complete new
DuckDB file beside the current one and swaps it in with ``os.replace``. Readers open the newest snapshot
read-only; a reader that opened the previous file keeps reading that inode until it reopens.

Invariants
----------
- ``catalog/<table>/<partition>.parquet`` holds exactly the rows of one partition; writing it again replaces them.
- ``<snapshot_dir>/catalog.duckdb`` is always a complete snapshot or absent, never partial.
- A snapshot contains one table per catalog table, plus ``catalog_meta`` (publish time, row counts).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from radar_assets.lib.store import LocalStore, ObjectStore, S3Store

SNAPSHOT_NAME = "catalog.duckdb"
_SAFE = re.compile(r"[^A-Za-z0-9_.=-]")
_TABLE = re.compile(r"^[a-z][a-z0-9_]*$")
_META_TABLES = {"catalog_meta", "catalog_files", "catalog_tables"}
# Rows appended by incremental publishes are sorted only among themselves; once they outnumber the table's
# sorted rows, the table is rebuilt in sort order. Doubling keeps the amortised cost of re-sorting at one
# extra write per row (a quarter made a fast-growing feed table rebuild every few publishes).
RESORT_FRACTION = 1.0
# Live-feed tables: their rows arrive in time order, so rows appended by incremental publishes already have
# tight time zone maps; re-sorting the whole table as it doubles would land inside a feed run, whose length
# is the feed's record -> queryable latency. The nightly compaction (publish(incremental=False)) sorts them.
APPEND_ORDERED = frozenset({"feed_records", "echoes"})

# Sort order of each table in the snapshot: DuckDB's min/max zone maps then prune row groups for the
# API's usual filters (site + time range) without secondary indexes.
SORT_KEYS: dict[str, str] = {
    "scans": "site, volume_start",
    "rejects": "site, source_key",
    "sweeps": "site, scan_id, moment, sweep_index",
    "echoes": "station, record_time",
    "echo_scans": "station, scan_start",
    "feed_gaps": "station, gap_start",
    "feed_records": "station, record_time",
    "feed_rejects": "received_at",
    "timeseries": "boundary, product, time",
    "boundaries": "id",
}


class CatalogError(Exception):
    """A catalog operation failed (missing snapshot, a write attempted through a read, ...)."""


class ReadOnlyQueryError(CatalogError):
    """A statement other than a read was given to a read-only entry point."""


_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
}


def duckdb_type(t: pa.DataType) -> str:
    """DuckDB type of an Arrow column type as ``read_parquet`` loads it into the snapshot."""
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ" if t.tz else "TIMESTAMP"
    if pa.types.is_list(t):
        return duckdb_type(t.value_type) + "[]"
    try:
        return _DUCKDB_TYPES[t]
    except KeyError:
        raise CatalogError(f"no DuckDB type for Arrow type {t}") from None


def columns_of(
    schema: pa.Schema, names: list[str] | tuple[str, ...] | None = None, exclude: set[str] = frozenset()
) -> dict[str, str]:
    """Column name -> DuckDB type of a table's schema (its owner module's), for readers of the snapshot.

    ``names`` picks and orders a subset; ``exclude`` drops columns a reader must not expose.
    """
    wanted = names if names is not None else schema.names
    return {n: duckdb_type(schema.field(n).type) for n in wanted if n not in exclude}


def partition_file(partition: str) -> str:
    """File-safe name of a Dagster partition key (``2021-06-25|KLOT`` -> ``2021-06-25__KLOT``)."""
    return _SAFE.sub("_", partition.replace("|", "__")) or "_"


class Catalog:
    """Catalog tables stored as Parquet in ``store`` under ``prefix``; snapshots in ``snapshot_dir``."""

    def __init__(self, store: ObjectStore, snapshot_dir: str | Path, prefix: str = "catalog"):
        self.store = store
        self.snapshot_dir = Path(snapshot_dir)
        self.prefix = prefix.strip("/")

    # -- partitions -------------------------------------------------------------------------------
    def partition_key(self, table: str, partition: str) -> str:
        if not _TABLE.match(table):
            raise CatalogError(f"invalid catalog table name {table!r}")
        return f"{self.prefix}/{table}/{partition_file(partition)}.parquet"

    def write_partition(self, table: str, partition: str, rows: pa.Table) -> str:
        """Replace the rows of one partition of ``table`` (atomic). Returns the store key."""
        buf = io.BytesIO()
        pq.write_table(rows, buf, compression="zstd")
        key = self.partition_key(table, partition)
        self.store.put_bytes(key, buf.getvalue())
        return key

    def read_partition(self, table: str, partition: str) -> pa.Table | None:
        key = self.partition_key(table, partition)
        if not self.store.exists(key):
            return None
        return pq.read_table(io.BytesIO(self.store.get_bytes(key)))

    def tables(self) -> dict[str, list[str]]:
        """Catalog table name -> its partition files' store keys."""
        out: dict[str, list[str]] = {}
        for key in self.store.list_keys(self.prefix + "/"):
            parts = key[len(self.prefix) + 1 :].split("/")
            if len(parts) == 2 and parts[1].endswith(".parquet") and _TABLE.match(parts[0]):
                out.setdefault(parts[0], []).append(key)
        return out

    # -- snapshots --------------------------------------------------------------------------------
    @property
    def snapshot_path(self) -> Path:
        return self.snapshot_dir / SNAPSHOT_NAME

    @contextmanager
    def _publish_lock(self) -> Iterator[None]:
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        with open(self.snapshot_dir / ".publish.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _register_source(self, con: duckdb.DuckDBPyConnection) -> None:
        if isinstance(self.store, S3Store):
            import s3fs

            fs = s3fs.S3FileSystem(
                anon=self.store.anonymous,
                key=self.store.access_key_id,
                secret=self.store.secret_access_key,
                client_kwargs={"endpoint_url": self.store.endpoint_url} if self.store.endpoint_url else {},
            )
            con.register_filesystem(fs)

    def _versions(self) -> dict[str, dict[str, str]]:
        """Catalog table -> {partition file URI: version} of every Parquet partition file."""
        out: dict[str, dict[str, str]] = {}
        for key, version in self.store.list_versions(self.prefix + "/"):
            parts = key[len(self.prefix) + 1 :].split("/")
            if len(parts) == 2 and parts[1].endswith(".parquet") and _TABLE.match(parts[0]):
                out.setdefault(parts[0], {})[self.store.uri(key)] = version
        return out

    def publish(self, incremental: bool = True) -> dict[str, int]:
        """Build a new snapshot from every partition file and swap it in atomically.

        Incremental by default: the previous snapshot is copied and only the rows of partition files that
        were added, rewritten or deleted since it was published are replaced (each row carries ``_file``,
        the Parquet file it came from). A table whose files changed schema is rebuilt from all its files.
        Returns the row count of each table. Only one publish runs at a time (file lock); readers are never
        blocked because the new file is built under a temporary name and renamed over the old one.
        """
        with self._publish_lock():
            tmp = self.snapshot_dir / f".catalog-{uuid.uuid4().hex}.duckdb.tmp"
            counts: dict[str, int] = {}
            files = self._versions()
            try:
                previous = self._published_files() if incremental else None
                if previous is not None:
                    shutil.copyfile(self.snapshot_path, tmp)
                con = duckdb.connect(str(tmp))
                try:
                    self._register_source(con)
                    existing = {
                        r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
                    }
                    for table in sorted(existing - set(files) - _META_TABLES):
                        con.execute(f'DROP TABLE "{table}"')
                    order = self._sort_state(con) if "catalog_tables" in existing else {}
                    for table, versions in sorted(files.items()):
                        old = (previous or {}).get(table)
                        sorted_rows, appended = order.get(table, (0, 0))
                        rebuild = old is None or table not in existing
                        if not rebuild:
                            stale = sorted(u for u in old if versions.get(u) != old[u])
                            fresh = sorted(u for u in versions if old.get(u) != versions[u])
                            added = self._patch(con, table, stale, fresh)
                            appended += max(added, 0)
                            resort = table not in APPEND_ORDERED and appended > RESORT_FRACTION * sorted_rows
                            rebuild = added < 0 or resort
                        if rebuild:
                            self._rebuild(con, table, sorted(versions), replace=table in existing)
                            sorted_rows = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                            appended = 0
                        order[table] = (sorted_rows, appended)
                        counts[table] = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                    con.execute(
                        "CREATE OR REPLACE TABLE catalog_tables "
                        "(table_name VARCHAR, sorted_rows BIGINT, appended_rows BIGINT)"
                    )
                    con.executemany(
                        "INSERT INTO catalog_tables VALUES (?, ?, ?)",
                        [(t, *order[t]) for t in sorted(files)],
                    )
                    con.execute(
                        "CREATE OR REPLACE TABLE catalog_files (table_name VARCHAR, uri VARCHAR, version VARCHAR)"
                    )
                    con.executemany(
                        "INSERT INTO catalog_files VALUES (?, ?, ?)",
                        [(t, u, v) for t, vs in sorted(files.items()) for u, v in sorted(vs.items())],
                    )
                    con.execute(
                        "CREATE OR REPLACE TABLE catalog_meta AS "
                        "SELECT ?::TIMESTAMPTZ AS published_at, ?::JSON AS row_counts",
                        [datetime.now(UTC), json.dumps(counts)],
                    )
                    con.execute("CHECKPOINT")
                finally:
                    con.close()
                os.replace(tmp, self.snapshot_path)
            finally:
                tmp.unlink(missing_ok=True)
                Path(str(tmp) + ".wal").unlink(missing_ok=True)
            return counts

    def _published_files(self) -> dict[str, dict[str, str]] | None:
        """The partition files (and versions) the current snapshot was built from; None to rebuild all."""
        if not self.snapshot_path.is_file():
            return None
        try:
            con = duckdb.connect(str(self.snapshot_path), read_only=True)
        except duckdb.Error:
            return None
        try:
            rows = con.execute("SELECT table_name, uri, version FROM catalog_files").fetchall()
        except duckdb.Error:  # a snapshot from before incremental publishing
            return None
        finally:
            con.close()
        out: dict[str, dict[str, str]] = {}
        for table, uri, version in rows:
            out.setdefault(table, {})[uri] = version
        return out

    @staticmethod
    def _select(con: duckdb.DuckDBPyConnection, uris: list[str], table: str) -> str:
        select = (
            "SELECT * EXCLUDE (filename), filename AS _file "
            f"FROM read_parquet({uris!r}, union_by_name=true, filename=true)"
        )
        columns = {row[0] for row in con.execute(f"DESCRIBE {select}").fetchall()}
        order = [c.strip() for c in SORT_KEYS.get(table, "").split(",") if c.strip() in columns]
        return select + (f" ORDER BY {', '.join(order)}" if order else "")

    def _rebuild(self, con: duckdb.DuckDBPyConnection, table: str, uris: list[str], replace: bool) -> None:
        verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
        con.execute(f'{verb} "{table}" AS {self._select(con, uris, table)}')

    @staticmethod
    def _sort_state(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
        rows = con.execute("SELECT table_name, sorted_rows, appended_rows FROM catalog_tables").fetchall()
        return {t: (int(s), int(a)) for t, s, a in rows}

    def _patch(self, con, table: str, stale: list[str], fresh: list[str]) -> int:
        """Replace the rows of changed files; returns the rows appended, or -1 when the table must be rebuilt."""
        if not stale and not fresh:
            return 0
        try:
            con.execute("BEGIN")
            if stale:
                con.execute(f'DELETE FROM "{table}" WHERE _file IN (SELECT unnest(?::VARCHAR[]))', [stale])
            added = 0
            if fresh:
                added = con.execute(
                    f'INSERT INTO "{table}" BY NAME {self._select(con, fresh, table)}'
                ).fetchone()[0]
            con.execute("COMMIT")
            return int(added)
        except duckdb.Error:
            # New columns or types in the changed files: the caller rebuilds the table from all of its files.
            con.execute("ROLLBACK")
            return -1

    def connect_readonly(self) -> duckdb.DuckDBPyConnection:
        return open_snapshot(self.snapshot_path)


def open_snapshot(
    path: str | Path, retries: int = 5, *, isolated: bool = False, config: dict | None = None
) -> duckdb.DuckDBPyConnection:
    """Open a published snapshot read-only (writes through this connection fail in DuckDB itself).

    ``isolated=True`` is for long-running readers that reopen the path after each publish (the API):
    ``duckdb.connect`` keeps one database instance per path per process, so while any connection to the
    replaced file is still open it hands that old file back. An isolated snapshot is attached
    ``READ_ONLY`` to a private in-memory instance (whose own database is then detached), with file-system
    access disabled and the configuration locked, so it always reads the file the path names now.
    ``config`` (DuckDB settings such as ``{"threads": 1}``) applies to that private instance.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(
            f"no catalog snapshot at {path}: materialise an asset and publish the catalog first"
        )
    last: Exception | None = None
    for attempt in range(retries):
        try:
            if not isolated:
                return duckdb.connect(str(path), read_only=True)
            con = duckdb.connect(":memory:", config=dict(config or {}))
            try:
                literal = str(path.resolve()).replace("'", "''")
                con.execute(f"ATTACH '{literal}' AS snapshot (READ_ONLY)")
                for statement in (
                    "USE snapshot",
                    "DETACH memory",
                    "SET GLOBAL TimeZone = 'UTC'",
                    "SET enable_external_access = false",
                    "SET lock_configuration = true",
                ):
                    con.execute(statement)
            except BaseException:
                con.close()
                raise
            return con
        except duckdb.IOException as exc:  # the file was swapped between stat and open
            last = exc
            time.sleep(0.05 * (attempt + 1))
    raise CatalogError(f"cannot open catalog snapshot {path}: {last}")


_READ_TYPES = {"SELECT", "EXPLAIN", "PRAGMA"}


def check_read_only(sql: str) -> None:
    """Refuse anything but a read (one or more SELECT/EXPLAIN statements)."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ReadOnlyQueryError(f"cannot parse query: {exc}") from exc
    if not statements:
        raise ReadOnlyQueryError("empty query")
    for st in statements:
        kind = st.type.name if hasattr(st.type, "name") else str(st.type)
        if kind not in ("SELECT", "EXPLAIN"):
            raise ReadOnlyQueryError(
                f"only reads are allowed, got a {kind} statement: {st.query.strip()[:80]!r}"
            )


def query_readonly(snapshot: str | Path, sql: str) -> tuple[list[str], list[tuple]]:
    """Run a read on the newest snapshot; returns (column names, rows)."""
    check_read_only(sql)
    con = open_snapshot(snapshot)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description or []]
        return cols, cur.fetchall()
    finally:
        con.close()


def local_catalog(root: str | Path) -> Catalog:
    """The embedded default: Parquet and snapshot both under ``root``."""
    root = Path(root)
    return Catalog(LocalStore(root / "store"), root / "catalog")
