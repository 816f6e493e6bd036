"""Queued work carries its spec: workers started without ``--spec`` act on it, or fail loudly.

Everything runs as a user runs it: ``gristmill ingest … --queue``, ``gristmill worker --all``
and ``gristmill send`` / ``dead-letters`` as separate processes sharing a bus and a
metadata store (SQLite files, or Redis + PostgreSQL). The project's folder (the spec and
the custom split beside it) is not the worker's working directory, so the worker can only
know the spec, and import the module next to it, through the metadata store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sklearn.datasets import load_breast_cancer

from gristmill.config.settings import Settings, load_settings
from gristmill.core.events import RAW_INGESTED, Event
from gristmill.runtime.wiring import build_bus, build_metadata, open_services
from gristmill.stores.metadata import MetadataStore
from gristmill.testing.cli import found, running_worker
from gristmill.testing.cli import run_cli as gm

T = TypeVar("T")

SPEC = """\
name: queued
sources:
  cancer: {format: csv, path: data/cancer.csv}
features:
  cancer_v1:
    from: [cancer]
    label: target
split: {strategy: custom, custom: "queued_splits:every_fourth"}
train:
  retries: 0
  candidates:
    - {name: tree, algorithm: decision_tree, params: {max_depth: 3}}
evaluate: {metric: roc_auc}
"""
SPLITS = (
    "import numpy as np\n"
    "def every_fourth(table):\n"
    "    return np.where(np.arange(table.num_rows) % 4 == 0, 'test', 'train')\n"
)


def project(where: Path, settings: str) -> tuple[Path, Path]:
    """A project folder (spec, data, custom split) and another folder workers run in, both
    with the same settings file; (project, elsewhere)."""
    folder, elsewhere = where / "project", where / "elsewhere"
    (folder / "data").mkdir(parents=True)
    elsewhere.mkdir()
    frame = load_breast_cancer(as_frame=True).frame.head(240)
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.to_csv(folder / "data" / "cancer.csv", index=False)
    (folder / "pipeline.yaml").write_text(SPEC)
    (folder / "queued_splits.py").write_text(SPLITS)
    for place in (folder, elsewhere):
        (place / "gristmill.toml").write_text(settings)
    return folder, elsewhere


def embedded(where: Path) -> str:
    home = where / "home"
    return f'home = "{home}"\n[executor]\nbackend = "inline"\n'


def settings_of(cwd: Path) -> Settings:
    return load_settings(cwd / "gristmill.toml")


def eventually(look: Callable[[MetadataStore], T | None], cwd: Path, timeout: float = 120) -> T:
    """Poll the metadata store until ``look`` finds something; fail after ``timeout`` s."""
    store = build_metadata(settings_of(cwd))
    store.open()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = look(store)
            if seen is not None:
                return seen
            time.sleep(0.5)
    finally:
        store.close()
    raise AssertionError(f"nothing found within {timeout}s")


def deployed(run_id: str) -> Callable[[MetadataStore], list[Any] | None]:
    """The executions of run ``run_id`` once its evaluation and the deployment stage after it
    are terminal (else None)."""

    def look(store: MetadataStore) -> list[Any] | None:
        executions = store.executions.list_executions(run_id)
        done = [e for e in executions if e.stage == "deployment" and e.status != "running"]
        failed = [e for e in executions if e.status == "failed"]
        return executions if done or failed else None

    return look


def queue_and_follow(folder: Path, elsewhere: Path, times: int = 1) -> list[str]:
    """Queue the source ``times`` times to workers started without a spec; each run must go
    through every stage. The leaderboard report id of each run."""
    boards = []
    with running_worker(elsewhere, "--all"):
        for _ in range(times):
            queued = gm("ingest", "cancer", "--spec", "pipeline.yaml", "--queue", cwd=folder)
            assert queued.returncode == 0, queued.stderr
            run_id = found(r"run (\w+) \(spec", queued.stdout)
            executions = eventually(deployed(run_id), elsewhere)
            by_stage = {e.stage: e for e in executions}
            assert {s: e.status for s, e in by_stage.items()} == {
                "ingestion": "succeeded",
                "preparation": "succeeded",
                "training": "succeeded",
                "evaluation": "succeeded",
                "deployment": "succeeded",  # no deploy: section, so it deploys nothing
            }, [(e.stage, e.status, e.error) for e in executions]
            boards.append(by_stage["evaluation"].outputs[0]["payload"]["report"])
    (trained,) = by_stage["training"].outputs
    split = eventually(lambda s: s.splits.find_split(trained["payload"]["split_id"]), elsewhere)
    assert split.strategy == "custom" and split.sizes == {"train": 180, "test": 60}
    return boards


def test_queued_ingest_is_carried_through_by_workers_without_a_spec(tmp_path: Path) -> None:
    folder, elsewhere = project(tmp_path, embedded(tmp_path))
    first, again = queue_and_follow(folder, elsewhere, times=2)
    assert again == first  # an unchanged source queued again finds the same leaderboard


@pytest.mark.parametrize("bus", ["redis", "nats"])
def test_queued_ingest_on_a_broker_and_postgres_with_workers_without_a_spec(
    bus: str, tmp_path: Path, postgres_url: str, namespace: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{bus}_url")
    services = (
        f'[bus]\nbackend = "{bus}"\nurl = "{url}"\nnamespace = "{namespace}"\n'
        f'[metadata]\nbackend = "postgres"\nurl = "{postgres_url}"\ndb_schema = "{namespace}"\n'
    )
    folder, elsewhere = project(tmp_path, embedded(tmp_path) + services)
    try:
        queue_and_follow(folder, elsewhere)
    finally:
        asyncio.run(purge_bus(elsewhere))  # the broker is shared: leave no stream behind
        engine = sa.create_engine(postgres_url)
        with engine.begin() as connection:
            connection.execute(sa.schema.DropSchema(namespace, cascade=True, if_exists=True))
        engine.dispose()


async def purge_bus(cwd: Path) -> None:
    bus = build_bus(settings_of(cwd))
    await bus.open()
    try:
        await bus.purge()  # type: ignore[attr-defined]
    finally:
        await bus.close()


def publish(cwd: Path, event: Event) -> None:
    async def go() -> None:
        async with open_services(settings_of(cwd)) as services:
            await services.bus.publish([event])

    asyncio.run(go())


def test_a_worker_that_cannot_tell_the_spec_fails_the_event_loudly(tmp_path: Path) -> None:
    _, elsewhere = project(tmp_path, embedded(tmp_path))
    orphan = Event(type=RAW_INGESTED, key="clicks", payload={"source": "clicks", "batch_id": "b"})
    with running_worker(elsewhere, "--stage", "preparation"):
        publish(elsewhere, orphan)

        def settled(store: MetadataStore) -> Any:
            executions = store.executions.list_executions(orphan.correlation_id)
            return next((e for e in executions if e.status != "running"), None)

        execution = eventually(settled, elsewhere, timeout=60)
    assert execution.status == "failed", execution
    assert execution.error is not None
    assert f"raw.ingested event {orphan.id} belongs to no recorded run" in execution.error
    assert "no spec in the metadata store names source 'clicks'" in execution.error
    assert "--spec FILE" in execution.error
    assert [o["type"] for o in execution.outputs] == ["stage.failed"]


def test_send_to_a_stream_no_spec_names_is_refused(tmp_path: Path) -> None:
    folder, _ = project(tmp_path, embedded(tmp_path))
    (folder / "clicks.jsonl").write_text('{"user": 1}\n')
    refused = gm("send", "clicks", "clicks.jsonl", cwd=folder)
    assert refused.returncode == 2
    assert "no pipeline spec known to the metadata store names a source 'clicks'" in (
        refused.stderr
    )
    wrong = gm("send", "clicks", "clicks.jsonl", "--spec", "pipeline.yaml", cwd=folder)
    assert wrong.returncode == 2 and "has no source named 'clicks'" in wrong.stderr

    (folder / "stream.yaml").write_text(
        "name: clicks\nsources:\n  clicks: {format: jsonl, path: data/clicks.jsonl, stream: true}\n"
    )
    sent = gm("send", "clicks", "clicks.jsonl", "--spec", "stream.yaml", cwd=folder)
    assert sent.returncode == 0, sent.stderr
    again = gm("send", "clicks", "clicks.jsonl", cwd=folder)  # the spec is known now
    assert again.returncode == 0 and "published 1 record(s)" in again.stdout


def test_dead_letters_are_listed_shown_and_replayed(tmp_path: Path) -> None:
    folder, _ = project(tmp_path, embedded(tmp_path) + "[bus]\nmax_attempts = 1\n")
    original = Event(type=RAW_INGESTED, key="cancer", payload={"source": "cancer"})

    async def give_up() -> None:
        async with open_services(settings_of(folder)) as services:
            await services.bus.publish([original])
            (delivery,) = await services.bus.consume("preparation", RAW_INGESTED, "c1", wait=5)
            await services.bus.nack(delivery, error="boom: the disk is full")

    asyncio.run(give_up())
    listed = gm("dead-letters", "ls", cwd=folder, check=True).stdout
    assert "preparation" in listed and "raw.ingested" in listed and "boom" in listed
    letter = found(r"(\w{26})\s", listed)
    shown = gm("dead-letters", "show", letter, cwd=folder, check=True).stdout
    assert "boom: the disk is full" in shown and original.id in shown
    replayed = gm("dead-letters", "replay", letter, cwd=folder, check=True).stdout
    copy_id = found(r"replayed raw.ingested as event (\w+)", replayed)

    async def redelivered() -> Event:
        async with open_services(settings_of(folder)) as services:
            (delivery,) = await services.bus.consume("preparation", RAW_INGESTED, "c1", wait=5)
            await services.bus.ack(delivery)
            assert delivery.attempt == 1
            return delivery.event

    copy = asyncio.run(redelivered())
    assert (copy.id, copy.causation_id, copy.correlation_id) == (
        copy_id,
        original.id,
        original.correlation_id,
    )
    assert copy.payload == original.payload
    twice = gm("dead-letters", "replay", letter, cwd=folder)
    assert twice.returncode == 2 and "replayed already" in twice.stderr
    assert copy_id in gm("dead-letters", "ls", cwd=folder, check=True).stdout
    missing = gm("dead-letters", "show", "nope", cwd=folder)
    assert missing.returncode == 1 and "no dead letter with id 'nope'" in missing.stderr
