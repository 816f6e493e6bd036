"""The metadata store contract on SQLite and PostgreSQL, plus the SQL adapter's own promises."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from gristmill.backends.sql.audit import SqlAuditLog
from gristmill.backends.sql.batches import SqlBatchCatalog
from gristmill.backends.sql.candidates import SqlCandidateStore
from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.feature_sets import SqlFeatureSetCatalog
from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.backends.sql.migrations import VERSION_TABLE, at_head, head_revision, upgrade_to_head
from gristmill.backends.sql.migrations.runner import SCRIPT_LOCATION
from gristmill.backends.sql.registry import SqlModelRegistry
from gristmill.backends.sql.reports import SqlReportStore
from gristmill.backends.sql.runs import SqlRunStore
from gristmill.backends.sql.splits import SqlSplitStore
from gristmill.backends.sql.tables import (
    metadata,
    serving_stats,
    stage_executions,
    traffic_policies,
)
from gristmill.core.urls import mask_url
from gristmill.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    MissingExtraError,
    UnknownBackendError,
)
from gristmill.testing.metadata_contract import MetadataStoreContract
from gristmill.testing.metadata_records import (
    at,
    make_batch,
    make_candidate,
    make_entry,
    make_execution,
    make_feature_set,
    make_report,
    make_run,
    make_split,
)

LEASE_COLUMNS = ("lease_expires_at", "holder")  # added by v0005
OUTBOX_COLUMNS = ("published_at",)  # added by v0007


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/nested/folder/meta.db"


@pytest.fixture
def pg_schema(postgres_url: str, namespace: str) -> Iterator[str]:
    yield namespace
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.schema.DropSchema(namespace, cascade=True, if_exists=True))
    finally:
        engine.dispose()


class TestSqliteMetadataStore(MetadataStoreContract):
    __test__ = True

    @pytest.fixture
    def store_factory(self, sqlite_url: str) -> Callable[[], SqlMetadataStore]:
        return lambda: SqlMetadataStore(sqlite_url)


@pytest.mark.postgres
class TestPostgresMetadataStore(MetadataStoreContract):
    __test__ = True

    @pytest.fixture
    def store_factory(self, postgres_url: str, pg_schema: str) -> Callable[[], SqlMetadataStore]:
        return lambda: SqlMetadataStore(postgres_url, schema=pg_schema)


# -- the SQL adapter beyond the port -------------------------------------------------------


def _schema_drift(store: SqlMetadataStore, url: str, schema: str | None) -> list[object]:
    """What differs between the migrated database and ``tables.metadata`` (nothing, we hope)."""
    target = sa.MetaData()
    for table in metadata.tables.values():
        if schema is None:
            table.to_metadata(target)
        else:
            table.to_metadata(target, schema=schema)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_schemas": schema is not None,
                    "include_name": lambda name, kind, _parent: kind != "schema" or name == schema,
                    "include_object": lambda _obj, name, kind, _reflected, _other: (
                        kind != "table" or name != VERSION_TABLE
                    ),
                },
            )
            return list(compare_metadata(context, target))
    finally:
        engine.dispose()


def test_sqlite_migrations_build_the_tables_the_adapter_queries(sqlite_url: str) -> None:
    with SqlMetadataStore(sqlite_url) as store:
        assert _schema_drift(store, sqlite_url, None) == []


@pytest.mark.postgres
def test_postgres_migrations_build_the_tables_the_adapter_queries(
    postgres_url: str, pg_schema: str
) -> None:
    with SqlMetadataStore(postgres_url, schema=pg_schema) as store:
        assert _schema_drift(store, postgres_url, pg_schema) == []


@pytest.mark.postgres
def test_postgres_schema_holds_every_table(postgres_url: str, pg_schema: str) -> None:
    with SqlMetadataStore(postgres_url, schema=pg_schema):
        engine = sa.create_engine(postgres_url)
        try:
            names = set(sa.inspect(engine).get_table_names(schema=pg_schema))
        finally:
            engine.dispose()
    assert names == {*metadata.tables, VERSION_TABLE}


def _version(url: str, schema: str | None) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            version = sa.table(VERSION_TABLE, sa.column("version_num"), schema=schema)
            return str(connection.execute(sa.select(version.c.version_num)).scalar_one())
    finally:
        engine.dispose()


HEAD = "0016"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def test_the_head_read_from_the_scripts_is_alembics() -> None:
    """An open at head skips Alembic (``at_head``): the head it knows must be Alembic's."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    assert [head_revision()] == ScriptDirectory.from_config(config).get_heads() == [HEAD]


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_a_database_at_head_is_at_head(backend: str, request: pytest.FixtureRequest) -> None:
    url, schema = _database_at(request, backend, "0008", lambda _db: None)
    database = SqlDatabase(url, schema=schema)
    database.open()
    try:
        with database.read() as connection:
            assert not at_head(connection, schema)
        with SqlMetadataStore(url, schema=schema):  # opening migrates it
            pass
        with database.read() as connection:
            assert at_head(connection, schema)
    finally:
        database.close()


def _database_at(
    request: pytest.FixtureRequest, backend: str, revision: str, fill: Callable[[SqlDatabase], None]
) -> tuple[str, str | None]:
    """A database of ``backend`` migrated to ``revision`` only, filled by ``fill``."""
    if backend == "sqlite":
        url, schema = request.getfixturevalue("sqlite_url"), None
    else:
        url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("pg_schema")
    old = SqlDatabase(url, schema=schema)
    old.open()
    try:
        with old.write() as connection:
            upgrade_to_head(connection, schema, revision=revision)
        fill(old)
    finally:
        old.close()
    assert _version(url, schema) == revision
    return url, schema


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_v0001_database_migrates_to_head_keeping_its_rows(
    backend: str, request: pytest.FixtureRequest
) -> None:
    def fill(old: SqlDatabase) -> None:
        SqlRunStore(old).start_run(make_run("run-1"))
        SqlBatchCatalog(old).add_batch(make_batch("b-1"))
        SqlAuditLog(old).append(make_entry("e-1"))

    url, schema = _database_at(request, backend, "0001", fill)
    with SqlMetadataStore(url, schema=schema) as store:
        assert _version(url, schema) == HEAD
        assert store.runs.get_run("run-1") == make_run("run-1")
        assert store.batches.get_batch("b-1") == make_batch("b-1")
        assert store.audit.list_entries() == [make_entry("e-1")]
        store.reports.add_report(make_report("r-1", subject="b-1"))
        assert store.reports.list_reports(subject="b-1") == [make_report("r-1", subject="b-1")]
        assert store.feature_sets.add_feature_set(make_feature_set("fs-1")) == make_feature_set(
            "fs-1"
        )
        assert _schema_drift(store, url, schema) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_v0002_database_migrates_to_head_keeping_its_rows(
    backend: str, request: pytest.FixtureRequest
) -> None:
    def fill(old: SqlDatabase) -> None:
        SqlRunStore(old).start_run(make_run("run-1"))
        SqlReportStore(old).add_report(make_report("r-1"))
        SqlFeatureSetCatalog(old).add_feature_set(make_feature_set("fs-1"))

    url, schema = _database_at(request, backend, "0002", fill)
    with SqlMetadataStore(url, schema=schema) as store:
        assert _version(url, schema) == HEAD
        assert store.runs.get_run("run-1") == make_run("run-1")
        assert store.reports.get_report("r-1") == make_report("r-1")
        assert store.feature_sets.get_feature_set("fs-1") == make_feature_set("fs-1")
        assert store.splits.add_split(make_split("sp-1")) == make_split("sp-1")
        store.candidates.save_candidate(make_candidate("c-1", split_id="sp-1"))
        assert store.candidates.list_candidates(feature_set_id="fs-1") == [
            make_candidate("c-1", split_id="sp-1")
        ]
        assert _schema_drift(store, url, schema) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_v0003_database_migrates_to_head_keeping_its_rows(
    backend: str, request: pytest.FixtureRequest
) -> None:
    def fill(old: SqlDatabase) -> None:
        SqlSplitStore(old).add_split(make_split("sp-1"))
        SqlCandidateStore(old).save_candidate(make_candidate("c-1"))

    url, schema = _database_at(request, backend, "0003", fill)
    with SqlMetadataStore(url, schema=schema) as store:
        assert _version(url, schema) == HEAD
        assert store.splits.get_split("sp-1") == make_split("sp-1")
        candidate = store.candidates.get_candidate("c-1")
        assert candidate == make_candidate("c-1")
        version = store.registry.register_version("churn", candidate)
        assert store.registry.set_alias("churn", "champion", version.version) is None
        assert store.registry.find_alias("churn", "champion") == version
        assert _schema_drift(store, url, schema) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_v0004_database_migrates_to_head_its_running_executions_unleased(
    backend: str, request: pytest.FixtureRequest
) -> None:
    left_running = make_execution("ex-1", input_event_id="ev-1")

    def fill(old: SqlDatabase) -> None:
        values = {
            k: v
            for k, v in asdict(left_running).items()
            if k not in (*LEASE_COLUMNS, *OUTBOX_COLUMNS)
        }
        with old.write() as connection:
            connection.execute(sa.insert(stage_executions), values)

    url, schema = _database_at(request, backend, "0004", fill)
    with SqlMetadataStore(url, schema=schema) as store:
        assert _version(url, schema) == HEAD
        assert store.executions.list_executions("run-1") == [left_running]
        assert store.executions.list_stale_executions(at(1)) == [left_running]
        assert _schema_drift(store, url, schema) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_v0006_database_migrates_to_head_its_ended_executions_published(
    backend: str, request: pytest.FixtureRequest
) -> None:
    # Executions that ended before the outbox are not relayed again (their events were
    # published, or are long gone); one still running is published once it ends.
    out = [{"id": "ev-2", "type": "model.trained"}]
    ended = make_execution("ex-1", status="succeeded", finished_at=at(5), outputs=out)
    running = make_execution("ex-2", 6, idempotency_key="key-2")

    def fill(old: SqlDatabase) -> None:
        with old.write() as connection:
            for execution in (ended, running):
                values = asdict(execution)
                del values["published_at"]
                connection.execute(sa.insert(stage_executions), values)

    url, schema = _database_at(request, backend, "0006", fill)
    with SqlMetadataStore(url, schema=schema) as store:
        assert _version(url, schema) == HEAD
        assert store.executions.list_executions("run-1") == [
            replace(ended, published_at=at(5)),
            running,
        ]
        assert store.executions.list_unpublished("preparation", at(100)) == []
        assert _schema_drift(store, url, schema) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_v0009_database_migrates_to_head_its_canaries_started_when_last_changed(
    backend: str, request: pytest.FixtureRequest
) -> None:
    # A canary set before 0010 has no start recorded: it started, as far as anyone knows,
    # when its policy last changed. It has no promotion rule (a person promotes it).
    def fill(old: SqlDatabase) -> None:
        registry = SqlModelRegistry(old)
        for i in (1, 2):
            registry.register_version("churn", make_candidate(f"c-{i}"))
            registry.register_version("fraud", make_candidate(f"f-{i}"))
        with old.write() as connection:
            for model, canary in (("churn", 2), ("fraud", None)):
                connection.execute(
                    sa.insert(traffic_policies),
                    {
                        "model": model,
                        "primary": 1,
                        "canary": canary,
                        "canary_share": 0.1 if canary else 0.0,
                        "shadow": [],
                        "fallback": [],
                        "revision": 1,
                        "changed_at": at(30),
                        "changed_by": "ann",
                        "reason": "",
                    },
                )

    url, schema = _database_at(request, backend, "0009", fill)
    with SqlMetadataStore(url, schema=schema) as store:
        assert _version(url, schema) == HEAD
        churn = store.registry.get_policy("churn")
        assert churn is not None
        assert (churn.canary, churn.canary_since, churn.changed_at) == (2, at(30), at(30))
        assert churn.canary_revision == 1
        assert not churn.judged
        fraud = store.registry.get_policy("fraud")
        assert fraud is not None and fraud.canary_since is None and fraud.canary_revision is None
        assert store.serving_stats.stats("churn", 2, since=at(0)).requests == 0
        assert _schema_drift(store, url, schema) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_v0012_database_migrates_to_head_without_misses_or_rollback_rules(
    backend: str, request: pytest.FixtureRequest
) -> None:
    # Figures recorded before 0016 counted no latency budget miss; policies had no rule.
    def fill(old: SqlDatabase) -> None:
        SqlModelRegistry(old).register_version("churn", make_candidate("c-1"))
        with old.write() as connection:
            connection.execute(
                sa.insert(traffic_policies),
                {
                    "model": "churn",
                    "primary": 1,
                    "canary_share": 0.0,
                    "shadow": [],
                    "fallback": [],
                    "revision": 1,
                    "changed_at": at(30),
                    "changed_by": "ann",
                    "reason": "",
                },
            )
            values = {
                "model": "churn",
                "version": 1,
                "window_start": at(0).replace(second=0, microsecond=0),
                "replica": "a",
                "revision": 1,
                "requests": 10,
                "errors": 1,
                "client_errors": 0,
                "fallbacks": 0,
                "cache_hits": 0,
                "rows": 10,
                "latency_sum": 0.01,
                "latency_buckets": [10] + [0] * 12,
                "updated_at": at(0),
            }
            connection.execute(sa.insert(serving_stats), values)

    url, schema = _database_at(request, backend, "0012", fill)
    with SqlMetadataStore(url, schema=schema) as store:
        assert _version(url, schema) == HEAD
        policy = store.registry.get_policy("churn")
        assert policy is not None and policy.rollback_rule is None
        stats = store.serving_stats.stats("churn", 1, since=at(0))
        assert (stats.requests, stats.errors, stats.budget_misses) == (10, 1, 0)
        assert _schema_drift(store, url, schema) == []


def test_sqlite_is_shared_safely_by_processes(sqlite_url: str) -> None:
    # Workers are processes: each opens the (fresh) file, migrates, and writes at once.
    start = time.time() + 2
    script = (
        "import sys, time\n"
        "from gristmill.backends.sql.metadata import SqlMetadataStore\n"
        "from gristmill.testing.metadata_records import make_batch, make_run\n"
        "url, start, me = sys.argv[1], float(sys.argv[2]), sys.argv[3]\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "with SqlMetadataStore(url) as store:\n"
        "    for i in range(20):\n"
        "        store.runs.start_run(make_run(f'{me}-{i}', i))\n"
        "    batch = make_batch(me, content_digest='sha256:same')\n"
        "    print(store.batches.add_batch(batch).batch_id)\n"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", script, sqlite_url, str(start), f"w{n}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    outcomes = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0] * 4, [err for _, err in outcomes]
    assert len({out.strip() for out, _ in outcomes}) == 1
    with SqlMetadataStore(sqlite_url) as store:
        assert len(store.runs.list_runs(limit=1000)) == 80
        assert len(store.batches.list_batches()) == 1
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_tables_from_a_newer_gristmill_are_explained(sqlite_url: str) -> None:
    with SqlMetadataStore(sqlite_url):
        pass
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as connection:
        version = sa.table(VERSION_TABLE, sa.column("version_num"))
        connection.execute(sa.update(version).values(version_num="f00d"))
    engine.dispose()
    with pytest.raises(BackendError, match="newer gristmill") as raised:
        SqlMetadataStore(sqlite_url).open()
    assert raised.value.__cause__ is not None


def test_values_the_columns_cannot_hold_are_refused(sqlite_url: str) -> None:
    with SqlMetadataStore(sqlite_url) as store:
        with pytest.raises(ValueError, match="naive datetime"):
            store.runs.start_run(make_run("run-1", started_at=datetime(2024, 1, 1)))
        with pytest.raises(TypeError, match="JSON serializable"):
            store.runs.start_run(make_run("run-1", summary={"model": object()}))
        assert store.runs.find_run("run-1") is None


def test_constructor_does_no_io_and_use_before_open_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/not/yet/meta.db"
    store = SqlMetadataStore(url)
    assert not (tmp_path / "not").exists()
    with pytest.raises(Exception, match=r"not open; call open\(\)"):
        store.batches.get_batch("b-1")


@pytest.mark.parametrize(
    ("url", "error", "match"),
    [
        ("mysql://u:secret@db/x", UnknownBackendError, "known: sqlite"),
        ("sqlite://", ConfigError, "SQLite file"),
        ("not a url", ConfigError, "not a database URL"),
        ("postgresql+psycopg2://u:secret@db/x", MissingExtraError, r"gristmill\[postgres\]"),
    ],
)
def test_bad_urls_are_explained(url: str, error: type[Exception], match: str) -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(error, match=match) as raised:
        SqlMetadataStore(url).open()
    assert "secret" not in str(raised.value)


def test_unreachable_postgres_is_unavailable_with_the_password_masked() -> None:
    pytest.importorskip("psycopg")
    # Port 9 (discard) is closed on test machines: connecting fails at once.
    store = SqlMetadataStore("postgresql://ann:s3cret@127.0.0.1:9/meta")
    with pytest.raises(BackendUnavailableError, match=r"ann:\*\*\*@127\.0\.0\.1:9") as raised:
        store.open()
    assert "s3cret" not in str(raised.value)
    assert raised.value.__cause__ is not None


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://ann:s3cret@db:5432/x", "postgresql+psycopg://ann:***@db:5432/x"),
        ("redis://:p%40ss@cache:6379/0", "redis://:***@cache:6379/0"),
        ("nats://token@nats:4222", "nats://token@nats:4222"),
        ("postgresql://db/x?user=ann&password=s3cret", "postgresql://db/x?user=ann&password=***"),
        ("sqlite:///var/lib/meta.db", "sqlite:///var/lib/meta.db"),
        ("not a url at all", "not a url at all"),
    ],
)
def test_mask_url_hides_passwords(url: str, masked: str) -> None:
    assert mask_url(url) == masked
