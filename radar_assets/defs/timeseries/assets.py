"""``timeseries_summaries``: per site-day, zonal statistics of every summarised sweep over every registered
boundary that the site covers (catalog table ``timeseries``), with exact coverage weights cached per
(grid, boundary)."""

import math
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from radar_assets.defs.automation import SUMMARIES_DOWNSTREAM
from radar_assets.defs.boundaries.assets import BOUNDARIES
from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
from radar_assets.defs.checks import partitioned_check
from radar_assets.defs.metadata import bullets_md, image_md
from radar_assets.defs.partitions import Partitions
from radar_assets.defs.sweeps.assets import RENDERED_SWEEPS

if TYPE_CHECKING:
    from radar_assets.lib.geo.zonal import WeightCache

TIMESERIES_SUMMARIES = "timeseries_summaries"
EVERY_SWEEP = "every_sweep_summarised"
CONSISTENT = "statistics_consistent"


class ZonalResource(dg.ConfigurableResource):
    """Where coverage weights are cached on disk (None: memory only)."""

    cache_dir: str | None = Field(default=None, description="Folder of cached coverage weights")
    max_bytes: int = Field(default=0, description="Size bound of the folder, LRU (0: no bound)")

    def weight_cache(self) -> "WeightCache":
        # Imported here and in the asset body, not at module level: the geo and zonal stack (numpy, shapely,
        # pyproj, rasterio, pyarrow) would otherwise load in every process that loads the code location,
        # every run of every other asset included.
        from radar_assets.lib.geo.zonal import WeightCache

        return WeightCache(self.cache_dir, max_bytes=self.max_bytes)


def inconsistent_rows(rows: list[dict]) -> list[str]:
    """Rows whose statistics contradict each other (min <= p50 <= p90 <= max, min <= mean <= max,
    fractions within [0, 1])."""
    bad = []
    eps = 1e-9
    for r in rows:
        problems = []
        for name in ("coverage_fraction", "frac_ge_20dbz"):
            v = r[name]
            if v is not None and not (-eps <= v <= 1 + 1e-6):
                problems.append(f"{name}={v}")
        if r["cells"]:
            lo, hi = r["min"], r["max"]
            for name in ("mean", "p50", "p90"):
                if not (lo - eps <= r[name] <= hi + eps):
                    problems.append(f"{name} outside [min, max]")
            if r["p50"] > r["p90"] + eps:
                problems.append("p50 > p90")
        elif r["count"] != 0 or r["mean"] is not None:
            problems.append("statistics without valid cells")
        if problems:
            bad.append(f"{r['boundary']} {r['sweep_id']}: {', '.join(problems)}")
    return bad


def _timeseries_summaries(
    context: dg.AssetExecutionContext,
    store: StoreResource,
    catalog: CatalogResource,
    zonal: ZonalResource,
) -> dg.MaterializeResult:
    from radar_assets.lib.geo.boundaries import registered
    from radar_assets.lib.scans import tables_equal
    from radar_assets.lib.timeseries import summaries

    cat = catalog.get_catalog()
    partition = context.partition_key
    sweeps = cat.read_partition("sweeps", partition)
    if sweeps is None:
        raise dg.Failure(
            f"no rendered_sweeps rows for partition {partition}: materialise rendered_sweeps first"
        )
    bounds = summaries.boundaries_from_table(registered(cat))
    previous = cat.read_partition(summaries.TABLE, partition)
    result = summaries.summarise_partition(
        sweeps, store.get_store(), bounds, partition, previous=previous, cache=zonal.weight_cache()
    )
    written = []
    if not tables_equal(previous, result.rows):
        written.append(cat.write_partition(summaries.TABLE, partition, result.rows))
    for reason in result.rejects:
        context.log.warning(f"not summarised: {reason}")
    rows = result.rows.to_pylist()
    bad = inconsistent_rows(rows)
    metadata = {
        "dagster/row_count": result.rows.num_rows,
        "boundaries_registered": len(bounds),
        "boundaries_covered": len(result.boundaries_covered),
        "sweeps_summarised": result.sweeps_summarised,
        "sweeps_reused": result.sweeps_reused,
        "catalog_files_written": dg.MetadataValue.json(written),
    }
    top = summaries.top_boundaries(result.rows, k=5)
    if top:
        png = summaries.plot_series(
            result.rows, top, title=f"{partition}: mean REF of the 5 wettest boundaries"
        )
        metadata["plot"] = image_md(png, f"Mean reflectivity per scan: {', '.join(top)}", "time series")
    wettest = max((r["frac_ge_20dbz"] or 0.0 for r in rows), default=0.0)
    metadata["max_frac_ge_20dbz"] = 0.0 if math.isnan(wettest) else round(wettest, 4)
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=EVERY_SWEEP,
                passed=not result.rejects,
                metadata={"not_summarised": bullets_md(result.rejects)},
            ),
            dg.AssetCheckResult(
                check_name=CONSISTENT,
                passed=not bad,
                metadata={"problems": bullets_md(bad[:50])},
            ),
        ],
    )


def build_timeseries_summaries(partitions: Partitions) -> dg.AssetsDefinition:
    """``timeseries_summaries`` on the deployment's partition grid."""
    return dg.asset(
        name=TIMESERIES_SUMMARIES,
        partitions_def=partitions.site_day,
        deps=[RENDERED_SWEEPS, BOUNDARIES],
        automation_condition=SUMMARIES_DOWNSTREAM,
        group_name="timeseries",
        kinds={"parquet", "numpy"},
        check_specs=[
            partitioned_check(
                EVERY_SWEEP,
                asset="timeseries_summaries",
                description="Every summarised sweep's COG was read",
                partitions_def=partitions.site_day,
            ),
            partitioned_check(
                CONSISTENT,
                asset="timeseries_summaries",
                description="min <= mean, p50, p90 <= max and fractions within [0, 1] on every row",
                partitions_def=partitions.site_day,
            ),
        ],
        description="Per boundary x scan x product: count, coverage fraction, weighted mean, min, max, p50, p90 and "
        "fraction >= 20 dBZ, from exact polygon-coverage weights cached per (grid, boundary).",
    )(_timeseries_summaries)
