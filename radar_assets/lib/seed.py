"""Put loose radar files into a source archive under the public layouts (for tests, demos and mirrors)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from radar_assets.lib.keys import KeyParseError, level2_key_for_file, nws_level3_to_flat
from radar_assets.lib.store import ObjectStore

# ``KDDC_N0Q_20200817_0501.nids``: another common naming of downloaded Level 3 files.
_SITE_PROD_STAMP = re.compile(
    r"^[KPT]?(?P<site>[A-Z0-9]{3})_(?P<prod>[A-Z0-9]{3})_(?P<d>\d{8})_(?P<t>\d{4,6})(?:\.nids)?$"
)


def archive_key(name: str) -> str:
    """The public-layout key of a loose file name.

    Raises
    ------
    KeyParseError
        When the name is no known Level 2 or Level 3 naming.
    """
    try:
        return level2_key_for_file(name)
    except KeyParseError:
        pass
    m = _SITE_PROD_STAMP.match(name)
    if m:
        t = m["t"].ljust(6, "0")
        d = m["d"]
        return f"{m['site']}_{m['prod']}_{d[:4]}_{d[4:6]}_{d[6:]}_{t[:2]}_{t[2:4]}_{t[4:]}"
    return nws_level3_to_flat(name)


def iter_seed_files(root: Path) -> Iterator[tuple[Path, str | None, str | None]]:
    """(file, key or None, reason when skipped) for every file under ``root``."""
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        try:
            yield path, archive_key(path.name), None
        except KeyParseError as exc:
            yield path, None, str(exc)


def seed(root: Path, target: ObjectStore, log: Callable[[str], None] = print) -> tuple[int, int]:
    """Copy every recognised file under ``root`` into ``target``; returns (written, skipped)."""
    written = skipped = 0
    for path, key, reason in iter_seed_files(root):
        if key is None:
            log(f"skip {path.name}: {reason}")
            skipped += 1
            continue
        data = path.read_bytes()
        if target.exists(key) and target.size(key) == len(data):
            continue
        target.put_bytes(key, data)
        written += 1
    return written, skipped
