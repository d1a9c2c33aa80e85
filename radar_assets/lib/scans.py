"""Ingest of one site-day of source files into the platform store, with one catalog row per file.

Invariants
----------
- Every source key of the partition ends in exactly one row: ``scans`` (copied, described) or ``rejects``
  (with the reason it could not be read). One bad file never stops the others.
- Incremental: a source file whose copy exists in the store with the recorded size is not read again;
  its previous row is kept unchanged, so a re-run produces identical rows (and the caller writes nothing).
- The store key of a copy depends only on the source key (:attr:`SourceKey.store_key`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from radar_assets.lib.keys import (
    DEFAULT_LEVEL3_PRODUCTS,
    KeyParseError,
    SourceKey,
    level2_prefix,
    level3_prefix,
    parse_key,
    sha256_hex,
)
from radar_assets.lib.partitions import site_day
from radar_assets.lib.store import ObjectStore

if TYPE_CHECKING:
    from radar_assets.lib.readers.stream_cache import StreamCache

TS = pa.timestamp("us", tz="UTC")

SCANS_SCHEMA = pa.schema(
    [
        ("scan_id", pa.string()),
        ("site", pa.string()),
        ("level", pa.int8()),
        ("product", pa.string()),
        ("product_code", pa.int16()),
        ("volume_start", TS),
        ("vcp", pa.int16()),
        ("sweep_count", pa.int16()),
        ("elevations", pa.list_(pa.float32())),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
        ("source_key", pa.string()),
        ("store_key", pa.string()),
        ("partition", pa.string()),
        ("ingested_at", TS),
    ]
)

REJECTS_SCHEMA = pa.schema(
    [
        ("source_key", pa.string()),
        ("site", pa.string()),
        ("level", pa.int8()),
        ("product", pa.string()),
        ("partition", pa.string()),
        ("asset", pa.string()),
        ("reason", pa.string()),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
        ("rejected_at", TS),
    ]
)


class SourceDecodeError(ValueError):
    """A source file that cannot be read as what its key says it is."""


@dataclass
class IngestResult:
    scans: pa.Table
    rejects: pa.Table
    listed: int = 0
    copied: int = 0
    reused: int = 0
    copied_bytes: int = 0
    new_scan_ids: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.copied > 0


def list_partition_sources(
    source: ObjectStore,
    site: str,
    day: str,
    level3_products: Iterable[str] = DEFAULT_LEVEL3_PRODUCTS,
    level3_source: ObjectStore | None = None,
) -> list[tuple[SourceKey, int]]:
    """Source keys (with sizes) of one site-day in both public layouts; ``_MDM`` and foreign keys skipped."""
    level3_source = level3_source or source
    found: list[tuple[SourceKey, int]] = []
    for key, size in source.list_objects(level2_prefix(site, day)):
        try:
            parsed = parse_key(key)
        except KeyParseError:
            continue
        if parsed.level == 2 and parsed.site == site:
            found.append((parsed, size))
    for product in level3_products:
        for key, size in level3_source.list_objects(
            level3_prefix(site, product) + day.replace("-", "_") + "_"
        ):
            try:
                parsed = parse_key(key)
            except KeyParseError:
                continue
            if parsed.level == 3 and parsed.partition_day == day:
                found.append((parsed, size))
    return sorted(found, key=lambda item: item[0].key)


#: Stream id of the Level 2 volumes in a listing watermark (Level 3 streams are named by their product).
LEVEL2_STREAM = "L2"

#: site -> day -> stream (``"L2"`` or a Level 3 product) -> the last key listed there.
Watermarks = dict[str, dict[str, dict[str, str]]]


@dataclass
class NewSources:
    """What one bounded listing pass found.

    Invariants
    ----------
    - ``marks`` only moves forward, and only over keys that were listed (and counted in ``found`` when they are
      source files of that site-day), so resuming from ``marks`` never skips or repeats a key.
    - A site-day is in ``complete`` only when every one of its streams was listed to its end in this pass.
    - A site whose listing failed keeps the watermarks it came with (``errors`` names the site and the cause).
    """

    marks: Watermarks
    found: dict[str, list[str]] = field(default_factory=dict)  # site-day partition -> new source keys
    complete: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)
    listed: int = 0
    out_of_time: bool = False
    resume_site: str | None = None  # the first site whose listing did not finish in this pass


def _streams(site: str, day: str, level3_products: Iterable[str]) -> list[tuple[str, str, int]]:
    """(stream id, listing prefix, level) of one site-day: one date/site prefix per stream, never a bucket."""
    streams = [(LEVEL2_STREAM, level2_prefix(site, day), 2)]
    stamp = day.replace("-", "_")
    streams += [(p, level3_prefix(site, p) + stamp + "_", 3) for p in level3_products]
    return streams


@dataclass
class _SiteListing:
    marks: dict[str, dict[str, str]]
    found: dict[str, list[str]] = field(default_factory=dict)
    complete: set[str] = field(default_factory=set)
    listed: int = 0
    finished: bool = True
    error: str | None = None


class _Budget:
    """The pass's shared deadline and key count: a listing may stop for time only once the pass listed a key."""

    def __init__(self, budget_s: float, clock: Callable[[], float]):
        self.clock = clock
        self.deadline = clock() + budget_s
        self.listed = 0
        self._lock = threading.Lock()

    def count(self) -> None:
        with self._lock:
            self.listed += 1

    def over(self) -> bool:
        return self.listed > 0 and self.clock() > self.deadline


def _list_site(
    site: str,
    days: list[str],
    marks: dict[str, dict[str, str]],
    products: list[str],
    level2: ObjectStore,
    level3: ObjectStore,
    budget: _Budget,
) -> _SiteListing:
    out = _SiteListing(marks={d: dict(st) for d, st in marks.items()})
    try:
        for day in days:
            day_marks = out.marks.setdefault(day, {})
            for stream, prefix, level in _streams(site, day, products):
                if budget.over():
                    out.finished = False
                    break
                store = level2 if level == 2 else level3
                for key, _size in store.list_objects(prefix, start_after=day_marks.get(stream)):
                    if budget.over():
                        out.finished = False
                        break
                    budget.count()
                    out.listed += 1
                    day_marks[stream] = key
                    try:
                        parsed = parse_key(key)
                    except KeyParseError:
                        continue
                    if parsed.level == level and parsed.site == site and parsed.partition_day == day:
                        out.found.setdefault(site_day(site, day), []).append(key)
                if not out.finished:
                    break
            if not out.finished:
                break
            out.complete.add(site_day(site, day))
    except Exception as exc:  # a listing failure is a property of this site's source: keep its marks
        out.error = f"listing {site} in {level2.url}: {type(exc).__name__}: {exc}"
    return out


def list_new_sources(
    level2: ObjectStore,
    sites: Iterable[str],
    days: Iterable[str],
    marks: Watermarks,
    *,
    level3: ObjectStore | None = None,
    level3_products: Iterable[str] = DEFAULT_LEVEL3_PRODUCTS,
    budget_s: float = 40.0,
    clock: Callable[[], float] | None = None,
    workers: int = 1,
) -> NewSources:
    """List the source keys added after each site-day stream's watermark, within a time budget.

    Each stream (Level 2 volumes of a site-day; one Level 3 product of a site-day) is listed from its own
    date/site prefix, starting after its watermark (S3 ``StartAfter``, paginated by the store), so a tick
    costs one request per stream plus one per 1000 new keys. The archive appends keys in time order, which
    is what makes a key watermark sufficient; a rewritten object is picked up by the daily finalisation run.

    Sites are listed in the given order by ``workers`` threads (a listing mostly waits on the network). When
    ``clock()`` passes ``budget_s`` every listing stops after its current key, with the watermarks of
    everything listed so far, and sites not started are left: the next pass continues from
    ``resume_site`` (``out_of_time`` is then true). The first site always lists at least one key, so
    repeated passes always progress.
    """
    level3 = level3 or level2
    products = list(level3_products)
    days = list(days)
    order = list(sites)
    budget = _Budget(budget_s, clock or time.monotonic)
    out = NewSources(marks={site: {d: dict(st) for d, st in days_.items()} for site, days_ in marks.items()})

    def run(index: int) -> _SiteListing | None:
        site = order[index]
        if index and budget.clock() > budget.deadline:
            return None  # not started: the next pass begins here
        return _list_site(site, days, out.marks.get(site, {}), products, level2, level3, budget)

    if workers > 1 and len(order) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="list-sources") as pool:
            results = list(pool.map(run, range(len(order))))
    else:
        results = []
        for index in range(len(order)):
            results.append(run(index))
            if results[-1] is not None and not results[-1].finished:
                results += [None] * (len(order) - index - 1)
                break
    for site, result in zip(order, results, strict=True):
        if result is None or not result.finished:
            out.out_of_time = True
            out.resume_site = out.resume_site or site
        if result is None:
            continue
        out.listed += result.listed
        if result.error is not None:
            out.errors[site] = result.error
            continue
        out.marks[site] = {d: st for d, st in result.marks.items() if st}
        out.found.update(result.found)
        out.complete |= result.complete
    return out


def describe_source(
    parsed: SourceKey, data: bytes, streams: StreamCache | None = None, digest: str | None = None
) -> dict:
    """Read a source file's metadata (site, time, VCP, sweeps / product code).

    A Level 2 volume is decompressed whole for it (the sweep count depends on every radial); with
    ``streams`` the decompressed stream is kept there under ``digest`` (the file's sha256) for the renderer.

    Raises
    ------
    SourceDecodeError
        For a truncated, corrupt or mislabelled file, with a message naming the problem.
    """
    if parsed.level == 2:
        from radar_assets.lib.readers.nexrad_level2 import decompress_level2, read_level2_metadata

        try:
            stream = decompress_level2(data)
            meta = read_level2_metadata(stream)
        except Exception as exc:  # any decoder failure is a property of the file, recorded as a reject
            raise SourceDecodeError(f"{type(exc).__name__}: {exc}") from exc
        if streams is not None:
            streams.put(digest or sha256_hex(data), stream)
        angles = [float(a) for a in meta["fixed_angles"]]
        return {
            "product_code": None,
            "volume_start": meta["start_time"],
            "vcp": meta.get("vcp"),
            "sweep_count": int(meta["sweep_count"]),
            "elevations": angles,
        }
    from radar_assets.lib.readers.nexrad_level3 import read_level3_metadata

    try:
        meta = read_level3_metadata(data)
    except Exception as exc:
        raise SourceDecodeError(f"{type(exc).__name__}: {exc}") from exc
    elevation = meta.get("elevation")
    return {
        "product_code": int(meta["product_code"]),
        "volume_start": meta["time"],
        "vcp": meta.get("vcp"),
        "sweep_count": 1,
        "elevations": [float(elevation)] if elevation is not None else [],
    }


def ingest_partition(
    source: ObjectStore,
    store: ObjectStore,
    site: str,
    day: str,
    partition: str,
    previous_scans: pa.Table | None = None,
    previous_rejects: pa.Table | None = None,
    level3_products: Iterable[str] = DEFAULT_LEVEL3_PRODUCTS,
    level3_source: ObjectStore | None = None,
    describe: Callable[..., dict] = describe_source,
    threads: int = 4,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress: Callable[[int, int], None] | None = None,
    streams: StreamCache | None = None,
) -> IngestResult:
    """Copy a site-day's new source files into ``store`` and describe each one.

    ``previous_scans`` / ``previous_rejects`` are the partition's rows from the last run; files already
    copied with the same size keep their row, so re-running yields identical tables. ``describe`` is called
    as ``describe(parsed, data, streams=streams, digest=sha256)``: with ``streams``, the Level 2 streams it
    decompresses are left there for :func:`radar_assets.lib.sweeps.render_partition`.
    """
    level3_source = level3_source or source
    sources = list_partition_sources(source, site, day, level3_products, level3_source)
    prev = {r["source_key"]: r for r in (previous_scans.to_pylist() if previous_scans is not None else [])}
    prev_rej = {
        r["source_key"]: r for r in (previous_rejects.to_pylist() if previous_rejects is not None else [])
    }

    reuse, todo = [], []
    for parsed, size in sources:
        row = prev.get(parsed.key)
        if row is not None and row["bytes"] == size and store.exists(parsed.store_key):
            reuse.append(row)
        else:
            todo.append(parsed)

    def work(parsed: SourceKey) -> tuple[str, dict]:
        data = (source if parsed.level == 2 else level3_source).get_bytes(parsed.key)
        digest = sha256_hex(data)
        try:
            meta = describe(parsed, data, streams=streams, digest=digest)
        except SourceDecodeError as exc:
            reason = str(exc) if str(exc).startswith(parsed.key) else f"{parsed.key}: {exc}"
            old = prev_rej.get(parsed.key)
            # An unchanged bad file keeps its first rejection time, so a re-run rewrites nothing.
            same = old is not None and old["sha256"] == digest and old["reason"] == reason
            return "reject", {
                "source_key": parsed.key,
                "site": parsed.site,
                "level": parsed.level,
                "product": parsed.product,
                "partition": partition,
                "asset": "raw_scans",
                "reason": reason,
                "bytes": len(data),
                "sha256": digest,
                "rejected_at": old["rejected_at"] if same else now(),
            }
        store.put_bytes(parsed.store_key, data)
        return "scan", {
            "scan_id": parsed.scan_id,
            "site": parsed.site,
            "level": parsed.level,
            "product": parsed.product,
            **meta,
            "bytes": len(data),
            "sha256": digest,
            "source_key": parsed.key,
            "store_key": parsed.store_key,
            "partition": partition,
            "ingested_at": now(),
        }

    scans, rejects = list(reuse), []
    copied_bytes = 0
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for done, (kind, row) in enumerate(pool.map(work, todo), start=1):
            if kind == "scan":
                scans.append(row)
                copied_bytes += row["bytes"]
            else:
                rejects.append(row)
            if progress:
                progress(done, len(todo))
    scans.sort(key=lambda r: (r["volume_start"], r["scan_id"]))
    rejects.sort(key=lambda r: r["source_key"])
    copied = [r for r in scans if r["source_key"] not in {x["source_key"] for x in reuse}]
    return IngestResult(
        scans=pa.Table.from_pylist(scans, schema=SCANS_SCHEMA),
        rejects=pa.Table.from_pylist(rejects, schema=REJECTS_SCHEMA),
        listed=len(sources),
        copied=len(copied),
        reused=len(reuse),
        copied_bytes=copied_bytes,
        new_scan_ids=[r["scan_id"] for r in copied],
    )


def tables_equal(a: pa.Table | None, b: pa.Table) -> bool:
    """Whether a partition's new rows equal what is stored (then nothing is rewritten)."""
    if a is None or a.schema.names != b.schema.names:
        return False
    return a.cast(b.schema).equals(b)
