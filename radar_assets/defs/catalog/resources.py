"""Resources shared by every asset family: the platform object store and the catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from radar_assets.lib.store import ObjectStore, store_from_url

if TYPE_CHECKING:
    from radar_assets.lib.catalog import Catalog


class StoreResource(dg.ConfigurableResource):
    """The platform store: a local folder (embedded default) or ``s3://bucket/prefix`` on any endpoint."""

    url: str = Field(description="Folder path or s3://bucket/prefix")
    endpoint_url: str | None = Field(default=None, description="S3 endpoint (SeaweedFS, MinIO); None for AWS")
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None
    anonymous: bool = False

    def get_store(self) -> ObjectStore:
        return store_from_url(
            self.url,
            endpoint_url=self.endpoint_url,
            anonymous=self.anonymous,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            region=self.region,
        )


class CatalogResource(dg.ConfigurableResource):
    """Catalog Parquet partitions (in the store) and the published DuckDB snapshot (a local folder)."""

    store: StoreResource
    snapshot_dir: str = Field(description="Folder holding catalog.duckdb, the snapshot the API reads")

    def get_catalog(self) -> Catalog:
        # Imported on use: DuckDB is only needed by runs that touch the catalog, not by every process
        # that loads the code location (webserver, daemon, sensors).
        from radar_assets.lib.catalog import Catalog

        return Catalog(self.store.get_store(), self.snapshot_dir)
