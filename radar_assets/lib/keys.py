"""Source-key parsing for the public NEXRAD archive layouts, and the partition each key belongs to.

Layouts (NOAA Big Data / Unidata):

- Level 2: ``YYYY/MM/DD/SITE/SITEYYYYMMDD_HHMMSS_V06`` (also ``_V03``, ``_V04`` ...; older keys end in ``.gz``
  or have no version suffix: ``KLOT19950413_132143.gz``). ``_MDM`` (model data message) files are not volumes.
- Level 3: flat ``SSS_PROD_YYYY_MM_DD_HH_MM_SS`` with the three-letter NWS site id (``LOT_N0Q_2021_01_31_11_06_30``).
- NWS/LDM file names such as ``KOUN_SDUS54_N0QTLX_201305202016`` (WMO header + AWIPS id) map to the flat Level 3
  layout with :func:`nws_level3_to_flat`.

Invariants
----------
- A parsed key always yields a four-letter site id (``K`` prepended to three-letter Level 3 ids) and a UTC time.
- ``partition_day`` is the UTC date of that time as ``YYYY-MM-DD``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

_L2_NAME = re.compile(
    r"^(?P<site>[A-Z][A-Z0-9]{3})(?P<date>\d{8})_(?P<time>\d{6})(?:_(?P<version>V\d\d))?(?P<gz>\.gz)?$"
)
_L2_KEY = re.compile(r"^(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/(?P<site>[A-Z][A-Z0-9]{3})/(?P<name>[^/]+)$")
_L3_NAME = re.compile(
    r"^(?P<site>[A-Z0-9]{3})_(?P<product>[A-Z0-9]{3})_(?P<ts>\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d)$"
)
_NWS_L3 = re.compile(
    r"^(?P<office>[A-Z]{4})_(?P<wmo>[A-Z]{4}\d\d)_(?P<product>[A-Z0-9]{3})(?P<site>[A-Z0-9]{3})_(?P<ts>\d{12})$"
)


# Level 3 products listed per site-day by default: the ones the platform renders or summarises.
DEFAULT_LEVEL3_PRODUCTS = (
    "N0Q", "N0B", "N0H", "HHC", "DAA", "DTA", "DPR", "N1P", "NTP", "N0S", "N0U", "N0C", "N0X", "NSW",
)  # fmt: skip


class KeyParseError(ValueError):
    """A source key that follows neither public layout."""


@dataclass(frozen=True)
class SourceKey:
    key: str
    level: int  # 2 or 3
    site: str  # four letters
    time: datetime  # UTC, from the key
    product: str  # "VOL" for Level 2 volumes, the three-character product for Level 3
    compressed: bool = False  # whole-file gzip (old Level 2 keys)

    @property
    def partition_day(self) -> str:
        return self.time.strftime("%Y-%m-%d")

    @property
    def scan_id(self) -> str:
        return scan_id(self.site, self.level, self.product, self.time)

    @property
    def store_key(self) -> str:
        """Deterministic key of the copy in the platform store (derived from the source key only)."""
        day = self.time.strftime("%Y/%m/%d")
        name = self.key.rsplit("/", 1)[-1]
        return f"raw/level{self.level}/{self.site}/{day}/{name}"


def scan_id(site: str, level: int, product: str, time: datetime) -> str:
    """Deterministic, URL-safe id: ``KLOT-L2-VOL-20210625T075154Z`` plus nothing random."""
    return f"{site}-L{level}-{product}-{time.strftime('%Y%m%dT%H%M%SZ')}"


def _l2_from_name(key: str, name: str) -> SourceKey:
    m = _L2_NAME.match(name)
    if not m:
        raise KeyParseError(f"not a Level 2 volume name: {key!r}")
    when = datetime.strptime(m["date"] + m["time"], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return SourceKey(key, 2, m["site"], when, "VOL", compressed=bool(m["gz"]))


def parse_key(key: str) -> SourceKey:
    """Parse a Level 2 archive key or a flat Level 3 key.

    Raises
    ------
    KeyParseError
        When the key follows neither layout, or is a Level 2 ``_MDM`` file (not a volume).
    """
    name = key.rsplit("/", 1)[-1]
    if name.endswith("_MDM"):
        raise KeyParseError(f"model data message, not a volume: {key!r}")
    m2 = _L2_KEY.match(key)
    if m2:
        parsed = _l2_from_name(key, m2["name"])
        if parsed.site != m2["site"] or parsed.time.strftime("%Y/%m/%d") != f"{m2['y']}/{m2['m']}/{m2['d']}":
            raise KeyParseError(f"Level 2 key folder disagrees with its file name: {key!r}")
        return parsed
    m3 = _L3_NAME.match(name)
    if m3:
        when = datetime.strptime(m3["ts"], "%Y_%m_%d_%H_%M_%S").replace(tzinfo=UTC)
        return SourceKey(key, 3, "K" + m3["site"], when, m3["product"])
    raise KeyParseError(f"not a Level 2 or Level 3 source key: {key!r}")


def is_source_key(key: str) -> bool:
    try:
        parse_key(key)
    except KeyParseError:
        return False
    return True


def level2_prefix(site: str, day: str) -> str:
    """Listing prefix of one site-day in the Level 2 layout (``day`` is ``YYYY-MM-DD``)."""
    return f"{day.replace('-', '/')}/{site}/"


def level3_prefix(site: str, product: str | None = None) -> str:
    """Listing prefix of a site's (and product's) flat Level 3 keys."""
    three = site[1:] if len(site) == 4 and site[0] == "K" else site
    return f"{three}_{product}_" if product else f"{three}_"


def level3_day_matches(key: str, day: str) -> bool:
    return f"_{day.replace('-', '_')}_" in key


def level2_key_for_file(name: str) -> str:
    """The archive key of a Level 2 file name (for seeding a bucket from loose files)."""
    parsed = _l2_from_name(name, name)
    return f"{parsed.time.strftime('%Y/%m/%d')}/{parsed.site}/{name}"


def nws_level3_to_flat(name: str) -> str:
    """Map an NWS/LDM Level 3 file name to the flat layout.

    ``KOUN_SDUS54_N0QTLX_201305202016`` -> ``TLX_N0Q_2013_05_20_20_16_00``. Names already in the flat
    layout are returned unchanged.
    """
    if _L3_NAME.match(name):
        return name
    m = _NWS_L3.match(name)
    if not m:
        raise KeyParseError(f"not an NWS Level 3 file name: {name!r}")
    ts = m["ts"]
    return f"{m['site']}_{m['product']}_{ts[0:4]}_{ts[4:6]}_{ts[6:8]}_{ts[8:10]}_{ts[10:12]}_00"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
