"""``radar-assets daemon ARGS``: ``dagster-daemon ARGS`` whose backfill loop runs every few seconds.

Dagster's backfill daemon looks for new backfills every 30 s, a constant of Dagster 1.13
(``dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS``, not an instance setting): a backfill
launched from the UI waits up to 30 s before its first run is even created, which on a backfill of a day
of two sites was a tenth of its wall time (docs/partitions.md). This command sets that constant to
``RADAR_ASSETS_AUTOMATION_BACKFILL_LOOP_SECONDS`` (5 by default) in the daemon's own process before it
starts, then hands over to ``dagster-daemon`` unchanged. The same constant is the legacy auto-materialize
loop's default, which this code location does not use (its automation runs as sensors with their own
intervals), so nothing else changes. A test launches a backfill through the webserver and checks its first
run is created within the loop, so an upgrade of Dagster that moves the constant fails there, not silently.
"""

from __future__ import annotations

import sys

import click


def run_dagster_daemon(args: list[str], backfill_loop_seconds: int) -> int:
    """Run ``dagster-daemon *args`` in this process with the backfill loop every ``backfill_loop_seconds``."""
    from dagster._daemon import controller
    from dagster._daemon.cli import main as dagster_daemon

    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = backfill_loop_seconds  # read by each loop when it starts
    sys.argv = ["dagster-daemon", *args]
    return dagster_daemon()


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def daemon(args: tuple[str, ...]) -> None:
    """Dagster's daemon with a 5 s backfill loop: `radar-assets daemon run -w workspace.yaml`.

    Every argument goes to dagster-daemon; the loop is RADAR_ASSETS_AUTOMATION_BACKFILL_LOOP_SECONDS.
    """
    from radar_assets.cli.context import settings

    sys.exit(run_dagster_daemon(list(args), settings().automation.backfill_loop_seconds))
