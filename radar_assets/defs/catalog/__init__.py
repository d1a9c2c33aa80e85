"""Dagster layer of the catalog: the single writer that publishes the DuckDB snapshot."""

from collections.abc import Sequence

import dagster as dg

from radar_assets.defs.catalog.assets import build_catalog_snapshot, catalog_automation_sensor
from radar_assets.settings import Settings


def build_defs(settings: Settings, upstream: Sequence[dg.AssetKey]) -> dg.Definitions:
    """``catalog_snapshot`` depends on every asset that writes catalog rows (``upstream``)."""
    return dg.Definitions(
        assets=[build_catalog_snapshot(upstream)],
        sensors=[catalog_automation_sensor],
    )
