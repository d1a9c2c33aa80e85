"""The ``radar-assets`` command: one module per command group, registered in :data:`GROUPS`.

Every command builds its :class:`~radar_assets.settings.Settings` when it runs (never at import), so
``--help`` works whatever the environment holds. Add a group by writing a module with a click command or
group named like the module and listing it in :data:`GROUPS`.
"""

from __future__ import annotations

import importlib

import click

#: (module, command attribute) of every top-level command, in help order.
GROUPS = (
    ("sites", "sites"),
    ("boundaries", "boundaries"),
    ("source", "source"),
    ("catalog", "catalog"),
    ("render", "render"),
    ("feed", "feed"),
    ("api", "api"),
    ("daemon", "daemon"),
    ("settings_cmd", "settings"),
    ("demo", "demo"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """radar-assets: partitioned, catalogued weather-radar assets on Dagster."""


for _module, _attr in GROUPS:
    main.add_command(getattr(importlib.import_module(f"{__name__}.{_module}"), _attr))
