"""The spec an event follows: its run's (by digest), the worker's, or its source's."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.config.spec import load_spec, parse_spec, spec_digest
from gristmill.core.events import FEATURES_GENERATED, RAW_INGESTED, Event
from gristmill.errors import ConfigError
from gristmill.runtime.run_records import start_run
from gristmill.stages.specs import run_spec_resolver
from gristmill.stores.metadata import Run
from gristmill.stores.specs import stored_spec


def spec(name: str, *sources: str) -> dict[str, object]:
    return {
        "name": name,
        "sources": {s: {"format": "csv", "path": f"/data/{s}.csv"} for s in sources},
    }


def raw(source: str, correlation_id: str | None = None) -> Event:
    extra = {"correlation_id": correlation_id} if correlation_id else {}
    return Event(type=RAW_INGESTED, key=source, payload={"source": source}, **extra)


def test_an_event_of_a_run_follows_the_spec_the_run_recorded(
    metadata: SqlMetadataStore, tmp_path: Path
) -> None:
    (tmp_path / "pipeline.yaml").write_text(
        "name: mine\nsources:\n  a: {format: csv, path: a.csv}\n"
    )
    (tmp_path / "mine_steps_for_resolver.py").write_text("VALUE = 42\n")
    mine = load_spec(tmp_path / "pipeline.yaml")
    sys.path.remove(str(tmp_path.resolve()))  # as in a worker started elsewhere
    run = start_run(metadata, mine, folder=tmp_path)
    assert run.spec_digest == spec_digest(mine) and "spec" not in run.summary
    other = parse_spec(spec("other", "a"))
    found = run_spec_resolver(metadata, other)(raw("a", run.run_id))
    assert found == mine
    # the spec's folder travelled with it: modules beside it are importable again
    assert str(tmp_path.resolve()) in sys.path
    sys.path.remove(str(tmp_path.resolve()))


def test_a_run_recorded_before_specs_were_stored_still_resolves(
    metadata: SqlMetadataStore,
) -> None:
    old = parse_spec(spec("old", "a"))
    body = old.model_dump(mode="json", by_alias=True)
    metadata.runs.start_run(
        Run("r-old", "old", "running", datetime.now(UTC), spec_digest="x", summary={"spec": body})
    )
    assert run_spec_resolver(metadata, None)(raw("a", "r-old")) == old


def test_outside_a_run_the_workers_spec_else_the_one_naming_the_source(
    metadata: SqlMetadataStore,
) -> None:
    stream = parse_spec(spec("stream", "clicks"))
    metadata.specs.add_spec(stored_spec(stream))
    assert run_spec_resolver(metadata, None)(raw("clicks")) == stream
    fallback = parse_spec(spec("fallback", "x"))
    assert run_spec_resolver(metadata, fallback)(raw("clicks")) == fallback


def test_no_spec_or_several_pipelines_fail_naming_the_event_and_the_fix(
    metadata: SqlMetadataStore,
) -> None:
    resolve = run_spec_resolver(metadata, None)
    orphan = raw("clicks")
    with pytest.raises(ConfigError, match=rf"raw.ingested event {orphan.id} belongs to no") as e:
        resolve(orphan)
    assert "no spec in the metadata store names source 'clicks'" in str(e.value)
    assert "--spec FILE" in str(e.value)
    metadata.specs.add_spec(stored_spec(parse_spec(spec("one", "clicks"))))
    metadata.specs.add_spec(stored_spec(parse_spec(spec("two", "clicks", "other"))))
    with pytest.raises(
        ConfigError, match=r"specs of 2 pipelines name source 'clicks' \(one, two\)"
    ):
        resolve(orphan)
    no_source = Event(type=FEATURES_GENERATED, key="fs", payload={"name": "fs"})
    with pytest.raises(ConfigError, match="cannot tell which pipeline spec applies"):
        resolve(no_source)


def test_a_run_whose_spec_is_not_stored_fails_naming_it(metadata: SqlMetadataStore) -> None:
    metadata.runs.start_run(
        Run("r-1", "gone", "running", datetime.now(UTC), spec_digest="sha256:9")
    )
    with pytest.raises(ConfigError, match=r"run r-1 follows spec sha256:9, which the metadata"):
        run_spec_resolver(metadata, None)(raw("a", "r-1"))
