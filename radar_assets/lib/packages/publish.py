"""Atomic, versioned publication of boundary packages on an object store, and the ``packages`` catalog table.

Layout: ``packages/{boundary}/{day}/{version}/`` holds ``datapackage.json`` and the resources at the paths
the descriptor names (``rasters/*.tif``, ``timeseries.csv``, ``preview.png``); ``version`` is the content
hash of :mod:`radar_assets.lib.packages.build`.

Protocol (one partition, under its lock):

1. If ``{version}/datapackage.json`` exists and every resource it lists matches its bytes and hash, the
   version is complete: nothing is written (a re-run with unchanged inputs writes no file).
2. Otherwise every resource is written (each ``put_bytes`` is atomic), **then** ``datapackage.json``.
3. The catalog row (``packages`` table, partition ``boundary|day``) is switched to the version by one
   atomic Parquet replace (:meth:`radar_assets.lib.catalog.Catalog.write_partition`), unless it already
   points at it.
4. Only then are the other versions under the partition's prefix (the replaced one, leftovers of killed
   runs) deleted.

Readers go through the catalog row (or :func:`complete_versions`, which lists only versions with a
``datapackage.json``), so they never see a version whose files are still being written, and a process
killed at any point leaves the previous version listed and intact.

Concurrency: :func:`partition_lock` serialises publications of one partition with an exclusive
``fcntl`` lock on a file in ``lock_dir`` (every process on one host: the embedded deployment, tests).
Across hosts the Dagster layer runs at most one run per partition key (run-level tag concurrency), the
same guarantee the lock gives locally. Without either, two writers of the same version still write
identical bytes; only the deletion of step 4 needs the exclusion.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from radar_assets.lib.catalog import Catalog, partition_file
from radar_assets.lib.packages.build import BuiltPackage, package_prefix
from radar_assets.lib.packages.descriptor import DATAPACKAGE_NAME, sha256_hex
from radar_assets.lib.partitions import boundary_day
from radar_assets.lib.store import ObjectStore

PACKAGES_TABLE = "packages"

RESOURCE_STRUCT = pa.struct(
    [
        ("name", pa.string()),
        ("path", pa.string()),
        ("key", pa.string()),
        ("format", pa.string()),
        ("mediatype", pa.string()),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
    ]
)

#: One row per published package (the current version of a boundary x day partition).
PACKAGES_SCHEMA = pa.schema(
    [
        ("boundary", pa.string()),
        ("boundary_name", pa.string()),
        ("day", pa.string()),  # YYYY-MM-DD (ISO text sorts and compares as dates)
        ("version", pa.string()),
        ("resource_count", pa.int32()),
        ("total_bytes", pa.int64()),
        ("prefix", pa.string()),
        ("datapackage_key", pa.string()),
        ("datapackage_sha256", pa.string()),
        ("resources", pa.list_(RESOURCE_STRUCT)),
        ("run_id", pa.string()),
        ("published_at", pa.timestamp("us", tz="UTC")),
        ("partition", pa.string()),
    ]
)


@contextmanager
def partition_lock(lock_dir: str | Path | None, boundary: str, day: str) -> Iterator[None]:
    """Exclusive lock of one partition's publication (no-op when ``lock_dir`` is None).

    The kernel releases an ``flock`` when its holder dies, so a killed run never leaves it held.
    """
    if lock_dir is None:
        yield
        return
    root = Path(lock_dir)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"package-{partition_file(boundary_day(boundary, day))}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class PublishResult:
    """What a publication did.

    Attributes
    ----------
    status : str
        ``written`` (new version published), ``unchanged`` (the catalog already pointed at this complete
        version: nothing written), ``switched`` (complete version found, only the catalog row written),
        ``no-package`` (nothing covers the boundary; any previous package withdrawn).
    version : str or None
        The published version.
    written : list of str
        Store keys written (payload files and ``datapackage.json``).
    deleted : list of str
        Store keys of other versions removed after the switch.
    row : dict or None
        The catalog row now current.
    """

    status: str
    version: str | None
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    row: dict | None = None


def package_row(built: BuiltPackage, datapackage: bytes, run_id: str, published_at: datetime) -> dict:
    prefix = built.prefix
    return {
        "boundary": built.boundary,
        "boundary_name": built.boundary_name,
        "day": built.day,
        "version": built.version,
        "resource_count": len(built.files),
        "total_bytes": sum(len(f.data) for f in built.files) + len(datapackage),
        "prefix": prefix,
        "datapackage_key": prefix + DATAPACKAGE_NAME,
        "datapackage_sha256": sha256_hex(datapackage),
        "resources": [
            {
                "name": f.name,
                "path": f.path,
                "key": prefix + f.path,
                "format": f.format,
                "mediatype": f.mediatype,
                "bytes": len(f.data),
                "sha256": f.sha256,
            }
            for f in built.files
        ],
        "run_id": run_id,
        "published_at": published_at,
        "partition": boundary_day(built.boundary, built.day),
    }


def current_package(catalog: Catalog, boundary: str, day: str) -> dict | None:
    """The catalog row of the partition's current package (read from its Parquet file, so never stale)."""
    table = catalog.read_partition(PACKAGES_TABLE, boundary_day(boundary, day))
    if table is None or table.num_rows == 0:
        return None
    return table.to_pylist()[0]


def complete_versions(store: ObjectStore, boundary: str, day: str) -> list[str]:
    """Versions of a partition that have a ``datapackage.json`` (the only ones ever listed or served)."""
    prefix = package_prefix(boundary, day)
    out = []
    for key in store.list_keys(prefix):
        version, _, rest = key[len(prefix) :].partition("/")
        if rest == DATAPACKAGE_NAME:
            out.append(version)
    return sorted(out)


def _stored_matches(store: ObjectStore, key: str, sha256: str) -> bool:
    try:
        return store.exists(key) and hashlib.sha256(store.get_bytes(key)).hexdigest() == sha256
    except Exception:
        return False


def _complete(store: ObjectStore, built: BuiltPackage) -> bytes | None:
    """The stored ``datapackage.json`` of ``built.version`` when it and every resource it lists are intact."""
    key = built.prefix + DATAPACKAGE_NAME
    if not store.exists(key):
        return None
    try:
        stored = store.get_bytes(key)
        descriptor = json.loads(stored)
    except (ValueError, OSError):
        return None
    listed = {r["path"]: r.get("hash", "") for r in descriptor.get("resources", [])}
    expected = {f.path: f"sha256:{f.sha256}" for f in built.files}
    if listed != expected:
        return None
    if all(_stored_matches(store, built.prefix + f.path, f.sha256) for f in built.files):
        return stored
    return None


def withdraw(
    store: ObjectStore, catalog: Catalog, boundary: str, day: str, keep: str | None = None
) -> list[str]:
    """Delete every object under the partition's prefix except version ``keep``; returns the keys deleted."""
    prefix = package_prefix(boundary, day)
    keep_prefix = f"{prefix}{keep}/" if keep else None
    deleted = []
    for key in list(store.list_keys(prefix)):
        if keep_prefix and key.startswith(keep_prefix):
            continue
        # datapackage.json first, so a version being removed stops counting as complete at once.
        deleted.append(key)
    deleted.sort(key=lambda k: (not k.endswith("/" + DATAPACKAGE_NAME), k))
    for key in deleted:
        store.delete(key)
    return deleted


def publish_package(
    store: ObjectStore,
    catalog: Catalog,
    built: BuiltPackage | None,
    *,
    boundary: str,
    day: str,
    run_id: str = "",
    lock_dir: str | Path | None = None,
    now: Callable[[], datetime] | None = None,
    on_write: Callable[[str], None] | None = None,
) -> PublishResult:
    """Publish ``built`` as the current package of ``boundary`` x ``day`` (see the module docstring).

    Parameters
    ----------
    store : ObjectStore
        Where packages live (``packages/...``).
    catalog : Catalog
        Catalog whose ``packages`` partition is switched.
    built : BuiltPackage or None
        The package; ``None`` means nothing covers the boundary: any previous package is withdrawn (its
        catalog row emptied first, then its files deleted) and nothing is published.
    boundary, day : str
        The partition.
    run_id : str
        Recorded in the catalog row.
    lock_dir : path, optional
        Directory of the per-partition lock files (see :func:`partition_lock`).
    now : callable, optional
        Clock for ``published_at``.
    on_write : callable, optional
        Called with each store key right after it is written (progress; tests use it to kill a writer).
    """
    if built is not None and (built.boundary, built.day) != (boundary, day):
        raise ValueError(f"package of {built.boundary} {built.day} published as {boundary} {day}")
    key = boundary_day(boundary, day)
    clock = now or (lambda: datetime.now(UTC))
    with partition_lock(lock_dir, boundary, day):
        current = current_package(catalog, boundary, day)
        if built is None:
            if current is not None:
                catalog.write_partition(PACKAGES_TABLE, key, pa.Table.from_pylist([], schema=PACKAGES_SCHEMA))
            return PublishResult("no-package", None, deleted=withdraw(store, catalog, boundary, day))
        written: list[str] = []
        stored = _complete(store, built)
        if stored is None:
            for f in built.files:
                store.put_bytes(built.prefix + f.path, f.data)
                written.append(built.prefix + f.path)
                if on_write:
                    on_write(written[-1])
            stored = built.datapackage
            store.put_bytes(built.prefix + DATAPACKAGE_NAME, stored)
            written.append(built.prefix + DATAPACKAGE_NAME)
            if on_write:
                on_write(written[-1])
        dp_sha = sha256_hex(stored)
        if (
            current is not None
            and current["version"] == built.version
            and current["datapackage_sha256"] == dp_sha
        ):
            status, row = ("unchanged" if not written else "written"), current
        else:
            provenance = json.loads(stored).get("provenance", {})
            row = package_row(built, stored, provenance.get("dagster_run_id", run_id), clock())
            catalog.write_partition(PACKAGES_TABLE, key, pa.Table.from_pylist([row], schema=PACKAGES_SCHEMA))
            status = "written" if written else "switched"
        deleted = withdraw(store, catalog, boundary, day, keep=built.version)
        return PublishResult(status, built.version, written=written, deleted=deleted, row=row)
