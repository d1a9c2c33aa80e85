"""Dagster layer of the packages family: ``clipped_packages`` (boundary x day) and its check."""

import dagster as dg

from radar_assets.defs.packages.assets import PackagesResource, build_clipped_packages, packages_resource
from radar_assets.defs.partitions import partitions_for
from radar_assets.settings import Settings

__all__ = ["PackagesResource", "build_clipped_packages", "build_defs"]


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[build_clipped_packages(partitions_for(settings))],
        resources={"packages": packages_resource(settings)},
    )
