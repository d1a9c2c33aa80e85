"""The read-only catalog API: ``create_app(settings)`` builds a FastAPI app with no module-level state.

Everything the routers use lives on ``app.state`` and is reached through :mod:`radar_assets.api.dependencies`
(so tests can swap it with ``app.dependency_overrides``): the settings, the snapshot manager (newest
catalog snapshot, cursor pool) and the object reader (store access for sweep files and tiles).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from radar_assets.api.dependencies import ObjectReader, reject_repeated_parameters
from radar_assets.api.errors import ERROR_STATUS, error_body, status_for
from radar_assets.api.middleware import ReadOnlyMiddleware
from radar_assets.api.routers import ROUTERS
from radar_assets.api.settings import ApiSettings
from radar_assets.api.snapshot import SnapshotManager
from radar_assets.lib.store import open_store


def _open_store(settings: ApiSettings):
    secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
    return open_store(
        settings.store_url,
        endpoint_url=settings.s3_endpoint_url,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret,
        anonymous=settings.s3_anonymous,
        region=settings.s3_region,
    )


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body(exc), status_code=status_for(exc))


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body without the offending ``input`` echoed back (it may be anything a client sent)."""
    detail = [
        {
            "loc": list(err.get("loc", ())),
            "msg": str(err.get("msg", "invalid value")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: ``ApiSettings()``, read from the environment now)."""
    settings = settings if settings is not None else ApiSettings()
    snapshots = SnapshotManager(
        settings.snapshot_path,
        pool_size=settings.pool_size,
        check_interval=settings.snapshot_check_interval,
        duckdb_threads=settings.duckdb_threads,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Few threads: on a few cores, dozens of threads taking turns at the GIL around short queries
        # cost more than they overlap; waiting requests queue as coroutines instead.
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        yield
        snapshots.close()

    app = FastAPI(
        title=settings.title,
        description=(
            "Read-only access to the radar-assets catalog: scans, rendered sweeps (files and map tiles), "
            "Level 3 products, live-feed echoes, and an event stream of catalog publications."
        ),
        version="1",
        lifespan=lifespan,
        dependencies=[Depends(reject_repeated_parameters)],
    )
    app.state.settings = settings
    app.state.snapshots = snapshots
    app.state.objects = ObjectReader(_open_store(settings), settings.tile_cache_bytes)

    app.add_exception_handler(RequestValidationError, _invalid_request)
    for exc_type in ERROR_STATUS:
        app.add_exception_handler(exc_type, _domain_error)
    for module in ROUTERS:
        app.include_router(module.router)

    app.add_middleware(ReadOnlyMiddleware)
    if settings.cors_origins:  # outermost, so preflight OPTIONS requests are answered before the 405
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "HEAD"],
            allow_headers=["*"],
            expose_headers=["ETag", "X-Next-Cursor"],
            max_age=600,
        )
    return app
