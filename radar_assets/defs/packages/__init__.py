"""Dagster layer of the packages family: ``clipped_packages`` (boundary x day) and its check."""

import dagster as dg

from radar_assets.defs.packages.assets import PackagesResource, clipped_packages, packages_resource
from radar_assets.settings import Settings

__all__ = ["PackagesResource", "build_defs", "clipped_packages"]


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[clipped_packages], resources={"packages": packages_resource(settings)})
