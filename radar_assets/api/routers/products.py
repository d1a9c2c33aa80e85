"""``/products``: the Level 3 product codes in the catalog, with counts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from radar_assets.api.dependencies import CatalogReadDep
from radar_assets.api.models import ProductList, ProductsQuery
from radar_assets.api.responses import error_responses
from radar_assets.api.snapshot import Session

router = APIRouter(tags=["products"])

_BY_SITE_SQL = """
SELECT product, site,
       min(product_code) AS product_code,
       count(*) AS scans,
       min(volume_start) AS first_scan_time,
       max(volume_start) AS latest_scan_time
FROM scans
WHERE level = 3 AND product IS NOT NULL AND site IS NOT NULL
GROUP BY product, site
"""


def product_summaries(session: Session, site: str | None) -> list[dict[str, Any]]:
    """Per-product totals, from per-(product, site) totals computed once per snapshot."""
    snap = session.snapshot
    if not snap.has_table("scans"):
        return []
    if not {"site", "level", "product", "product_code", "volume_start"} <= set(snap.columns["scans"]):
        return []
    by_site = snap.memo("products_by_site", lambda: session.rows(_BY_SITE_SQL))
    out: dict[str, dict[str, Any]] = {}
    for row in by_site:
        if site is not None and row["site"] != site:
            continue
        agg = out.setdefault(
            row["product"],
            {
                "product": row["product"],
                "product_code": None,
                "scans": 0,
                "sites": 0,
                "first_scan_time": None,
                "latest_scan_time": None,
            },
        )
        agg["scans"] += row["scans"]
        agg["sites"] += 1
        for key, pick in (("product_code", min), ("first_scan_time", min), ("latest_scan_time", max)):
            values = [v for v in (agg[key], row[key]) if v is not None]
            agg[key] = pick(values) if values else None
    return [out[k] for k in sorted(out)]


@router.get("/products", response_model=ProductList, responses=error_responses(503))
def list_products(
    q: Annotated[ProductsQuery, Query()],
    read: CatalogReadDep,
) -> Any:
    """Level 3 products (three-character code and numeric code) with scan and site counts."""
    with read.snapshots.session() as session:
        if (not_modified := read.not_modified(session.snapshot)) is not None:
            return not_modified
        rows = product_summaries(session, q.site)
    return {"items": rows, "snapshot": session.snapshot.version}
