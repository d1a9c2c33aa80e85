"""``/sites``: the radar sites present in the catalog, with scan counts and their latest scan."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from radar_assets.api.dependencies import CatalogReadDep
from radar_assets.api.errors import NotFoundError
from radar_assets.api.models import SITE_PATTERN, NoQuery, SiteList, SitesQuery, SiteSummary
from radar_assets.api.responses import error_responses
from radar_assets.api.snapshot import Session
from radar_assets.lib.sites import UnknownSiteError
from radar_assets.lib.sites import site as site_location

router = APIRouter(tags=["sites"])

_SITES_SQL = """
SELECT site,
       count(*) AS scans,
       count(*) FILTER (WHERE level = 2) AS level2_scans,
       count(*) FILTER (WHERE level = 3) AS level3_scans,
       coalesce(list(DISTINCT product ORDER BY product) FILTER (WHERE product IS NOT NULL), []) AS products,
       min(volume_start) AS first_scan_time,
       max(volume_start) AS latest_scan_time,
       max_by(scan_id, volume_start) AS latest_scan_id
FROM scans
WHERE site IS NOT NULL AND (? IS NULL OR level = ?)
GROUP BY site
ORDER BY site
"""


def site_summaries(session: Session, level: int | None) -> list[dict[str, Any]]:
    """Computed once per snapshot and level filter (a snapshot never changes)."""
    snap = session.snapshot
    if not snap.has_table("scans"):
        return []
    if not {"site", "level", "product", "volume_start", "scan_id"} <= set(snap.columns["scans"]):
        return []
    return snap.memo(("sites", level), lambda: session.rows(_SITES_SQL, [level, level]))


def _location(site_id: str) -> dict[str, float | None]:
    """The site's location from the NEXRAD/TDWR site table (None for ids the table does not know)."""
    try:
        where = site_location(site_id)
    except UnknownSiteError:
        return {"latitude": None, "longitude": None, "elevation_m": None}
    return {"latitude": where.lat, "longitude": where.lon, "elevation_m": round(where.elev_m, 1)}


def _present(row: dict[str, Any], root: str) -> dict[str, Any]:
    return {**row, **_location(row["site"]), "scans_url": f"{root}/scans?site={row['site']}"}


@router.get("/sites", response_model=SiteList, responses=error_responses(503))
def list_sites(
    q: Annotated[SitesQuery, Query()],
    read: CatalogReadDep,
) -> Any:
    """Every site with scans in the catalog (optionally only Level 2 or Level 3 ones)."""
    with read.snapshots.session() as session:
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
        rows = site_summaries(session, q.level)
    root = read.root
    return {"items": [_present(r, root) for r in rows], "snapshot": session.snapshot.version}


@router.get("/sites/{site}", response_model=SiteSummary, responses=error_responses(404, 503))
def get_site(
    site: Annotated[str, Path(pattern=SITE_PATTERN, examples=["KLOT"])],
    _q: Annotated[NoQuery, Query()],
    read: CatalogReadDep,
) -> Any:
    """One site's counts and latest scan."""
    site = site.upper()
    with read.snapshots.session() as session:
        rows = site_summaries(session, None)
        found = next((r for r in rows if r["site"] == site), None)
        if found is None:
            raise NotFoundError(f"no scans of site {site!r} in the catalog")
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
    return _present(found, read.root)
