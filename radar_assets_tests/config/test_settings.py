"""One home for configuration: only settings.py reads the environment; the README documents every variable."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from radar_assets.settings import Settings, load_settings, open_store, variables_markdown

PACKAGE = Path(__file__).resolve().parents[2] / "radar_assets"
README = PACKAGE.parent / "README.md"


def _reads_environment(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb", "putenv"):
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(a.name in ("environ", "getenv", "environb") for a in node.names):
                lines.append(node.lineno)
    return lines


def test_only_settings_reads_the_environment():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "settings.py":
            continue
        for line in _reads_environment(ast.parse(path.read_text(), str(path))):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    assert offenders == [], "only radar_assets/settings.py may read the environment"


def test_the_checker_finds_environment_reads():
    """The walker above would catch each spelling (so the test above can fail)."""
    for code in ("import os\nos.environ['X']", "import os\nos.getenv('X')", "from os import environ"):
        assert _reads_environment(ast.parse(code)), code


def test_readme_table_equals_settings():
    text = README.read_text()
    match = re.search(r"<!-- settings:begin -->\n(.*?)\n<!-- settings:end -->", text, re.S)
    assert match, "README.md needs the settings table between <!-- settings:begin/end --> markers"
    assert match.group(1).strip() == variables_markdown().strip(), (
        "README's variables table is out of date: paste `radar-assets settings --variables`"
    )


def test_every_field_is_documented():
    from radar_assets.settings import environment_variables

    undocumented = [var for var, _default, doc in environment_variables() if not doc]
    assert undocumented == []


def test_nested_variables_and_lists(monkeypatch, tmp_path):
    monkeypatch.setenv("RADAR_ASSETS_HOME", str(tmp_path))
    monkeypatch.setenv("RADAR_ASSETS_STORE_URL", "s3://bucket/prefix")
    monkeypatch.setenv("RADAR_ASSETS_STORE_ENDPOINT", "http://127.0.0.1:8333")
    monkeypatch.setenv("RADAR_ASSETS_API_CACHE_MAX_AGE", "7")
    monkeypatch.setenv("RADAR_ASSETS_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("RADAR_ASSETS_SITES", "KLOT,KTLX")
    s = load_settings()
    assert s.store.url == "s3://bucket/prefix" and s.store.endpoint == "http://127.0.0.1:8333"
    assert s.api.cache_max_age == 7
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert s.sites == ["KLOT", "KTLX"]
    assert s.catalog.dir == tmp_path.resolve() / "catalog"  # embedded default under HOME
    store = open_store(s)
    assert store.url == "s3://bucket/prefix" and store.endpoint_url == "http://127.0.0.1:8333"


def test_invalid_value_names_the_variable(monkeypatch):
    from radar_assets.settings import SettingsError

    monkeypatch.setenv("RADAR_ASSETS_API_POOL_SIZE", "lots")
    with pytest.raises(SettingsError, match="RADAR_ASSETS_API_POOL_SIZE"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RADAR_ASSETS_PARTITIONS_FIRST_DAY", "2024-13-01", "not a day YYYY-MM-DD"),
        ("RADAR_ASSETS_PARTITIONS_FIRST_DAY", "01/05/2024", "not a day YYYY-MM-DD"),
        ("RADAR_ASSETS_PARTITIONS_FIRST_DAY", "2999-01-01", "after today"),
        ("RADAR_ASSETS_PARTITIONS_FIRST_HOUR", "2024-05-01T00", "not an hour YYYY-MM-DD-HH:00"),
        ("RADAR_ASSETS_PARTITIONS_FIRST_HOUR", "2024-05-01-00:30", "not on the hour"),
        ("RADAR_ASSETS_PARTITIONS_FIRST_HOUR", "2999-01-01-00:00", "after the current hour"),
    ],
)
def test_partition_grid_start_is_validated(monkeypatch, variable, value, message):
    from radar_assets.settings import SettingsError

    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"{variable}: .*{message}"):
        load_settings()


def test_partition_grid_defaults_to_the_demo(monkeypatch):
    from radar_assets.cli.demo import DEMO_START

    monkeypatch.delenv("RADAR_ASSETS_PARTITIONS_FIRST_DAY", raising=False)
    monkeypatch.delenv("RADAR_ASSETS_PARTITIONS_FIRST_HOUR", raising=False)
    s = load_settings()
    assert DEMO_START.startswith(s.partitions.first_day)
    assert s.partitions.first_hour == f"{s.partitions.first_day}-00:00"
    monkeypatch.setenv("RADAR_ASSETS_PARTITIONS_FIRST_DAY", "2013-01-01")
    assert load_settings().partitions.first_hour == "2013-01-01-00:00"  # follows the first day unless set
    monkeypatch.setenv("RADAR_ASSETS_PARTITIONS_FIRST_HOUR", "2024-01-01-06:00")
    assert load_settings().partitions.first_hour == "2024-01-01-06:00"
    for part in ("DAY", "HOUR"):  # set but empty, as compose passes an unset variable: the default
        monkeypatch.setenv(f"RADAR_ASSETS_PARTITIONS_FIRST_{part}", "")
    assert load_settings().partitions == s.partitions


def test_process_environment_round_trips(tmp_path, monkeypatch):
    s = Settings(
        home=tmp_path,
        store={"url": "s3://b/p", "endpoint": "http://x:1"},
        sites=["KLOT"],
        partitions={"first_day": "2013-05-20"},
    )
    for key, value in s.process_environment().items():
        monkeypatch.setenv(key, value)
    again = load_settings()
    assert again.store == s.store and again.catalog == s.catalog and again.feed == s.feed
    assert again.partitions == s.partitions
    assert again.sites == ["KLOT"] and again.dagster_home == s.dagster_home
