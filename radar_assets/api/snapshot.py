"""The API's view of the catalog: the newest published snapshot, with a small cursor pool per file.

Publishing replaces ``catalog.duckdb`` with ``os.replace``, so the path names a new inode while readers of
the old one keep reading it. :class:`SnapshotManager` stats the path at most every ``check_interval``
seconds; when the file changed it opens the new one (read-only, through
:func:`radar_assets.lib.catalog.open_snapshot`) for new requests and retires the old one, whose
connection closes as soon as its last in-flight request releases its cursor.

Each request borrows one DuckDB cursor (``con.cursor()``, a connection of its own on the snapshot's
database) from the pool of the snapshot it started on, so a request never mixes two snapshots and
requests run concurrently in FastAPI's threadpool.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb

from radar_assets.api.errors import CatalogUnavailableError
from radar_assets.lib.catalog import CatalogError, open_snapshot, partition_file

log = logging.getLogger(__name__)

Ident = tuple[int, int, int, int]  # (st_dev, st_ino, st_mtime_ns, st_size): inode numbers are reused


def _ident(st: os.stat_result) -> Ident:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Times are selected as epoch microseconds: DuckDB's conversion of TIMESTAMPTZ to Python datetimes (via
# pytz) and its strftime both cost more than formatting them here. Every other value is selected as is
# and shaped by ``_CONVERT`` (measured: shaping float32 values in SQL costs more planning time than it
# saves).
_SELECT_AS = {"TIMESTAMPTZ": "epoch_us({c}::TIMESTAMPTZ)"}
_NULL_AS = {"TIMESTAMPTZ": "BIGINT"}


def _iso(us: int | None) -> str | None:
    """ISO 8601 UTC text of epoch microseconds, as pydantic writes datetimes (``...:54Z``, ``...:54.5Z``)."""
    if us is None:
        return None
    try:
        text = (_EPOCH + timedelta(microseconds=us)).isoformat()
    except OverflowError:  # beyond year 9999: not representable
        return None
    return text[:-6] + "Z"


@lru_cache(maxsize=65536)
def _float32(value: float | None) -> float | None:
    """A float32 value as its short decimal (0.9, not 0.8999999761581421); NaN and infinities as None."""
    if not isinstance(value, float):
        return value if isinstance(value, int) else None
    if not math.isfinite(value):
        return None
    return float(f"{value:.7g}")


@lru_cache(maxsize=16384)
def _float32_tuple(values: tuple) -> list:
    return [_float32(v) for v in values]


def _float32_list(values: list | None) -> list | None:
    return None if values is None else list(_float32_tuple(tuple(values)))


def _float64(value: float | None) -> float | None:
    if not isinstance(value, float):
        return value if isinstance(value, int) else None
    return value if math.isfinite(value) else None


_CONVERT = {"TIMESTAMPTZ": _iso, "FLOAT": _float32, "FLOAT[]": _float32_list, "DOUBLE": _float64}


def _select_expr(column: str, sql_type: str, present: bool) -> str:
    name = f'"{column}"'
    if not present:
        return f"NULL::{_NULL_AS.get(sql_type, sql_type)} AS {name}"
    template = _SELECT_AS.get(sql_type)
    return f"{template.format(c=name)} AS {name}" if template else name


class Snapshot:
    """One opened snapshot file: its metadata, a pool of cursors, and memoised per-snapshot answers."""

    def __init__(self, con: duckdb.DuckDBPyConnection, ident: Ident, pool_size: int):
        self._con = con
        self.ident = ident
        self.version = f"{ident[1]:x}-{ident[2]:x}"
        self._pool_size = pool_size
        self._idle: list[duckdb.DuckDBPyConnection] = []
        self._active = 0
        self._retired = False
        self._closed = False
        self._lock = threading.Lock()
        self._memo: dict[Any, Any] = {}
        self.opened_at = time.time()
        self.columns: dict[str, dict[str, str]] = {}
        self.row_counts: dict[str, int] = {}
        self.published_at: datetime | None = None
        #: (table, partition file uri) -> file version: what the snapshot was built from.
        self.files: dict[tuple[str, str], str] = {}
        #: Hash of the catalog content (its files and versions): equal fingerprints, equal catalogs.
        self.fingerprint = self.version
        self._load_meta()

    def _load_meta(self) -> None:
        cur = self._con.cursor()
        try:
            for table, column, dtype in cur.execute(
                "SELECT table_name, column_name, data_type FROM duckdb_columns() "
                "WHERE database_name = current_database() AND schema_name = 'main' "
                "ORDER BY table_name, column_index"
            ).fetchall():
                self.columns.setdefault(table, {})[column] = dtype
            counts: dict[str, int] | None = None
            if {"published_at", "row_counts"} <= set(self.columns.get("catalog_meta", {})):
                row = cur.execute("SELECT published_at, row_counts FROM catalog_meta LIMIT 1").fetchone()
                if row is not None:
                    self.published_at = row[0]
                    try:
                        loaded = json.loads(row[1]) if isinstance(row[1], str) else row[1]
                        counts = {str(k): int(v) for k, v in dict(loaded).items()}
                    except (TypeError, ValueError):
                        counts = None
            if {"table_name", "uri", "version"} <= set(self.columns.get("catalog_files", {})):
                rows = cur.execute("SELECT table_name, uri, version FROM catalog_files").fetchall()
                self.files = {(str(t), str(u)): str(v) for t, u, v in rows}
                digest = hashlib.sha256(json.dumps(sorted(self.files.items())).encode())
                self.fingerprint = digest.hexdigest()[:32]
            if counts is None:
                counts = {}
                for table in self.data_tables():
                    counts[table] = cur.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            self.row_counts = counts
        finally:
            cur.close()

    # -- tables ------------------------------------------------------------------------------------
    def data_tables(self) -> list[str]:
        """Catalog tables, without the publisher's own (``catalog_meta``, ``catalog_files``, ...)."""
        return sorted(t for t in self.columns if not t.startswith("catalog_"))

    def has_table(self, table: str) -> bool:
        return table in self.columns

    def select_list(self, table: str, columns: dict[str, str]) -> str:
        """Select expressions for the wanted columns (names and types come from code, never requests).

        Times are selected as epoch microseconds (see ``_SELECT_AS``). Columns an older snapshot lacks
        read as NULL instead of failing the query.
        """
        have = self.columns.get(table, {})
        return ", ".join(_select_expr(c, t, c in have) for c, t in columns.items())

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """Answer computed once per snapshot (the file never changes)."""
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = compute()
            return value

    # -- pool --------------------------------------------------------------------------------------
    def acquire(self) -> duckdb.DuckDBPyConnection | None:
        with self._lock:
            if self._closed:
                return None
            self._active += 1
            if self._idle:
                return self._idle.pop()
            try:
                return self._con.cursor()
            except BaseException:
                self._active -= 1
                raise

    def release(self, cur: duckdb.DuckDBPyConnection) -> None:
        close_all = False
        with self._lock:
            self._active -= 1
            if not self._retired and len(self._idle) < self._pool_size:
                self._idle.append(cur)
                cur = None
            close_all = self._retired and self._active == 0
        if cur is not None:
            cur.close()
        if close_all:
            self._close()

    def retire(self) -> None:
        """No new requests will use this snapshot; close it once the in-flight ones are done."""
        with self._lock:
            self._retired = True
            idle = self._active == 0
        if idle:
            self._close()

    def _close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
        for cur in idle:
            cur.close()
        self._con.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def age_seconds(self) -> float | None:
        if self.published_at is None:
            return None
        return max(0.0, (datetime.now(UTC) - self.published_at).total_seconds())


class Session:
    """One borrowed cursor on one snapshot; all queries take parameters, never formatted values."""

    def __init__(self, snapshot: Snapshot, cursor: duckdb.DuckDBPyConnection):
        self.snapshot = snapshot
        self.cursor = cursor

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.cursor.execute(sql, list(params))
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def select(
        self, table: str, columns: dict[str, str], tail: str, params: Sequence[Any] = ()
    ) -> list[dict[str, Any]]:
        """``SELECT <columns> FROM <table> <tail>``, values shaped for JSON (see ``_CONVERT``).

        ``tail`` (WHERE/ORDER BY/LIMIT) holds only ``?`` placeholders for request values; ORDER BY must
        name the table's columns qualified (``scans."volume_start"``), not the shaped ones.
        """
        sql = f"SELECT {self.snapshot.select_list(table, columns)} FROM {table}{tail}"
        rows = self.cursor.execute(sql, list(params)).fetchall()
        names = list(columns)
        convert = [(i, names[i], _CONVERT[t]) for i, t in enumerate(columns.values()) if t in _CONVERT]
        out = []
        for row in rows:
            item = dict(zip(names, row, strict=True))
            for i, name, fn in convert:
                item[name] = fn(row[i])
            out.append(item)
        return out


#: At most this many new sweep ids are remembered per publication (events list at most as many).
MAX_REMEMBERED_SWEEPS = 1000


@dataclass(frozen=True)
class Publication:
    """One snapshot as the manager first saw it, compared with the one it replaced.

    ``changed`` is False when the new file holds the same catalog files as the previous one (a publish
    with nothing new); ``new_sweeps`` lists the sweep ids the new snapshot added (None: unknown, e.g. the
    first snapshot this process opened).
    """

    version: str
    previous_version: str | None
    published_at: datetime | None
    row_counts: dict[str, int]
    changed: bool
    new_sweeps: tuple[str, ...] | None
    new_sweeps_truncated: bool = False


def new_sweep_ids(old: Snapshot, new: Snapshot) -> tuple[str, ...]:
    """Sweep ids in ``new`` and not in ``old``, read only from the ``sweeps`` partitions whose file changed."""
    changed = {
        uri.rsplit("/", 1)[-1].removesuffix(".parquet")
        for (table, uri), version in new.files.items()
        if table == "sweeps" and old.files.get((table, uri)) != version
    }
    if not changed or not new.has_table("sweeps"):
        return ()

    def ids(snap: Snapshot, partitions: list[str]) -> list[str]:
        cur = snap.acquire()
        if cur is None:
            return []
        try:
            marks = ", ".join("?" for _ in partitions)
            return [
                r[0]
                for r in cur.execute(
                    f'SELECT "sweep_id" FROM sweeps WHERE "partition" IN ({marks}) AND "sweep_id" IS NOT NULL '
                    'ORDER BY "sweep_time", "sweep_id"',
                    partitions,
                ).fetchall()
            ]
        finally:
            snap.release(cur)

    cur = new.acquire()
    if cur is None:
        return ()
    try:
        names = [r[0] for r in cur.execute('SELECT DISTINCT "partition" FROM sweeps').fetchall()]
    finally:
        new.release(cur)
    partitions = [p for p in names if p is not None and partition_file(p) in changed]
    if not partitions:
        return ()
    before = set(ids(old, partitions)) if old.has_table("sweeps") else set()
    return tuple(i for i in ids(new, partitions) if i not in before)


class SnapshotManager:
    """Newest snapshot at ``path``, re-checked at most every ``check_interval`` seconds.

    It remembers the last ``history`` publications it saw (:class:`Publication`), so an event stream can
    say what changed since any recent version a client names.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        pool_size: int = 16,
        check_interval: float = 1.0,
        duckdb_threads: int = 1,
    ):
        self.path = Path(path)
        # Requests run concurrently, each a short query: one DuckDB thread per query avoids waking a
        # worker pool for every one of them (measured: about 20% more queries per second on 2 cores).
        self.duckdb_config = {"threads": duckdb_threads}
        self.pool_size = pool_size
        self.check_interval = check_interval
        self._snapshot: Snapshot | None = None
        self._checked = -math.inf
        self._lock = threading.Lock()
        self._history: deque[Publication] = deque(maxlen=256)

    def checked(self) -> Snapshot | None:
        """The newest snapshot when it was checked less than ``check_interval`` ago, else None: never any
        I/O, so code on the event loop can use it (:meth:`current` may open a new snapshot)."""
        snap = self._snapshot
        if snap is not None and time.monotonic() - self._checked < self.check_interval:
            return snap
        return None

    def current(self) -> Snapshot:
        """The newest snapshot; stats the path when the last check is ``check_interval`` old."""
        snap = self._snapshot
        if snap is not None and time.monotonic() - self._checked < self.check_interval:
            return snap
        with self._lock:
            snap = self._snapshot
            if snap is not None and time.monotonic() - self._checked < self.check_interval:
                return snap
            self._checked = time.monotonic()
            try:
                ident = _ident(os.stat(self.path))
            except OSError:
                if snap is not None:  # keep serving the file we have
                    return snap
                raise CatalogUnavailableError(
                    "no catalog snapshot has been published yet: materialise an asset and publish the catalog"
                ) from None
            if snap is not None and snap.ident == ident:
                return snap
            try:
                new = self._open(ident)
            except (CatalogError, duckdb.Error, OSError) as exc:
                log.warning("cannot open catalog snapshot %s: %s", self.path, exc)
                self._checked = -math.inf  # try again on the next request
                if snap is not None:
                    return snap
                raise CatalogUnavailableError("the catalog snapshot cannot be opened") from None
            self._snapshot = new
            self._record(snap, new)
            if snap is not None:
                snap.retire()
            log.info("catalog snapshot %s opened (%s)", new.version, new.row_counts)
            return new

    def _record(self, old: Snapshot | None, new: Snapshot) -> None:
        new_sweeps: tuple[str, ...] | None = None
        truncated = False
        if old is not None:
            try:
                new_sweeps = new_sweep_ids(old, new)
            except duckdb.Error as exc:  # an announcement is not worth failing a request for
                log.warning("cannot list the new sweeps of snapshot %s: %s", new.version, exc)
        if (
            new_sweeps is not None and len(new_sweeps) > MAX_REMEMBERED_SWEEPS
        ):  # a backfill: memory stays bounded
            new_sweeps, truncated = new_sweeps[:MAX_REMEMBERED_SWEEPS], True
        self._history.append(
            Publication(
                version=new.version,
                previous_version=old.version if old is not None else None,
                published_at=new.published_at,
                row_counts=dict(new.row_counts),
                changed=old is None or old.fingerprint != new.fingerprint,
                new_sweeps=new_sweeps,
                new_sweeps_truncated=truncated,
            )
        )

    def publication(self, version: str | None) -> Publication | None:
        """The remembered publication of ``version`` (None when it is unknown or too old)."""
        for pub in reversed(self._history):
            if pub.version == version:
                return pub
        return None

    def publications_since(self, version: str) -> list[Publication] | None:
        """Publications after ``version`` up to the newest, oldest first; None when ``version`` is not remembered."""
        history = list(self._history)
        for i in range(len(history) - 1, -1, -1):
            if history[i].version == version:
                return history[i + 1 :]
        return None

    def _open(self, ident: Ident) -> Snapshot:
        con = open_snapshot(self.path, isolated=True, config=self.duckdb_config)
        try:
            return Snapshot(con, ident, self.pool_size)
        except BaseException:
            con.close()
            raise

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Borrow a cursor on the newest snapshot for the duration of one request."""
        for _ in range(5):
            snap = self.current()
            cur = snap.acquire()
            if cur is not None:
                break
        else:  # pragma: no cover - only if snapshots are swapped faster than we can borrow a cursor
            raise CatalogUnavailableError("the catalog snapshot is being replaced; try again")
        try:
            yield Session(snap, cur)
        finally:
            snap.release(cur)

    def close(self) -> None:
        with self._lock:
            snap, self._snapshot = self._snapshot, None
        if snap is not None:
            snap.retire()
