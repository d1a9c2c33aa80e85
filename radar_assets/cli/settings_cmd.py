"""``radar-assets settings``: every setting, its variable and its current value (secrets hidden)."""

from __future__ import annotations

import json

import click

from radar_assets.cli.context import settings as load


@click.command("settings")
@click.option("--variables", is_flag=True, help="Print the table of variables (as in the README) instead.")
def settings(variables: bool) -> None:
    """Show the effective settings (from RADAR_ASSETS_* variables and defaults)."""
    if variables:
        from radar_assets.settings import variables_markdown

        click.echo(variables_markdown())
        return
    click.echo(json.dumps(load().model_dump(mode="json"), indent=1, default=str))
