"""Rendering of radar sweeps: Web Mercator PNG overlays, bounds JSON and value COGs (pure library)."""

from .sweep import DEFAULT_SIZE, RenderedSweep, default_moments, render_sweep, render_volume

__all__ = ["DEFAULT_SIZE", "RenderedSweep", "default_moments", "render_sweep", "render_volume"]
