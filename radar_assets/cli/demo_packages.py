"""Demo step: boundary data packages (``clipped_packages``) for the demo's site-days.

The boundaries are the registered ones (the demo registers the shipped Census counties of its sites; if no
step did, this one registers them). Packaging every county of both states would take minutes, so the demo
packages the :data:`PER_SITE` counties nearest each site; any other county-day is one click away in the
UI (``clipped_packages``, partition ``boundary|day``).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from radar_assets.cli.demo import DemoContext

PER_SITE = 4


def _ensure_boundaries(ctx: DemoContext, catalog) -> list[str]:
    from radar_assets.defs.partitions import boundaries_partitions
    from radar_assets.lib.geo.boundaries import read_boundaries, register, registered, shipped_boundaries

    if registered(catalog).num_rows == 0:
        for shipped in shipped_boundaries():
            if set(shipped.sites) & set(ctx.sites):
                load = read_boundaries(
                    shipped.path, shipped.id_field, shipped.name_field, prefix=shipped.prefix
                )
                register(catalog, load)
                ctx.say(f"registered {load.rows.num_rows} boundaries from {shipped.path.name}")
    ids = registered(catalog).column("id").to_pylist()
    known = set(ctx.instance.get_dynamic_partitions(boundaries_partitions.name))
    missing = [i for i in ids if i not in known]
    if missing:
        ctx.instance.add_dynamic_partitions(boundaries_partitions.name, missing)
    return ids


def nearest_boundaries(table, lat: float, lon: float, k: int) -> list[str]:
    """Ids of the ``k`` registered boundaries whose bounding-box centre is nearest to a point."""
    scored = []
    for row in table.select(["id", "west", "south", "east", "north"]).to_pylist():
        clat, clon = (row["south"] + row["north"]) / 2, (row["west"] + row["east"]) / 2
        d = math.hypot((clat - lat), (clon - lon) * math.cos(math.radians(lat)))
        scored.append((d, row["id"]))
    return [i for _d, i in sorted(scored)[:k]]


def packages(ctx: DemoContext) -> None:
    """Materialise ``clipped_packages`` for the counties nearest each demo site, on every demo day."""
    from radar_assets.defs.partitions import boundary_day_key
    from radar_assets.lib.geo.boundaries import registered
    from radar_assets.lib.packages import current_package
    from radar_assets.lib.sites import site
    from radar_assets.settings import open_catalog

    catalog = open_catalog(ctx.settings)
    _ensure_boundaries(ctx, catalog)
    table = registered(catalog)
    if table.num_rows == 0:
        ctx.say("packages: no boundaries registered, nothing to package")
        return
    chosen: list[str] = []
    for sid in ctx.sites:
        s = site(sid)
        chosen.extend(b for b in nearest_boundaries(table, s.lat, s.lon, PER_SITE) if b not in chosen)
    asset = ctx.asset("clipped_packages")
    t0 = time.monotonic()
    made, total_bytes, failed = [], 0, []
    for day in ctx.days:
        for boundary in chosen:
            if not ctx.materialize([asset], partition_key=boundary_day_key(boundary, day)):
                failed.append(f"{boundary}|{day}")
                continue
            row = current_package(catalog, boundary, day)
            if row is not None:
                made.append(f"{boundary}|{day}")
                total_bytes += int(row["total_bytes"])
    ctx.say(
        f"packages: {len(made)} of {len(chosen) * len(ctx.days)} boundary-days in {time.monotonic() - t0:.1f} s"
    )
    ctx.summary.append(
        f"packages: {len(made)} published ({total_bytes / 1e6:.1f} MB) for {', '.join(made) or 'none'}; "
        "list them at http://127.0.0.1:8000/packages" + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
