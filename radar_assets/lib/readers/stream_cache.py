"""A bounded local folder of decompressed Level 2 message streams, handed from ingest to render.

Ingest (``raw_scans``) must decompress every bzip2 record of a volume to describe it (the sweep count depends
on every radial), and rendering (``rendered_sweeps``) needs the same stream again: ~1-1.5 s of CPU per
volume each time, the largest single cost of a backfill. Ingest :meth:`StreamCache.put`\\ s the stream it
decompressed and the renderer :meth:`StreamCache.take`\\ s it, so each volume is decompressed once.

Entries are LZ4 frames (~0.1 s to write and ~0.05 s to read a 50 MB stream, against ~1.4 s of bzip2),
keyed by the sha256 of the source file's bytes, so an entry can only ever stand for exactly those bytes.

Invariants
----------
- The ``stream-*.lz4`` files total at most ``max_bytes`` after every :meth:`StreamCache.put`: a stream that
  does not fit is not cached (the renderer then decompresses the file itself). It is not "evict the least
  recently used" because a partition's ingest writes its volumes in the order its render reads them: with a
  day larger than the bound, LRU would evict each stream before its render and nothing would hit, while
  keeping the first ones makes those hit.
- :meth:`StreamCache.take` removes the entry (a volume is rendered once); entries nobody took for
  ``stale_s`` (a render that never ran) are removed by the next :meth:`StreamCache.put` that needs room.
- Writes are atomic (temporary name, then rename); a missing, truncated or corrupt entry is a miss, never
  an error. Several processes may share the folder.
"""

from __future__ import annotations

import os
import struct
import time
import uuid
from pathlib import Path

from radar_assets.lib import lru_files
from radar_assets.lib.readers.nexrad_level2 import Level2Stream

#: Default size bound: ~200 volumes in flight (a stream is ~20 MB as LZ4).
DEFAULT_MAX_BYTES = 4 * 1024**3
#: Entries untouched this long are abandoned (their render never came) and go first when room is needed.
DEFAULT_STALE_S = 3600.0

_MAGIC = b"L2S1"
_HEADER = struct.Struct(">4s16sQ")  # magic, ICAO id (UTF-8, NUL padded), decompressed length
_PATTERN = "stream-*.lz4"


def _codec():
    import pyarrow as pa

    return pa.Codec("lz4")


class StreamCache:
    """Decompressed Level 2 streams in ``root``, at most ``max_bytes`` of them (``max_bytes <= 0``: no bound)."""

    def __init__(
        self, root: str | Path, max_bytes: int = DEFAULT_MAX_BYTES, stale_s: float = DEFAULT_STALE_S
    ):
        self.root = Path(root)
        self.max_bytes = int(max_bytes)
        self.stale_s = float(stale_s)

    def _path(self, digest: str) -> Path:
        if not digest or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"stream cache key must be a lowercase hex digest, got {digest!r}")
        return self.root / f"stream-{digest}.lz4"

    def _make_room(self, needed: int) -> bool:
        """Remove stale entries (oldest first) until ``needed`` more bytes fit; whether they fit."""
        if self.max_bytes <= 0:
            return True
        if needed > self.max_bytes:
            return False
        # A budget of 0 would read as "no bound" to evict; 1 byte leaves no entry either (each has a header).
        budget = max(self.max_bytes - needed, 1)
        lru_files.evict(self.root, budget, _PATTERN, older_than=time.time() - self.stale_s)
        return self.total_bytes() + needed <= self.max_bytes

    def put(self, digest: str, stream: Level2Stream) -> bool:
        """Keep ``stream`` (decompressed from the file whose sha256 is ``digest``); whether it was kept."""
        path = self._path(digest)
        try:
            os.utime(path)  # already kept (the same bytes ingested again): only its age is renewed
            return True
        except FileNotFoundError:
            pass
        icao = stream.icao.encode("utf-8")
        if len(icao) > 16:
            return False
        body = _codec().compress(stream.buf, asbytes=True)
        header = _HEADER.pack(_MAGIC, icao.ljust(16, b"\0"), len(stream.buf))
        if not self._make_room(len(header) + len(body)):
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(header)
                fh.write(body)
            os.replace(tmp, path)
        except OSError:  # a full or read-only disk only costs the renderer a decompression
            tmp.unlink(missing_ok=True)
            return False
        return True

    def take(self, digest: str) -> Level2Stream | None:
        """The stream of the file whose sha256 is ``digest``, removed from the cache; None on a miss."""
        path = self._path(digest)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        path.unlink(missing_ok=True)
        try:
            magic, icao, length = _HEADER.unpack_from(raw)
            if magic != _MAGIC:
                return None
            buf = _codec().decompress(memoryview(raw)[_HEADER.size :], decompressed_size=length, asbytes=True)
        except (struct.error, OSError, ValueError):  # pyarrow raises OSError on a corrupt frame
            return None
        if len(buf) != length:
            return None
        return Level2Stream(icao.rstrip(b"\0").decode("utf-8", "replace"), buf)

    def total_bytes(self) -> int:
        total = 0
        for path in self.root.glob(_PATTERN):
            try:
                total += path.stat().st_size
            except OSError:  # taken or removed by another process meanwhile
                continue
        return total
