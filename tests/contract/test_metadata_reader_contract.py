"""The metadata reader contract on the SQLite reader (and on the store reading itself), plus
the reader's own promises: it refuses what it cannot read as it is, and the wiring then
reads through the store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.backends.sql.migrations import upgrade_to_head
from gristmill.backends.sqlite.metadata_reader import SqliteMetadataReader, sqlite_path
from gristmill.config.settings import load_settings
from gristmill.errors import BackendError
from gristmill.runtime.wiring import open_metadata_reader
from gristmill.testing.metadata_reader_contract import MetadataReaderContract, WriterAndReader
from gristmill.testing.metadata_records import make_run


class TestSqliteMetadataReader(MetadataReaderContract):
    __test__ = True

    @pytest.fixture
    def writer_and_reader(self, tmp_path: Path) -> WriterAndReader:
        path = tmp_path / "meta.db"
        return SqlMetadataStore(f"sqlite:///{path}"), lambda: SqliteMetadataReader(path)


class TestSqliteStoreReadingItself(MetadataReaderContract):
    __test__ = True

    @pytest.fixture
    def writer_and_reader(self, tmp_path: Path) -> WriterAndReader:
        url = f"sqlite:///{tmp_path / 'meta.db'}"
        return SqlMetadataStore(url), lambda: SqlMetadataStore(url)


def _store_at(path: Path, revision: str = "head") -> None:
    database = SqlDatabase(f"sqlite:///{path}")
    database.open()
    try:
        with database.write() as connection:
            upgrade_to_head(connection, None, revision=revision)
    finally:
        database.close()


def test_a_missing_file_is_refused_and_not_created(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="no metadata store at"):
        SqliteMetadataReader(tmp_path / "meta.db").open()
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    path.write_text("not a database")
    with pytest.raises(BackendError, match=r"not a database|meta"):
        SqliteMetadataReader(path).open()


def test_tables_at_an_older_revision_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    _store_at(path, revision="0001")
    with pytest.raises(BackendError, match="newest revision"):
        SqliteMetadataReader(path).open()


def test_the_reader_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    with SqlMetadataStore(f"sqlite:///{path}") as store:
        store.runs.start_run(make_run("run-1"))
    with SqliteMetadataReader(path) as reader:
        assert [r.run_id for r in reader.runs.list_runs()] == ["run-1"]
        connection = reader._tables.connection
        assert connection is not None
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            connection.execute("DELETE FROM runs")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///relative/meta.db", Path("relative/meta.db")),
        ("sqlite:////abs/meta.db", Path("/abs/meta.db")),
        ("sqlite+pysqlite:////abs/meta.db", Path("/abs/meta.db")),
        ("sqlite:////abs/meta.db?timeout=5", None),
        ("sqlite:////abs/m%20eta.db", None),
        ("sqlite://", None),
        ("postgresql+psycopg://u@h/db", None),
    ],
)
def test_sqlite_path_reads_plain_file_urls_only(url: str, path: Path | None) -> None:
    assert sqlite_path(url) == path


def test_the_wiring_reads_a_current_sqlite_store_without_the_store(tmp_path: Path) -> None:
    settings = load_settings(None, {"home": tmp_path})
    _store_at(tmp_path / "metadata.db")
    with open_metadata_reader(settings) as reader:
        assert isinstance(reader, SqliteMetadataReader)
        assert reader.runs.list_runs() == []


@pytest.mark.parametrize("revision", [None, "0001"])
def test_the_wiring_reads_through_the_store_what_the_reader_cannot(
    tmp_path: Path, revision: str | None
) -> None:
    settings = load_settings(None, {"home": tmp_path / "home"})
    if revision is not None:
        (tmp_path / "home").mkdir()
        _store_at(tmp_path / "home" / "metadata.db", revision)
    with open_metadata_reader(settings) as reader:
        assert isinstance(reader, SqlMetadataStore)  # which made or migrated the tables
        assert reader.runs.list_runs() == []
    with open_metadata_reader(settings) as reader:
        assert isinstance(reader, SqliteMetadataReader)
