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
import os
import re
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

# Sort order of each table in the snapshot: DuckDB's min/max zone maps then prune row groups for the
# API's usual filters (site + time range) without secondary indexes.
SORT_KEYS: dict[str, str] = {
    "scans": "site, volume_start",
    "rejects": "site, source_key",
    "sweeps": "site, scan_id, moment, sweep_index",
    "echoes": "station, record_time",
    "echo_scans": "station, scan_start",
    "feed_gaps": "station, gap_start",
}


class CatalogError(Exception):
    """A catalog operation failed (missing snapshot, a write attempted through a read, ...)."""


class ReadOnlyQueryError(CatalogError):
    """A statement other than a read was given to a read-only entry point."""


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

    def publish(self) -> dict[str, int]:
        """Build a new snapshot from every partition file and swap it in atomically.

        Returns the row count of each table. Only one publish runs at a time (file lock); readers are never
        blocked because the new file is built under a temporary name and renamed over the old one.
        """
        with self._publish_lock():
            tmp = self.snapshot_dir / f".catalog-{uuid.uuid4().hex}.duckdb.tmp"
            counts: dict[str, int] = {}
            try:
                con = duckdb.connect(str(tmp))
                try:
                    self._register_source(con)
                    for table, keys in sorted(self.tables().items()):
                        uris = [self.store.uri(k) for k in sorted(keys)]
                        order = SORT_KEYS.get(table)
                        select = f"SELECT * FROM read_parquet({uris!r}, union_by_name=true)"
                        if order:
                            select += f" ORDER BY {order}"
                        con.execute(f'CREATE TABLE "{table}" AS {select}')
                        counts[table] = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                    con.execute(
                        "CREATE TABLE catalog_meta AS SELECT ?::TIMESTAMPTZ AS published_at, ?::JSON AS row_counts",
                        [datetime.now(UTC), __import__("json").dumps(counts)],
                    )
                    con.execute("CHECKPOINT")
                finally:
                    con.close()
                os.replace(tmp, self.snapshot_path)
            finally:
                tmp.unlink(missing_ok=True)
                Path(str(tmp) + ".wal").unlink(missing_ok=True)
            return counts

    def connect_readonly(self) -> duckdb.DuckDBPyConnection:
        return open_snapshot(self.snapshot_path)


def open_snapshot(path: str | Path, retries: int = 5, *, isolated: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a published snapshot read-only (writes through this connection fail in DuckDB itself).

    ``isolated=True`` is for long-running readers that reopen the path after each publish (the API):
    ``duckdb.connect`` keeps one database instance per path per process, so while any connection to the
    replaced file is still open it hands that old file back. An isolated snapshot is attached
    ``READ_ONLY`` to a private in-memory instance (whose own database is then detached), with file-system
    access disabled and the configuration locked, so it always reads the file the path names now.
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
            con = duckdb.connect(":memory:")
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
