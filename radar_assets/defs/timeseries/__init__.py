"""Dagster layer of the timeseries family: ``timeseries_summaries`` (site x day)."""

import dagster as dg

from radar_assets.defs.partitions import partitions_for
from radar_assets.defs.timeseries.assets import ZonalResource, build_timeseries_summaries
from radar_assets.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    lookups = settings.render.lookup_cache()
    # Coverage weights live beside the renderer's lookups (same lifetime: per site grid).
    cache = str(lookups.parent / "zonal-weights") if lookups is not None else None
    return dg.Definitions(
        assets=[build_timeseries_summaries(partitions_for(settings))],
        resources={
            "zonal": ZonalResource(cache_dir=cache, max_bytes=settings.render.weights_cache_max_bytes)
        },
    )
