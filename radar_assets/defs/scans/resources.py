"""The radar source archive: NOAA/Unidata public buckets or any S3 endpoint or folder in their layouts."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from radar_assets.lib.keys import DEFAULT_LEVEL3_PRODUCTS
from radar_assets.lib.store import ObjectStore, store_from_url


class RadarSourceResource(dg.ConfigurableResource):
    """Where ``raw_scans`` reads from.

    Level 2 and Level 3 may live in different buckets (``s3://unidata-nexrad-level2`` and
    ``s3://unidata-nexrad-level3`` publicly); ``level3_url`` defaults to ``url``.
    """

    url: str = Field(description="Level 2 source: folder path or s3://bucket/prefix")
    level3_url: str | None = Field(default=None, description="Level 3 source; defaults to url")
    endpoint_url: str | None = None
    anonymous: bool = Field(default=False, description="Unsigned requests, for the public archives")
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None
    level3_products: list[str] = Field(default=list(DEFAULT_LEVEL3_PRODUCTS))
    sensor_budget_s: float = Field(
        default=40.0,
        gt=0,
        description="Listing time per source-sensor tick (Dagster stops a tick at 60 s); the next tick continues",
    )
    sensor_workers: int = Field(
        default=8,
        ge=1,
        le=64,
        description="Sites listed at once by the source sensor (listings wait on the network)",
    )

    def _open(self, url: str) -> ObjectStore:
        return store_from_url(
            url,
            endpoint_url=self.endpoint_url,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            anonymous=self.anonymous,
            region=self.region,
        )

    def level2(self) -> ObjectStore:
        return self._open(self.url)

    def level3(self) -> ObjectStore:
        return self._open(self.level3_url or self.url)
