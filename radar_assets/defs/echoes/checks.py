"""Asset checks of ``live_echoes`` that are not computed by a materialisation.

``listener_heartbeat`` is evaluated by the feed sensor every tick (and on demand from the UI): a listener
that stopped writing its heartbeat means records are being missed right now, whatever the catalog says.
"""

import dagster as dg

from radar_assets.defs.echoes.resources import FeedSpoolResource

LISTENER_HEARTBEAT = "listener_heartbeat"


@dg.asset_check(
    asset="live_echoes",
    name=LISTENER_HEARTBEAT,
    description="The feed listener's heartbeat is fresh (a stale one means records are being missed now).",
)
def listener_heartbeat(feed_spool: FeedSpoolResource) -> dg.AssetCheckResult:
    fresh, meta = feed_spool.heartbeat_status()
    return dg.AssetCheckResult(passed=fresh, metadata=meta)


asset_checks = [listener_heartbeat]
