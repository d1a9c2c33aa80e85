"""Every setting of radar-assets, in one place: the only module that reads the environment.

One pydantic-settings :class:`Settings` with the prefix ``RADAR_ASSETS_`` and nested parts (``store``,
``source``, ``catalog``, ``feed``, ``render``, ``api``). A nested field is set by the part's name and the
field's name joined by ``_``: ``RADAR_ASSETS_STORE_URL`` is ``settings.store.url``,
``RADAR_ASSETS_API_CACHE_MAX_AGE`` is ``settings.api.cache_max_age``. Lists are comma-separated.

The embedded default needs no configuration: everything lives under ``.radar-assets/`` in the working
directory (or ``RADAR_ASSETS_HOME``). ``RADAR_ASSETS_ENV=production`` requires the locations that must not
default to a local folder (:data:`PRODUCTION_REQUIRED`) and says which are missing.

Credentials are the standard ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``; Dagster resources receive them
as ``dg.EnvVar`` so they are read at run time and never stored in run configuration.

Nothing here runs at import: :class:`Settings` reads the environment when it is constructed
(``Settings()``), and every entry point (code location, API, command line) constructs one.
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PREFIX = "RADAR_ASSETS_"
SNAPSHOT_NAME = "catalog.duckdb"
CommaList = Annotated[list[str], NoDecode]
#: The demo's first day (``radar-assets demo`` synthesises weather from its midnight) and the grid's default start.
DEFAULT_FIRST_DAY = "2024-05-01"


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


@functools.cache
def _attribute_docstrings() -> dict[str, dict[str, str]]:
    """``{class: {field: docstring}}`` of this module's classes: the string under each annotated attribute,
    as pydantic's ``use_attribute_docstrings`` reads it (cleaned like it, nested classes and functions skipped).

    One parse of this file replaces that option: pydantic finds each class's source by calling
    ``inspect.getmodule`` on every frame of the import, which scans all of ``sys.modules`` for each of them
    and cost ~0.1 s of every process that loads the code location after Dagster's modules.
    """
    docs: dict[str, dict[str, str]] = {}
    for node in ast.parse(Path(__file__).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef):
            docs[node.name] = {
                stmt.target.id: inspect.cleandoc(doc.value.value)
                for stmt, doc in zip(node.body, node.body[1:], strict=False)
                if isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(doc, ast.Expr)
                and isinstance(doc.value, ast.Constant)
                and isinstance(doc.value.value, str)
            }
    return docs


class _Described:
    """Each field's attribute docstring becomes its ``description`` (unless ``Field`` sets one), before
    pydantic collects the fields: what ``use_attribute_docstrings=True`` does, see :func:`_attribute_docstrings`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, doc in _attribute_docstrings().get(cls.__name__, {}).items():
            value = cls.__dict__.get(name, ...)
            if not isinstance(value, FieldInfo):
                setattr(cls, name, Field(value, description=doc))
            elif value.description is None:
                setattr(cls, name, FieldInfo.merge_field_infos(value, description=doc))


class _Part(_Described, BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Part):
    """The platform store: rendered files, packages and the catalog's Parquet partitions."""

    url: str | None = None
    """Folder, file://PATH or s3://BUCKET/PREFIX (default: HOME/store)."""
    endpoint: str | None = None
    """S3 endpoint of any S3 server (SeaweedFS, MinIO); unset for AWS."""
    region: str | None = None
    """S3 region (default us-east-1)."""
    anonymous: bool = False
    """Unsigned S3 requests (read-only public buckets)."""


class SourceSettings(_Part):
    """The radar archive in the public NOAA/Unidata layouts."""

    url: str | None = None
    """Level 2 archive: folder or s3://BUCKET/PREFIX, e.g. s3://unidata-nexrad-level2 (default: HOME/source)."""
    level3_url: str | None = None
    """Level 3 archive, e.g. s3://unidata-nexrad-level3 (default: the Level 2 archive)."""
    endpoint: str | None = None
    """S3 endpoint of the archive (unset for AWS)."""
    anonymous: bool = False
    """Unsigned requests, for the public buckets."""


class CatalogSettings(_Part):
    """Where the published DuckDB snapshot lives (the Parquet partitions live in the store)."""

    dir: Path | None = None
    """Folder holding catalog.duckdb (default: HOME/catalog)."""


class FeedSettings(_Part):
    """The live SuperDARN feed."""

    spool_dir: Path | None = None
    """Folder of the listener's durable spool (default: HOME/spool)."""
    endpoints: CommaList = Field(default_factory=list)
    """ZeroMQ PUB endpoints the listener subscribes to (tcp://HOST:PORT, comma-separated)."""
    live_batch_interval: float = Field(0.1, gt=0, le=10)
    """Seconds between two reads of the spool by the API's live stream (records are batched that long)."""
    live_queue_batches: int = Field(100, ge=1, le=100_000)
    """Batches a live-stream client may have waiting before it is told it missed some (bounded memory)."""
    live_queue_records: int = Field(20_000, ge=1, le=10_000_000)
    """Records (in those batches) a live-stream client may have waiting before it is told it missed some."""
    live_max_batch_records: int = Field(5000, ge=1, le=1_000_000)
    """Records per live-stream batch at most."""
    retention_hours: float = Field(48.0, gt=0)
    """Spool segments older than this, landed in live_echoes and published, are removed (hourly schedule)."""
    runs_in_process: bool = True
    """live_echoes_feed_sensor's runs execute in the run's own process when the executor is multiprocess (one process start less per run)."""
    publish_in_runs: bool = True
    """live_echoes_feed_sensor's runs also publish the catalog snapshot (catalog_snapshot in the same run) instead of waiting for catalog_automation_sensor."""
    queue_next_run: bool = True
    """While a live_echoes run of an hour is executing, live_echoes_feed_sensor queues the hour's next run behind it (at most one waits), so it starts when the queue frees it instead of a sensor tick later."""

    _split = field_validator("endpoints", mode="before")(_split)


class RenderSettings(_Part):
    """The sweep renderer."""

    cache_dir: str | None = None
    """Polar-lookup cache folder (default ~/.cache/radar-assets/lookups; 'off' disables it)."""

    size: int = Field(2048, ge=64, le=8192)
    """Pixels on the long side of each sweep PNG/COG when a run does not configure rendered_sweeps (sensors, automation)."""
    cache_max_bytes: int = Field(2 * 1024**3, ge=0)
    """Size bound of the lookup cache; least-recently-used lookups are evicted beyond it (0: no bound)."""
    weights_cache_max_bytes: int = Field(1024**3, ge=0)
    """Size bound of the zonal coverage-weights cache (zonal-weights beside the lookup cache); LRU (0: no bound)."""

    def lookup_cache(self) -> Path | None:
        """The cache folder, or None when disabled."""
        if self.cache_dir is None:
            return Path.home() / ".cache" / "radar-assets" / "lookups"
        if self.cache_dir.strip().lower() in ("", "0", "off", "none"):
            return None
        return Path(self.cache_dir).expanduser()


class ApiSettings(_Part):
    """HTTP policies of the read-only catalog API."""

    snapshot_check_interval: float = Field(1.0, ge=0, le=60)
    """Seconds between stats of the snapshot path."""
    pool_size: int = Field(16, ge=1, le=256)
    """Idle DuckDB cursors kept per snapshot."""
    worker_threads: int = Field(8, ge=1, le=256)
    """Threads running (sync) endpoints; further requests wait on the event loop."""
    duckdb_threads: int = Field(1, ge=1, le=64)
    """DuckDB threads per query."""
    cache_max_age: int = Field(60, ge=0)
    """max-age of list and metadata responses (seconds)."""
    file_max_age: int = Field(31_536_000, ge=0)
    """max-age of sweep files (immutable)."""
    tile_max_age: int = Field(86_400, ge=0)
    """max-age of map tiles (seconds)."""
    tile_cache_bytes: int = Field(256 * 1024 * 1024, ge=0)
    """Memory for COG bytes read from the store."""
    events_poll_interval: float = Field(1.0, gt=0, le=60)
    """Seconds between snapshot checks of /events."""
    events_keepalive: float = Field(15.0, gt=0, le=300)
    """Seconds between SSE keep-alive comments."""
    timeseries_cache_bytes: int = Field(256 * 1024 * 1024, ge=0)
    """Memory for series of GET /timeseries decoded from the current snapshot (LRU; 0 disables)."""
    extract_max_cells: int = Field(2_000_000, ge=1)
    """Grid cells a POST /timeseries/extract geometry may span (413 beyond)."""
    extract_max_sweeps: int = Field(500, ge=1)
    """Scans one POST /timeseries/extract may summarise (422 beyond)."""
    extract_max_vertices: int = Field(100_000, ge=1)
    """Vertices of a POST /timeseries/extract geometry (413 beyond)."""
    extract_max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    """Request body size of POST /timeseries/extract (413 beyond)."""
    extract_max_concurrent: int = Field(2, ge=1, le=64)
    """Extractions computed at once; more get 503 with Retry-After."""
    title: str = "radar-assets catalog API"
    """Title of the OpenAPI document."""


class ExecutionSettings(_Part):
    """How a run's steps execute: Dagster's own executors (radar_assets.defs.executors)."""

    executor: Literal["in_process", "multiprocess", "celery", "k8s"] = "multiprocess"
    """Executor of every job: in_process, multiprocess (Dagster's default), celery (dagster-celery workers) or k8s (a Kubernetes Job per step)."""
    broker_url: SecretStr | None = None
    """Celery broker, e.g. pyamqp://guest:guest@rabbitmq:5672// or redis://redis:6379/0 (default: AMQP on localhost)."""
    backend: str = "rpc://"
    """Celery result backend (rpc:// with RabbitMQ; redis://HOST:6379/1 with Redis)."""


class AutomationSettings(_Part):
    """Sensors and schedules that need a source or a decision to run (README: Automation defaults)."""

    source_sensor: bool = False
    """Start raw_scans_source_sensor running: list new archive keys every minute (off: the source may be a public bucket)."""
    daily_schedule: bool = False
    """Start raw_scans_daily running: re-ingest yesterday's site-days at 00:15 UTC for late files."""
    retention: bool = False
    """Start the retention schedule running (deletes expired rendered sweeps and package versions)."""
    backfill_loop_seconds: int = Field(5, ge=1, le=30)
    """Seconds between the backfill daemon's looks for new backfills under `radar-assets daemon` (Dagster's own is a fixed 30)."""


class RetentionSettings(_Part):
    """How long published files are kept (radar_assets.lib.retention); catalog rows stay, marked expired."""

    sweeps_days: int | None = Field(None, ge=1)
    """Days rendered sweep files (PNG, bounds, COG) are kept after their volume time (unset: forever)."""
    packages_days: int | None = Field(None, ge=1)
    """Days a clipped-package version is kept after its day (unset: forever)."""
    cron: str = "30 3 * * *"
    """Cron (UTC) of the retention schedule."""
    compaction_cron: str = "0 4 * * *"
    """Cron (UTC) of the nightly catalog compaction (full snapshot rebuild)."""


class PartitionsSettings(_Part):
    """The first day and hour of the partition grid (radar_assets.defs.partitions); sites and boundaries are dynamic.

    Every day multiplies the partitions by the number of sites, and Dagster's UI slows with the partition count
    (docs/partitions.md), so the grid starts where the deployment's data does. Changing it on an existing
    deployment only hides or reveals partitions; materialisations stay in the instance under the same keys.
    """

    first_day: str = DEFAULT_FIRST_DAY
    """First day (YYYY-MM-DD, UTC) of the site x day and boundary x day grids; earlier days cannot be materialised (default: the demo's first day)."""
    first_hour: str | None = None
    """First hour (YYYY-MM-DD-HH:00, UTC) of the hourly live_echoes grid (default: midnight of the first day)."""

    @field_validator("first_day")
    @classmethod
    def _day(cls, value: str) -> str:
        if not value.strip():  # set but empty (compose passes every variable): the default
            return DEFAULT_FIRST_DAY
        try:
            day = datetime.strptime(value.strip(), "%Y-%m-%d").date()
        except ValueError:
            raise ValueError(f"{value!r} is not a day YYYY-MM-DD (e.g. 2024-05-01)") from None
        if day > datetime.now(UTC).date():
            raise ValueError(f"{value!r} is after today (UTC): the grid would have no day")
        return day.isoformat()

    @field_validator("first_hour")
    @classmethod
    def _hour(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            hour = datetime.strptime(value.strip(), "%Y-%m-%d-%H:%M").replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(f"{value!r} is not an hour YYYY-MM-DD-HH:00 (e.g. 2024-05-01-00:00)") from None
        if hour.minute:
            raise ValueError(f"{value!r} is not on the hour (minutes must be 00)")
        if hour > datetime.now(UTC):
            raise ValueError(f"{value!r} is after the current hour (UTC): the grid would have no hour")
        return hour.strftime("%Y-%m-%d-%H:%M")

    @model_validator(mode="after")
    def _hour_default(self) -> PartitionsSettings:
        self.first_hour = self.first_hour or f"{self.first_day}-00:00"
        return self


#: Settings production must set, as (environment variable, how to read it from a Settings).
PRODUCTION_REQUIRED = (
    ("RADAR_ASSETS_STORE_URL", lambda s: s.store.url),
    ("RADAR_ASSETS_SOURCE_URL", lambda s: s.source.url),
    ("RADAR_ASSETS_CATALOG_DIR", lambda s: s.catalog.dir),
)


class Settings(_Described, BaseSettings):
    """Every setting, read from ``RADAR_ASSETS_*`` variables when constructed (or given as arguments)."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
        validate_default=True,
    )

    env: Literal["local", "production"] = "local"
    """local (embedded default) or production (requires the store, source and catalog locations)."""
    home: Path = Path(".radar-assets")
    """Root of the embedded default's state: store, source, catalog, spool, Dagster instance."""
    dagster_home: Path | None = Field(None, validation_alias=AliasChoices("DAGSTER_HOME", "dagster_home"))
    """Dagster instance folder, Dagster's own DAGSTER_HOME (default: HOME/dagster)."""
    sites: CommaList = Field(default_factory=list)
    """Sites added to the site dimension by sites_from_config_sensor (comma-separated, e.g. KLOT,KTLX)."""
    cors_origins: CommaList = Field(default_factory=list)
    """Origins allowed to call the API from a browser (comma-separated; empty: CORS off)."""
    aws_access_key_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AWS_ACCESS_KEY_ID", "aws_access_key_id")
    )
    """S3 access key of the store and archive (standard AWS variable; passed to Dagster as dg.EnvVar)."""
    aws_secret_access_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key")
    )
    """S3 secret key (standard AWS variable; passed to Dagster as dg.EnvVar)."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    source: SourceSettings = Field(default_factory=SourceSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    feed: FeedSettings = Field(default_factory=FeedSettings)
    render: RenderSettings = Field(default_factory=RenderSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    automation: AutomationSettings = Field(default_factory=AutomationSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    partitions: PartitionsSettings = Field(default_factory=PartitionsSettings)

    _split = field_validator("sites", "cors_origins", mode="before")(_split)

    @model_validator(mode="after")
    def _production_and_defaults(self) -> Settings:
        if self.env == "production":
            missing = [name for name, get in PRODUCTION_REQUIRED if get(self) in (None, "")]
            if missing:
                raise ValueError(
                    "RADAR_ASSETS_ENV=production needs " + ", ".join(missing) + " (see docs/operations.md)"
                )
        home = self.home.resolve()
        self.home = home
        self.store.url = self.store.url or str(home / "store")
        self.source.url = self.source.url or str(home / "source")
        self.catalog.dir = (self.catalog.dir or home / "catalog").resolve()
        self.feed.spool_dir = (self.feed.spool_dir or home / "spool").resolve()
        self.dagster_home = (self.dagster_home or home / "dagster").resolve()
        return self

    # -- derived locations ------------------------------------------------------------------------
    @property
    def snapshot_path(self) -> Path:
        """The published catalog snapshot the API and ``catalog sql`` read."""
        return self.catalog.dir / SNAPSHOT_NAME

    @classmethod
    def for_home(cls, home: str | Path, **overrides: Any) -> Settings:
        """The embedded layout under ``home`` (what tests and the demo use), ignoring the environment's
        locations but keeping its other settings."""
        return cls(home=Path(home), **overrides)

    @staticmethod
    def from_environment(name: str) -> bool:
        """Whether the variable is set, so a Dagster resource can take it as ``dg.EnvVar(name)``."""
        return name in os.environ

    def process_environment(self) -> dict[str, str]:
        """Variables that reproduce these settings in a child process (the demo's webserver, daemon, API)."""
        env = {
            f"{PREFIX}ENV": self.env,
            f"{PREFIX}HOME": str(self.home),
            "DAGSTER_HOME": str(self.dagster_home),
            f"{PREFIX}STORE_URL": str(self.store.url),
            f"{PREFIX}SOURCE_URL": str(self.source.url),
            f"{PREFIX}CATALOG_DIR": str(self.catalog.dir),
            f"{PREFIX}FEED_SPOOL_DIR": str(self.feed.spool_dir),
        }
        optional = {
            "STORE_ENDPOINT": self.store.endpoint,
            "SOURCE_LEVEL3_URL": self.source.level3_url,
            "SOURCE_ENDPOINT": self.source.endpoint,
            "RENDER_CACHE_DIR": self.render.cache_dir,
            "RENDER_SIZE": self.render.size,
            "RENDER_CACHE_MAX_BYTES": self.render.cache_max_bytes,
        }
        env.update({f"{PREFIX}{k}": str(v) for k, v in optional.items() if v is not None})
        for part in ("automation", "retention", "partitions"):
            for name, value in getattr(self, part).model_dump(mode="json").items():
                if value is not None:
                    env[f"{PREFIX}{part.upper()}_{name.upper()}"] = str(value)
        if self.source.anonymous:
            env[f"{PREFIX}SOURCE_ANONYMOUS"] = "1"
        if self.sites:
            env[f"{PREFIX}SITES"] = ",".join(self.sites)
        if self.cors_origins:
            env[f"{PREFIX}CORS_ORIGINS"] = ",".join(self.cors_origins)
        return env


def secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def open_store(settings: Settings):
    """The platform store these settings name: the one way Dagster, the API and the CLI open it."""
    from radar_assets.lib.store import store_from_url

    return store_from_url(
        settings.store.url,
        endpoint_url=settings.store.endpoint,
        region=settings.store.region,
        anonymous=settings.store.anonymous,
        access_key_id=secret(settings.aws_access_key_id),
        secret_access_key=secret(settings.aws_secret_access_key),
    )


def open_source(settings: Settings, level: int = 2):
    """The Level 2 (or Level 3) source archive these settings name."""
    from radar_assets.lib.store import store_from_url

    url = settings.source.url if level == 2 else (settings.source.level3_url or settings.source.url)
    return store_from_url(
        url,
        endpoint_url=settings.source.endpoint,
        anonymous=settings.source.anonymous,
        access_key_id=secret(settings.aws_access_key_id),
        secret_access_key=secret(settings.aws_secret_access_key),
    )


def open_catalog(settings: Settings):
    """The catalog (Parquet partitions in the store, snapshot in ``catalog.dir``)."""
    from radar_assets.lib.catalog import Catalog

    return Catalog(open_store(settings), settings.catalog.dir)


# -- documentation ---------------------------------------------------------------------------------
def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str]]:
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(_rows(annotation, f"{prefix}{name.upper()}_"))
            continue
        alias = field.validation_alias
        var = alias.choices[0] if isinstance(alias, AliasChoices) else f"{prefix}{name.upper()}"
        default = field.get_default(call_default_factory=True)
        shown = "" if default in (None, [], "") else str(default)
        rows.append((var, shown, (field.description or "").strip()))
    return rows


def environment_variables() -> list[tuple[str, str, str]]:
    """(variable, default, description) of every setting, in declaration order."""
    return _rows(Settings, PREFIX)


def variables_markdown() -> str:
    """The README's table of variables (a test keeps the README equal to it)."""
    lines = ["| variable | default | what it sets |", "|---|---|---|"]
    for var, default, doc in environment_variables():
        lines.append(f"| `{var}` | {f'`{default}`' if default else ''} | {doc} |")
    return "\n".join(lines)


class SettingsError(ValueError):
    """The environment (or the arguments) do not make valid settings; the message names each variable."""


def load_settings(**overrides: Any) -> Settings:
    """``Settings(**overrides)`` with a message naming the variables instead of pydantic's dump of the input
    (which could echo a secret)."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = "_".join(str(p).upper() for p in err.get("loc", ()))
            msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            problems.append(f"{PREFIX}{loc}: {msg}" if loc else msg)
        raise SettingsError("; ".join(problems)) from None


def export_environment(settings: Settings) -> None:
    """Put ``settings`` into this process's environment, for children that rebuild them (uvicorn workers)."""
    os.environ.update(settings.process_environment())
    for name, value in settings.api.model_dump(mode="json").items():
        os.environ[f"{PREFIX}API_{name.upper()}"] = str(value)


def quiet_third_party() -> None:
    """Py-ART prints a citation banner on import; it would interleave with CLI output and logs."""
    os.environ.setdefault("PYART_QUIET", "1")
