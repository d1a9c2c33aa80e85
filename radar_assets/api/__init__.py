"""Read-only HTTP API over the published catalog snapshot (FastAPI)."""

from __future__ import annotations

from radar_assets.api.app import create_app
from radar_assets.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
