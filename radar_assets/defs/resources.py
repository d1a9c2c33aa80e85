"""Resources every family shares, built from :class:`~radar_assets.settings.Settings`.

Secrets reach Dagster as ``dg.EnvVar`` (resolved when a run starts, never stored in run config); every
other value is the setting itself.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from radar_assets.defs.catalog.resources import CatalogResource, StoreResource
from radar_assets.defs.scans.resources import RadarSourceResource
from radar_assets.defs.scans.sensors import SitesConfig
from radar_assets.settings import Settings


class RenderResource(dg.ConfigurableResource):
    """Renderer settings of a run's process (the on-disk polar-lookup cache)."""

    cache_dir: str | None = Field(default=None, description="Lookup cache folder; None disables it")
    cache_max_bytes: int = Field(
        default=2 * 1024**3, ge=0, description="LRU size bound of the cache (0: none)"
    )
    size: int = Field(
        default=2048, ge=64, le=8192, description="Default pixels on the long side of each image"
    )

    def apply(self) -> None:
        from radar_assets.lib.render.grid import set_lookup_cache_dir, set_lookup_cache_limit

        set_lookup_cache_dir(self.cache_dir)
        set_lookup_cache_limit(self.cache_max_bytes)


def _secret(settings: Settings, variable: str, value) -> str | dg.EnvVar | None:
    if value is None:
        return None
    if settings.from_environment(variable):
        return dg.EnvVar(variable)
    return value.get_secret_value()


def shared_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    key = _secret(settings, "AWS_ACCESS_KEY_ID", settings.aws_access_key_id)
    secret = _secret(settings, "AWS_SECRET_ACCESS_KEY", settings.aws_secret_access_key)
    store = StoreResource(
        url=settings.store.url,
        endpoint_url=settings.store.endpoint,
        region=settings.store.region,
        anonymous=settings.store.anonymous,
        access_key_id=key,
        secret_access_key=secret,
    )
    cache = settings.render.lookup_cache()
    return {
        "store": store,
        "catalog": CatalogResource(store=store, snapshot_dir=str(settings.catalog.dir)),
        "source": RadarSourceResource(
            url=settings.source.url,
            level3_url=settings.source.level3_url,
            endpoint_url=settings.source.endpoint,
            anonymous=settings.source.anonymous,
            access_key_id=key,
            secret_access_key=secret,
        ),
        "sites_config": SitesConfig(sites=settings.sites),
        "render": RenderResource(
            cache_dir=str(cache) if cache else None,
            cache_max_bytes=settings.render.cache_max_bytes,
            size=settings.render.size,
        ),
    }
