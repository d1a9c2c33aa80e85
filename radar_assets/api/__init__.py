"""Read-only HTTP API over the published catalog snapshot (FastAPI)."""

from __future__ import annotations

from radar_assets.api.app import create_app

__all__ = ["create_app"]
