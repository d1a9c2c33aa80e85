"""Demo steps of the boundaries and timeseries families.

- before the site-day assets: the ``boundaries`` asset registers the shipped Census counties of the demo's
  sites (Illinois for KLOT, Oklahoma for KTLX; package data, so ``../shared`` is not needed) and adds their
  ids to the dynamic ``boundaries`` dimension;
- ``timeseries_summaries`` is a site x day asset, so the demo materialises it with the other site-day assets;
- after them: a summary line of what the time series hold, and where the API serves them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from radar_assets.cli.demo import DemoContext


def register_boundaries(ctx: DemoContext) -> None:
    """Materialise ``boundaries`` with the shipped county files of the demo's sites."""
    import dagster as dg

    from radar_assets.lib.geo.boundaries import shipped_boundaries

    files = [
        {"path": str(s.path), "id_field": s.id_field, "name_field": s.name_field, "prefix": s.prefix}
        for s in shipped_boundaries()
        if set(s.sites) & set(ctx.sites)
    ]
    result = dg.materialize(
        [ctx.asset("boundaries")],
        instance=ctx.instance,
        resources=ctx.defs.resources,
        run_config={"ops": {"boundaries": {"config": {"add": files}}}},
    )
    (mat,) = result.asset_materializations_for_node("boundaries")
    count = mat.metadata["dagster/row_count"].value
    names = ", ".join(f["path"].rsplit("/", 1)[-1] for f in files)
    ctx.say(f"registered {count} boundaries ({names}) as partitions of the boundaries dimension")
    ctx.summary.append(f"boundaries: {count} registered from {names}")


def summarise_timeseries(ctx: DemoContext) -> None:
    """One summary line per site: rows of ``timeseries`` and the county with most echo."""
    from radar_assets.lib.partitions import site_day
    from radar_assets.lib.timeseries.summaries import TABLE, top_boundaries
    from radar_assets.settings import open_catalog

    catalog = open_catalog(ctx.settings)
    for site in ctx.sites:
        rows = boundaries = 0
        best = []
        for day in ctx.days:
            table = catalog.read_partition(TABLE, site_day(site, day))
            if table is None:
                continue
            rows += table.num_rows
            boundaries = max(boundaries, len(set(table.column("boundary").to_pylist())))
            best = best or top_boundaries(table, k=1)
        line = f"timeseries {site}: {rows} rows over {boundaries} covered boundaries"
        if best:
            line += f"; most echo in {best[0]} (GET /timeseries?boundary={best[0]}&site={site})"
        ctx.summary.append(line)
