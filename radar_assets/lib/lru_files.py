"""A folder of cache files kept under a size bound, evicting the least recently used first.

"Used" is recorded in each file's modification time (:func:`touch` on every hit), not its access time:
``noatime``/``relatime`` mounts do not update access times, and several processes share the folder, so the
file system is the only shared record of recency.

Invariants
----------
- After :func:`evict`, the files matching ``pattern`` in the folder total at most ``max_bytes``.
- Files are removed strictly in order of last use (oldest first); a file used more recently than another is
  never removed while the other remains.
- A concurrent reader that already opened (or memory-mapped) a file keeps reading it after its removal
  (POSIX unlink semantics); a file removed by another process counts as removed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def touch(path: Path) -> None:
    """Record a use of ``path`` (its mtime becomes now); a file removed meanwhile is ignored."""
    try:
        os.utime(path, ns=(time.time_ns(), time.time_ns()))
    except OSError:
        pass


def evict(root: Path, max_bytes: int, pattern: str = "*", *, older_than: float | None = None) -> list[Path]:
    """Remove the least recently used files matching ``pattern`` until they total at most ``max_bytes``.

    Returns the removed paths, oldest first. ``max_bytes <= 0`` means no bound (nothing removed).
    ``older_than`` (seconds since the epoch): only files last used at or before it may go, so eviction
    stops at the first newer file even above the bound.
    """
    if max_bytes <= 0 or not root.is_dir():
        return []
    entries = []
    for path in root.glob(pattern):
        try:
            st = path.stat()
        except OSError:  # removed by another process between glob and stat
            continue
        entries.append((st.st_mtime_ns, path.name, path, st.st_size))
    entries.sort()
    total = sum(size for *_, size in entries)
    removed = []
    newest_ns = None if older_than is None else int(older_than * 1e9)
    for mtime, _name, path, size in entries:
        if total <= max_bytes or (newest_ns is not None and mtime > newest_ns):
            break
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            continue
        total -= size
        removed.append(path)
    return removed
