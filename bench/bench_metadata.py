"""Benchmark: the SQL metadata store's per-call cost against the bare driver (the limit).

Usage: ``.venv/bin/python bench/bench_metadata.py [--ops 2000] [--postgres URL]``

Each write is one transaction, as a stage worker issues them. The limit is the bare driver
(``sqlite3`` with the same pragmas; ``psycopg`` in autocommit) inserting the same execution
row, one commit each. PostgreSQL runs when reachable (default: the test server), in a
scratch schema dropped afterwards. Results are written to bench/results/metadata.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.core.ids import new_id
from gristmill.stores.metadata import Run, StageExecution
from gristmill.testing.metadata_contract import PAYLOAD, make_batch

RESULTS = Path(__file__).parent / "results" / "metadata.md"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
INSERT = (
    "INSERT INTO bare (execution_id, stage, idempotency_key, status, started_at, outputs)"
    " VALUES ({p}, {p}, {p}, {p}, {p}, {p})"
)
CREATE = (
    "CREATE TABLE bare (execution_id TEXT PRIMARY KEY, stage TEXT, idempotency_key TEXT,"
    " status TEXT, started_at {time}, outputs {json})"
)


def per_second(ops: int, call: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for index in range(ops):
        call(index)
    return ops / (time.perf_counter() - start)


def execution(index: int) -> StageExecution:
    now = datetime.now(UTC)
    return StageExecution(
        new_id(), "preparation", f"key-{index}", "succeeded", now, outputs=[PAYLOAD]
    )


def bare_row(index: int) -> tuple[str, ...]:
    now = datetime.now(UTC).isoformat()
    return (new_id(), "preparation", f"key-{index}", "succeeded", now, json.dumps([PAYLOAD]))


def bare_sqlite(path: Path, ops: int) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode = WAL", "synchronous = NORMAL"):
        connection.execute(f"PRAGMA {pragma}")
    connection.execute(CREATE.format(time="TEXT", json="TEXT"))
    sql = INSERT.format(p="?")
    rate = per_second(ops, lambda i: connection.execute(sql, bare_row(i)))
    connection.close()
    return rate


def bare_postgres(url: str, schema: str, ops: int) -> float:
    import psycopg
    from psycopg import sql

    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        connection.execute(CREATE.format(time="TIMESTAMPTZ", json="JSONB"))
        insert = INSERT.format(p="%s")
        return per_second(ops, lambda i: connection.execute(insert, bare_row(i)))


def measure(store: SqlMetadataStore, ops: int) -> dict[str, float]:
    executions = [execution(i) for i in range(ops)]
    now = datetime.now(UTC)
    return {
        "record_execution (insert)": per_second(
            ops, lambda i: store.executions.record_execution(executions[i])
        ),
        "find_execution": per_second(
            ops, lambda i: store.executions.find_execution("preparation", f"key-{i}")
        ),
        "start_run": per_second(
            ops, lambda i: store.runs.start_run(Run(new_id(), "p", "running", now, summary=PAYLOAD))
        ),
        "list_runs (50)": per_second(ops // 10, lambda _: store.runs.list_runs(limit=50)),
        "add_batch (new)": per_second(ops, lambda i: store.batches.add_batch(make_batch(f"b{i}"))),
        "add_batch (known content)": per_second(
            ops, lambda i: store.batches.add_batch(make_batch(f"x{i}", content_digest="sha256:b0"))
        ),
    }


def run_backend(
    name: str, url: str, schema: str | None, bare: Callable[[], float], ops: int
) -> str:
    limit = bare()
    with SqlMetadataStore(url, schema=schema) as store:
        rates = measure(store, ops)
    ratio = rates["record_execution (insert)"] / limit
    rows = [f"| bare driver insert + commit (the limit) | {limit:,.0f} |"]
    rows += [f"| `{call}` | {rate:,.0f} |" for call, rate in rates.items()]
    return "\n".join(
        [
            f"## {name}",
            "",
            "| call | per second |",
            "|---|---:|",
            *rows,
            "",
            f"`record_execution` / bare insert: **{ratio:.2f}**",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument(
        "--postgres", default=os.environ.get("GRISTMILL_TEST_POSTGRES_URL", DEFAULT_PG)
    )
    args = parser.parse_args()
    sections = []
    with tempfile.TemporaryDirectory(prefix="gm-bench-") as scratch:
        folder = Path(scratch)
        sections.append(
            run_backend(
                "SQLite (WAL, synchronous=NORMAL)",
                f"sqlite:///{folder / 'meta.db'}",
                None,
                lambda: bare_sqlite(folder / "bare.db", args.ops),
                args.ops,
            )
        )
    schema = f"gmbench_{new_id().lower()}"
    engine = sa.create_engine(args.postgres)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError:
        sections.append(f"PostgreSQL not reachable at {args.postgres}; skipped.\n")
    else:
        try:
            sections.append(
                run_backend(
                    "PostgreSQL (local server)",
                    args.postgres,
                    schema,
                    lambda: bare_postgres(args.postgres, schema, args.ops),
                    args.ops,
                )
            )
        finally:
            with engine.begin() as connection:
                connection.execute(sa.schema.DropSchema(schema, cascade=True, if_exists=True))
    engine.dispose()
    cpu = platform.processor() or platform.machine()
    header = [
        "# Metadata store benchmark",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}",
        f"- python {platform.python_version()}, SQLAlchemy {sa.__version__}, "
        f"SQLite {sqlite3.sqlite_version}; {args.ops:,} calls each, one thread, one "
        "transaction per call",
        "",
        "The gap to the bare driver is SQLAlchemy's per-call engine work (pool checkout,",
        "`BEGIN IMMEDIATE` on SQLite, result handling, JSON and UTC datetime processing);",
        "write statements are built once and reused. Even on SQLite it is thousands of calls a",
        "second, far above what stages need (a few calls per event).",
        "",
    ]
    text = "\n".join(header) + "\n" + "\n".join(sections)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
