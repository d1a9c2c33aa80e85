"""Where the live-feed spool is, and how the Dagster layer judges the listener's health."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from radar_assets.lib.feed.spool import Spool


class FeedSpoolResource(dg.ConfigurableResource):
    """The spool written by ``radar-assets feed listen`` (a folder the code location can read)."""

    spool_dir: str = Field(description="Spool folder of the listener (--spool)")
    heartbeat_stale_seconds: float = Field(
        default=30.0, description="Listener heartbeat older than this is stale"
    )
    grace_seconds: float = Field(default=300.0, description="An hour is finalised this long after its end")
    retention_hours: float = Field(
        default=48.0, description="Spool segments older than this (landed and published) are removed"
    )

    def get_spool(self) -> Spool:
        # Imported on use: the spool's record decoding (numpy, dmap) is only needed by runs and sensor ticks
        # that read the spool, not by every process that loads the code location.
        from radar_assets.lib.feed.spool import Spool

        return Spool(self.spool_dir)

    def heartbeat_status(self, now: float | None = None) -> tuple[bool, dict]:
        """``(fresh, metadata)`` of the listener heartbeat; a missing heartbeat is stale."""
        now = time.time() if now is None else now
        hb = self.get_spool().heartbeat()
        if hb is None:
            return False, {"spool": self.spool_dir, "heartbeat": "missing"}
        age = now - hb["updated_ns"] / 1e9
        meta = {
            "spool": self.spool_dir,
            "age_seconds": round(age, 1),
            "stale_after_seconds": self.heartbeat_stale_seconds,
            "session": hb.get("session"),
            "received": hb.get("received", 0),
            "accepted": hb.get("accepted", 0),
            "rejected": hb.get("rejected_messages", 0),
            "endpoints": ", ".join(hb.get("endpoints", [])),
        }
        return age <= self.heartbeat_stale_seconds, meta
