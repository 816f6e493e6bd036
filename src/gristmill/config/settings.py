"""The one typed settings tree: defaults < ``gristmill.toml`` < ``GRISTMILL_…`` env < CLI flags.

Each backend is chosen by a short lowercase name with its URL. Environment variables use
``__`` between levels: ``GRISTMILL_BUS__BACKEND=redis``, ``GRISTMILL_BUS__URL=redis://…``.
Settings are loaded once at the edge (CLI, server) and passed down; nothing reads them
globally.
"""

from __future__ import annotations

import codecs
import os
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from gristmill.config.setting_names import problem_line, unknown_environment, unknown_variable
from gristmill.core.encoding import decode_utf8
from gristmill.errors import ConfigError

BUS_BACKENDS = ("sqlite", "redis", "nats")
METADATA_BACKENDS = ("sqlite", "postgres")
EXECUTOR_BACKENDS = ("inline", "local", "dask")
ONLINE_BACKENDS = ("sqlite", "redis")
DEFAULT_CONFIG_FILE = "gristmill.toml"


def _known(kind: str, value: str, known: tuple[str, ...]) -> str:
    if value not in known:
        raise ValueError(f"no {kind} backend named {value!r}; known: {', '.join(known)}")
    return value


def _one_of(kind: str, known: tuple[str, ...]) -> Callable[[str], str]:
    return lambda value: _known(kind, value, known)


BusBackend = Annotated[str, AfterValidator(_one_of("bus", BUS_BACKENDS))]
MetadataBackend = Annotated[str, AfterValidator(_one_of("metadata", METADATA_BACKENDS))]
ExecutorBackend = Annotated[str, AfterValidator(_one_of("executor", EXECUTOR_BACKENDS))]
OnlineBackend = Annotated[str, AfterValidator(_one_of("online", ONLINE_BACKENDS))]


class BusSettings(BaseModel):
    """The event bus. ``url`` defaults to a SQLite file under ``home``."""

    model_config = ConfigDict(extra="forbid")

    backend: BusBackend = "sqlite"
    url: str | None = None
    namespace: str = Field("gristmill", pattern=r"^[A-Za-z0-9_-]+$")
    max_attempts: int = Field(5, ge=1, description="Deliveries before an event is dead-lettered.")
    ack_wait: float = Field(
        30.0, gt=0, description="Seconds a delivery is leased before redelivery."
    )


class MetadataSettings(BaseModel):
    """The metadata store (runs, lineage, audit, raw batch manifest)."""

    model_config = ConfigDict(extra="forbid")

    backend: MetadataBackend = "sqlite"
    url: str | None = None
    db_schema: str | None = Field(None, description="PostgreSQL schema for all tables.")


class RawSettings(BaseModel):
    """The raw data store: a local path or any fsspec URL (``s3://bucket/raw``)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    max_workers: int | None = Field(None, ge=1, description="Parallel part writers.")


class ExecutorSettings(BaseModel):
    """Where compute runs: ``inline``, ``local`` (process pool) or ``dask``."""

    model_config = ConfigDict(extra="forbid")

    backend: ExecutorBackend = "local"
    address: str | None = Field(None, description="dask scheduler address")
    workers: int | None = Field(None, ge=1)


class StoreSettings(BaseModel):
    """A store kept as files: a local path or any fsspec URL (default: under ``home``)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None


class OnlineSettings(BaseModel):
    """The online feature store: latest vector per entity, for lookups in milliseconds."""

    model_config = ConfigDict(extra="forbid")

    backend: OnlineBackend = "sqlite"
    url: str | None = None
    namespace: str = Field("gristmill", pattern=r"^[A-Za-z0-9_.-]+$")


class StreamSettings(BaseModel):
    """Streaming ingestion: when a micro-batch is cut (whichever bound comes first)."""

    model_config = ConfigDict(extra="forbid")

    max_rows: int = Field(10_000, ge=1, description="Records per micro-batch at most.")
    max_seconds: float = Field(
        2.0, gt=0, description="Seconds the oldest buffered record may wait (< bus.ack_wait)."
    )


class ServeSettings(BaseModel):
    """The prediction server (``gristmill serve``): where it listens, what it preloads, how
    it batches, caches and logs, and its limits (see docs/serving.md)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="Server processes (uvicorn workers).")
    worker_healthcheck_seconds: int = Field(
        60,
        ge=1,
        description="Seconds a worker may take to answer the supervisor's health check "
        "before it is killed and replaced (uvicorn's default, 5, kills workers that start "
        "slowly on a loaded machine).",
    )
    models: list[str] = Field(
        default_factory=list, description="Models loaded at start: NAME, NAME@ALIAS, NAME/N."
    )
    poll_seconds: float = Field(
        5.0, gt=0, description="How often aliases are read again from the registry."
    )
    metrics: bool = Field(
        True,
        description="Count requests for /metrics and the serving figures (false: neither; "
        "the canary judge and automatic rollback then see nothing).",
    )
    stats_flush_seconds: float = Field(
        10.0,
        ge=0,
        description="How often serving stats are recorded in the metadata store, and canaries "
        "with a promotion rule judged (0: neither).",
    )
    stats_keep_days: float = Field(
        30.0,
        ge=0,
        description="Days of serving stats history kept: `gristmill gc` removes older "
        "minutes (0: keep all).",
    )
    max_batch_size: int = Field(
        32, ge=1, description="Concurrent one-row requests scored together (1: no batching)."
    )
    max_batch_wait_ms: float = Field(
        0.0, ge=0, description="Longest a request waits for others to join its batch."
    )
    cache_size: int = Field(0, ge=0, description="One-row answers kept (0: no cache).")
    cache_ttl: float = Field(60.0, gt=0, description="Seconds a cached answer is kept.")
    max_rows: int = Field(10_000, ge=1, description="Rows one request may hold (else 413).")
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Bytes one request body may hold (else 413)."
    )
    log_sample: float = Field(
        1.0, ge=0, le=1, description="Share of answered requests written to the prediction log."
    )
    log_url: str | None = Field(None, description="Folder of the prediction log (JSON Lines).")
    log_flush_seconds: float = Field(1.0, gt=0, description="How often the log is written.")
    log_flush_rows: int = Field(10_000, ge=1, description="Requests that trigger a write.")
    shadow_queue: int = Field(
        1_000, ge=1, description="Shadow scorings waiting at most (more: dropped, counted)."
    )
    shadow_timeout: float = Field(
        10.0, gt=0, description="Seconds a shadow scoring may take before it is given up."
    )
    latency_budget_ms: float | None = Field(
        None,
        ge=0,
        description="Milliseconds a version has to answer before the next of its traffic "
        "policy's chain answers instead (none: wait; a request's x-gristmill-latency-budget-ms "
        "header overrides it).",
    )
    budget_max_abandoned: int = Field(
        8,
        ge=1,
        description="Calls of a version still running after missing their budget; while it "
        "has this many, its requests go straight to the next version.",
    )
    token: str | None = Field(
        None, description="Bearer token: always required by /admin/*, by predictions if asked."
    )
    token_for_predictions: bool = Field(
        False, description="Prediction endpoints require the token too."
    )


class ScoringSettings(BaseModel):
    """Batch scoring (``gristmill score``, the ``scoring`` stage, ``POST /v1/jobs``): where
    the scores go, how rows are cut into partitions, and who runs the server's jobs."""

    model_config = ConfigDict(extra="forbid")

    store_url: str | None = Field(
        None, description="Folder or fsspec URL of the score store (default: under home)."
    )
    partition_rows: int = Field(100_000, ge=1, description="Rows scored per partition.")
    server_runs_jobs: bool = Field(
        False,
        description="The server runs POST /v1/jobs itself (else it asks the scoring workers).",
    )
    webhook_attempts: int = Field(3, ge=1, description="Tries to POST a job's webhook.")


class Settings(BaseSettings):
    """Everything that says *where* gristmill keeps and moves things (not *what* it does)."""

    model_config = SettingsConfigDict(
        env_prefix="GRISTMILL_", env_nested_delimiter="__", extra="forbid"
    )

    home: Path = Field(Path(".gristmill"), description="Folder for the embedded stores.")
    bus: BusSettings = BusSettings()
    metadata: MetadataSettings = MetadataSettings()
    raw: RawSettings = RawSettings()
    executor: ExecutorSettings = ExecutorSettings()
    stream: StreamSettings = StreamSettings()
    features: StoreSettings = StoreSettings()
    artifacts: StoreSettings = StoreSettings()
    online: OnlineSettings = OnlineSettings()
    serve: ServeSettings = ServeSettings()
    scoring: ScoringSettings = ScoringSettings()

    def bus_url(self) -> str:
        if self.bus.url:
            return self.bus.url
        if self.bus.backend == "sqlite":
            return str(self.home / "bus.db")
        return {"redis": "redis://127.0.0.1:6379/0", "nats": "nats://127.0.0.1:4222"}[
            self.bus.backend
        ]

    def metadata_url(self) -> str:
        if self.metadata.url:
            return self.metadata.url
        if self.metadata.backend == "sqlite":
            return f"sqlite:///{self.home / 'metadata.db'}"
        return "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

    def raw_url(self) -> str:
        return self.raw.url or str(self.home / "raw")

    def features_url(self) -> str:
        return self.features.url or str(self.home / "features")

    def artifacts_url(self) -> str:
        return self.artifacts.url or str(self.home / "artifacts")

    def scores_url(self) -> str:
        return self.scoring.store_url or str(self.home / "scores")

    def predictions_url(self) -> str:
        return self.serve.log_url or str(self.home / "predictions")

    def online_url(self) -> str:
        if self.online.url:
            return self.online.url
        if self.online.backend == "sqlite":
            return str(self.home / "online.db")
        return "redis://127.0.0.1:6379/0"


def _settings_class(toml_file: Path | None) -> type[Settings]:
    class FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=toml_file)

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    return FileSettings


def _read_toml_text(path: Path) -> None:
    """``ConfigError`` unless the settings file is UTF-8 text without a byte-order mark
    (what TOML requires), saying which byte is not and where."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {str(path)!r}: {exc.strerror}") from exc
    try:
        decode_utf8(data, str(path))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if data.startswith(codecs.BOM_UTF8):
        raise ConfigError(
            f"{path} starts with a byte-order mark (bytes 0xef 0xbb 0xbf), which TOML does "
            "not allow; save it as UTF-8 without one"
        )


def load_settings(
    config_file: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Load settings: defaults, then the TOML file, then ``GRISTMILL_*`` env, then ``overrides``.

    ``config_file`` defaults to ``./gristmill.toml`` when it exists; a file named explicitly
    must exist. Invalid values, unknown keys and ``GRISTMILL_*`` variables that name no
    setting raise one ``ConfigError`` naming each (and the key a misspelt one meant).
    """
    environ = os.environ
    path = Path(config_file) if config_file else Path(DEFAULT_CONFIG_FILE)
    if config_file and not path.is_file():
        raise ConfigError(f"settings file {str(path)!r} does not exist; pass an existing file")
    toml_file = path if path.is_file() else None
    if toml_file is not None:
        _read_toml_text(toml_file)
    problems = [unknown_variable(Settings, name) for name in unknown_environment(Settings, environ)]
    loaded: Settings | None = None
    try:
        loaded = _settings_class(toml_file)(**(overrides or {}))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{toml_file} is not valid TOML: {exc}") from exc
    except SettingsError as exc:  # a variable's value that does not parse (JSON of a section)
        raise ConfigError(f"invalid settings: {exc}; check the GRISTMILL_* variables") from exc
    except ValidationError as exc:
        problems += [problem_line(Settings, e, environ) for e in exc.errors()]
    if problems or loaded is None:
        where = f" (from {toml_file}, GRISTMILL_* environment or flags)" if toml_file else ""
        raise ConfigError("invalid settings" + where + ":\n" + "\n".join(problems))
    return Settings.model_validate(loaded.model_dump())
