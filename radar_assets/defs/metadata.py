"""Markdown metadata values the asset families show in the UI: an inline picture, a bulleted list."""

from __future__ import annotations

import base64
from collections.abc import Iterable

import dagster as dg


def image_md(png: bytes, caption: str, alt: str) -> dg.MetadataValue:
    """A PNG inline in the materialisation page (a data URL: the UI needs no access to the store)."""
    b64 = base64.b64encode(png).decode()
    return dg.MetadataValue.md(f"**{caption}**\n\n![{alt}](data:image/png;base64,{b64})")


def bullets_md(items: Iterable[object]) -> dg.MetadataValue:
    """One bullet per item, or ``none``."""
    return dg.MetadataValue.md("\n".join(f"- {item}" for item in items) or "none")
