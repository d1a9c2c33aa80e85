"""Partition definitions shared by the asset families (key formats: :mod:`radar_assets.lib.partitions`).

Sites and boundaries are dynamic dimensions, so a site or a boundary is added at run time
(``radar-assets sites add KLOT``, ``radar-assets boundaries add FILE``) without a deploy.
Days start in 2005: earlier Level 2 (Message 1) files can still be rendered with ``radar-assets render``,
but every extra day multiplies the partition count by the number of sites.
"""

from __future__ import annotations

import dagster as dg

from radar_assets.lib import partitions as keys

FIRST_DAY = "2005-01-01"

sites_partitions = dg.DynamicPartitionsDefinition(name="sites")
boundaries_partitions = dg.DynamicPartitionsDefinition(name="boundaries")
day_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_offset=1)
site_day_partitions = dg.MultiPartitionsDefinition({"site": sites_partitions, "day": day_partitions})
boundary_day_partitions = dg.MultiPartitionsDefinition(
    {"boundary": boundaries_partitions, "day": day_partitions}
)
hourly_partitions = dg.HourlyPartitionsDefinition(start_date="2024-01-01-00:00", end_offset=1)


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
