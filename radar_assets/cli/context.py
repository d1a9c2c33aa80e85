"""What every command needs from the environment: the settings, the Dagster instance, the catalog."""

from __future__ import annotations

from pathlib import Path

import click

from radar_assets.settings import Settings, SettingsError, load_settings


def settings(**overrides) -> Settings:
    """The settings of this invocation; invalid ones become a usage error naming the variables."""
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def ensure_dagster_home(home: Path) -> None:
    """Create DAGSTER_HOME with the project's embedded instance configuration."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        template = Path(__file__).resolve().parents[2] / "dagster.yaml"
        target.write_text(template.read_text())


def instance(s: Settings | None = None):
    """The Dagster instance of the settings (``DAGSTER_HOME``, default under the embedded home)."""
    import dagster as dg

    s = s or settings()
    ensure_dagster_home(s.dagster_home)
    return dg.DagsterInstance.from_config(str(s.dagster_home))
