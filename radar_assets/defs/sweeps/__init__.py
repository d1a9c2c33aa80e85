"""Dagster layer of the sweeps family: ``rendered_sweeps``."""

from radar_assets.defs.sweeps.assets import rendered_sweeps

assets = [rendered_sweeps]
