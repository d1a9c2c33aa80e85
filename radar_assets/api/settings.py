"""Settings of the read-only catalog API.

Nothing is read at import: an :class:`ApiSettings` reads ``RADAR_ASSETS_API_*`` environment variables only
when it is constructed (the ``radar-assets api`` command builds one from its options), and
:func:`radar_assets.api.create_app` takes it as an argument.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from radar_assets.lib.catalog import SNAPSHOT_NAME


class ApiSettings(BaseSettings):
    """Where the catalog is, how to reach the store, and the HTTP policies of the API."""

    model_config = SettingsConfigDict(env_prefix="RADAR_ASSETS_API_", extra="forbid")

    # -- catalog and store ------------------------------------------------------------------------
    snapshot_path: Path = Field(
        Path(".radar-assets/catalog") / SNAPSHOT_NAME, description="Published DuckDB catalog snapshot."
    )
    store_url: str = Field(
        ".radar-assets/store", description="Object store: a folder, file://PATH or s3://BUCKET/PREFIX."
    )
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_anonymous: bool = False

    # -- snapshot handling ------------------------------------------------------------------------
    snapshot_check_interval: float = Field(
        1.0, ge=0, le=60, description="Seconds between stats of the snapshot path."
    )
    pool_size: int = Field(16, ge=1, le=256, description="Idle DuckDB cursors kept per snapshot.")
    worker_threads: int = Field(
        8,
        ge=1,
        le=256,
        description="Threads running (sync) endpoints; further requests wait on the event loop.",
    )
    duckdb_threads: int = Field(1, ge=1, le=64, description="DuckDB threads per query.")

    # -- HTTP ---------------------------------------------------------------------------------------
    cors_origins: list[str] = Field(
        default_factory=list, description="Allowed CORS origins (empty: CORS off)."
    )
    cache_max_age: int = Field(60, ge=0, description="max-age of list and metadata responses (seconds).")
    file_max_age: int = Field(31_536_000, ge=0, description="max-age of sweep files (immutable).")
    tile_max_age: int = Field(86_400, ge=0, description="max-age of map tiles.")
    tile_cache_bytes: int = Field(
        256 * 1024 * 1024, ge=0, description="Memory for COG bytes read from the store."
    )
    events_poll_interval: float = Field(
        1.0, gt=0, le=60, description="Seconds between snapshot checks of /events."
    )
    events_keepalive: float = Field(
        15.0, gt=0, le=300, description="Seconds between SSE keep-alive comments."
    )
    title: str = "radar-assets catalog API"

    @classmethod
    def for_root(cls, root: str | Path, **overrides) -> ApiSettings:
        """Settings for the embedded layout of :func:`radar_assets.lib.catalog.local_catalog` under ``root``."""
        root = Path(root)
        values = {"snapshot_path": root / "catalog" / SNAPSHOT_NAME, "store_url": str(root / "store")}
        values.update(overrides)
        return cls(**values)
