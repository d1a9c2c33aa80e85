"""Partition definitions shared by the asset families.

Sites are a dynamic dimension so a site is added at run time (``radar-assets sites add KLOT``) without a deploy.
Days start in 2005: earlier Level 2 (Message 1) files can still be rendered with ``radar-assets render``, but
every extra day multiplies the partition count by the number of sites.
"""

from __future__ import annotations

import dagster as dg

FIRST_DAY = "2005-01-01"

sites_partitions = dg.DynamicPartitionsDefinition(name="sites")
day_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_offset=1)
site_day_partitions = dg.MultiPartitionsDefinition({"site": sites_partitions, "day": day_partitions})
hourly_partitions = dg.HourlyPartitionsDefinition(start_date="2024-01-01-00:00", end_offset=1)


def site_day_key(site: str, day: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"site": site, "day": day})


def split_site_day(key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(site, day) of a site-day partition key (``2021-06-25|KLOT``: dimensions in name order)."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["site"], dims["day"]
    day, site = key.split("|")
    return site, day
