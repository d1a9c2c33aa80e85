"""Fixtures of the API tests: a published test catalog, an app on it, and a real uvicorn server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from radar_assets.api import create_app
from radar_assets_tests.api.catalog_data import build_catalog
from radar_assets_tests.conftest import free_port, settings_for


@pytest.fixture(scope="session")
def catalog_root(tmp_path_factory) -> Path:
    """A published catalog shared by the read-only tests (never modified)."""
    root = tmp_path_factory.mktemp("api-catalog")
    build_catalog(root)
    return root


@pytest.fixture(scope="session")
def settings(catalog_root):
    return settings_for(catalog_root, cors_origins=["https://maps.example.org"], cache_max_age=30)


@pytest.fixture(scope="session")
def app(settings):
    return create_app(settings)


@pytest.fixture(scope="session")
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@contextmanager
def serve(app, **config) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2, **config
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
