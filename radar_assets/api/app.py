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
from radar_assets.api.snapshot import SnapshotManager
from radar_assets.api.static import install_pages
from radar_assets.settings import Settings, load_settings, open_store


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


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for ``settings`` (default: read from the environment now, as every service does)."""
    settings = settings if settings is not None else load_settings()
    snapshots = SnapshotManager(
        settings.snapshot_path,
        pool_size=settings.api.pool_size,
        check_interval=settings.api.snapshot_check_interval,
        duckdb_threads=settings.api.duckdb_threads,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Few threads: on a few cores, dozens of threads taking turns at the GIL around short queries
        # cost more than they overlap; waiting requests queue as coroutines instead.
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api.worker_threads
        yield
        hub = getattr(app.state, "live_hub", None)  # made on first use by /live/stream
        if hub is not None:
            await hub.stop()
        snapshots.close()

    app = FastAPI(
        title=settings.api.title,
        description=(
            "Read-only access to the radar-assets catalog: scans, rendered sweeps (files and map tiles), "
            "Level 3 products, live-feed echoes, and an event stream of catalog publications."
        ),
        version="1",
        lifespan=lifespan,
        dependencies=[Depends(reject_repeated_parameters)],
        # Served by install_pages with local assets (FastAPI's defaults load them from a CDN).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.snapshots = snapshots
    app.state.objects = ObjectReader(open_store(settings), settings.api.tile_cache_bytes)

    app.add_exception_handler(RequestValidationError, _invalid_request)
    for exc_type in ERROR_STATUS:
        app.add_exception_handler(exc_type, _domain_error)
    for module in ROUTERS:
        app.include_router(module.router)
    install_pages(app)

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
