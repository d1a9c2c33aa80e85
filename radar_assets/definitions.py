"""The code location: ``Definitions`` built lazily from :class:`~radar_assets.settings.Settings`.

Importing this module reads nothing and builds nothing; Dagster calls :func:`defs` (``@dg.definitions``)
when it loads the code location, and that is when the environment is read and validated (a production
deployment missing a location fails here, naming the variables).

Each family under ``defs/<family>/`` exports ``build_defs(settings) -> dg.Definitions`` and builds its
partitioned assets, checks, jobs, sensors and schedules there, from the deployment's partition grid
(:func:`radar_assets.defs.partitions.partitions_for`); adding a family is one line in :data:`FAMILIES`.
"""

from __future__ import annotations

import dagster as dg

from radar_assets.defs import (
    automation,
    boundaries,
    catalog,
    echoes,
    packages,
    retention,
    scans,
    sweeps,
    timeseries,
)
from radar_assets.defs.executors import executor_defs
from radar_assets.defs.partitions import partitions_for
from radar_assets.defs.resources import shared_resources
from radar_assets.settings import Settings, load_settings

#: Families whose assets write catalog rows; ``catalog_snapshot`` depends on all of their assets.
FAMILIES = (scans, sweeps, echoes, packages, boundaries, timeseries)


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings if settings is not None else load_settings()
    families = [family.build_defs(settings) for family in FAMILIES]
    upstream = [key for family in families for asset in family.assets or [] for key in _keys(asset)]
    return dg.Definitions.merge(
        *families,
        catalog.build_defs(settings, upstream),
        automation.build_defs(
            [asset for family in families for asset in family.assets or []], partitions_for(settings)
        ),
        retention.build_defs(settings),
        dg.Definitions(resources=shared_resources(settings)),
        executor_defs(settings),
    )


def _keys(asset) -> list[dg.AssetKey]:
    return list(asset.keys) if isinstance(asset, dg.AssetsDefinition) else [asset.key]


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
