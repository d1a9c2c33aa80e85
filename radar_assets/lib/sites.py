"""Radar site table: id, latitude, longitude and elevation for every NEXRAD and TDWR site.

Message 1 (pre-2008) Level 2 volumes and Level 3 products named with three-letter ids carry no usable
site location, so it comes from this table. The table is Py-ART's ``NEXRAD_LOCATIONS`` (NWS ROC site list,
WSR-88D and TDWR), which every install of the platform already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


class UnknownSiteError(KeyError):
    """The site id is not in the NEXRAD/TDWR site table."""


@dataclass(frozen=True)
class Site:
    id: str
    lat: float
    lon: float
    elev_m: float


@cache
def _table() -> dict[str, Site]:
    # Py-ART's get_nexrad_location converts the shared dict's elevation from feet to metres in place on
    # every call, so the imported table may already be altered. Load a private copy of that module's file
    # instead; it has no imports, so this also avoids importing Py-ART itself (seconds).
    import importlib.util
    from pathlib import Path

    package = importlib.util.find_spec("pyart")
    if package is None or package.origin is None:
        raise UnknownSiteError("the NEXRAD site table needs arm_pyart installed")
    path = Path(package.origin).parent / "io" / "nexrad_common.py"
    spec = importlib.util.spec_from_file_location("_radar_assets_nexrad_sites", path)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    NEXRAD_LOCATIONS = fresh.NEXRAD_LOCATIONS  # noqa: N806 - Py-ART's name, elevations in feet
    return {
        sid.upper(): Site(sid.upper(), float(v["lat"]), float(v["lon"]), float(v["elev"]) * 0.3048)
        for sid, v in NEXRAD_LOCATIONS.items()
    }


def site(site_id: str) -> Site:
    """Look up a four-letter site id (``KLOT``, ``TORD``); three-letter NWS ids (``LOT``) are tried with ``K``."""
    sid = site_id.strip().upper()
    table = _table()
    if sid in table:
        return table[sid]
    if len(sid) == 3 and "K" + sid in table:
        return table["K" + sid]
    raise UnknownSiteError(f"unknown radar site {site_id!r}: not in the NEXRAD/TDWR site table")


def all_sites() -> list[Site]:
    return sorted(_table().values(), key=lambda s: s.id)
