"""Sub-commands of ``radar-assets`` that belong to one asset family each."""

from __future__ import annotations

import click


def register(main: click.Group, source: click.Group) -> None:
    """Attach the family commands to the top-level group (and ``source``)."""
    from radar_assets.commands.api import api
    from radar_assets.commands.feed import feed
    from radar_assets.commands.render import render
    from radar_assets.commands.synth import synth

    main.add_command(api)
    main.add_command(render)
    main.add_command(feed)
    source.add_command(synth)
