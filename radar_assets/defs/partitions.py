"""Partition definitions shared by the asset families (key formats: :mod:`radar_assets.lib.partitions`).

Sites and boundaries are dynamic dimensions, so a site or a boundary is added at run time
(``radar-assets sites add KLOT``, ``radar-assets boundaries add FILE``) without a deploy; their definitions
depend on nothing and are module constants. The time dimensions start where the deployment says
(``Settings.partitions``: ``RADAR_ASSETS_PARTITIONS_FIRST_DAY`` / ``_FIRST_HOUR``): every extra day multiplies
the partition count by the number of sites, and Dagster's UI slows with it (``docs/partitions.md``). So every
partitioned asset, check, job, sensor and schedule is built by its family's ``build_defs(settings)`` from
:func:`partitions_for`, never bound to a start at import time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import dagster as dg

from radar_assets.lib import partitions as keys
from radar_assets.settings import PartitionsSettings, Settings

sites_partitions = dg.DynamicPartitionsDefinition(name="sites")
boundaries_partitions = dg.DynamicPartitionsDefinition(name="boundaries")


@dataclass(frozen=True)
class Partitions:
    """The partition definitions of one deployment (equal settings give the same objects)."""

    first_day: str
    """First day of the day dimension (YYYY-MM-DD)."""
    first_hour: str
    """First hourly key (YYYY-MM-DD-HH:MM)."""
    day: dg.DailyPartitionsDefinition
    site_day: dg.MultiPartitionsDefinition
    boundary_day: dg.MultiPartitionsDefinition
    hourly: dg.HourlyPartitionsDefinition
    sites: dg.DynamicPartitionsDefinition = sites_partitions
    boundaries: dg.DynamicPartitionsDefinition = boundaries_partitions

    def has_day(self, day: str) -> bool:
        """Whether ``day`` (YYYY-MM-DD) is on or after the grid's first day (the end is Dagster's: tomorrow)."""
        return day >= self.first_day

    def has_hour(self, hour: str) -> bool:
        """Whether the hourly key ``hour`` is on or after the grid's first hour."""
        return hour >= self.first_hour


def partitions_for(settings: Settings | PartitionsSettings) -> Partitions:
    """The partition definitions of ``settings`` (a whole :class:`Settings` or its ``partitions`` part)."""
    part = settings.partitions if isinstance(settings, Settings) else settings
    return _build(part.first_day, part.first_hour or f"{part.first_day}-00:00")


@functools.cache
def _build(first_day: str, first_hour: str) -> Partitions:
    # end_offset=1: today's partitions exist (the archive fills them through the day), and tomorrow's for
    # sites in time zones ahead of UTC.
    day = dg.DailyPartitionsDefinition(start_date=first_day, end_offset=1)
    return Partitions(
        first_day=first_day,
        first_hour=first_hour,
        day=day,
        site_day=dg.MultiPartitionsDefinition({"site": sites_partitions, "day": day}),
        boundary_day=dg.MultiPartitionsDefinition({"boundary": boundaries_partitions, "day": day}),
        hourly=dg.HourlyPartitionsDefinition(start_date=first_hour, end_offset=1),
    )


def site_day_key(site: str, day: str) -> dg.MultiPartitionKey:
    key = dg.MultiPartitionKey({"site": site, "day": day})
    assert str(key) == keys.site_day(site, day), "lib.partitions must spell Dagster's key"
    return key


def boundary_day_key(boundary: str, day: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"boundary": boundary, "day": day})


def split_site_day(key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(site, day) of a site-day partition key."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["site"], dims["day"]
    return keys.split_site_day(key)
