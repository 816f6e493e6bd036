"""``gristmill show RUN``: what the footer says of events recorded but not yet on the bus."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from gristmill.cli.runs import footer
from gristmill.core.events import Event
from gristmill.stores.metadata import StageExecution
from gristmill.stores.run_status import QUEUE_COMMAND


def record_of(execution: StageExecution, pending: list[str]) -> dict[str, Any]:
    return {
        "summary": {"command": QUEUE_COMMAND, "announced": []},
        "executions": [asdict(execution)],
        "pending": pending,
        "status": "queued",
    }


def trained(published: bool) -> tuple[StageExecution, Event]:
    now = datetime.now(UTC)
    out = Event(type="model.trained", payload={"model": "m-1"})
    execution = StageExecution(
        execution_id="exec-1",
        stage="training",
        idempotency_key="k",
        status="succeeded",
        started_at=now,
        finished_at=now,
        outputs=[out.model_dump(mode="json")],
        published_at=now if published else None,
    )
    return execution, out


def test_an_event_recorded_but_not_published_is_said_to_wait_for_the_bus() -> None:
    execution, out = trained(published=False)
    lines = footer(record_of(execution, [out.id]))
    said = "\n".join(lines)
    assert (
        f"model.trained {out.id} was announced by execution exec-1 but not yet published; "
        "a worker will publish it when the bus is back"
    ) in said
    assert "start one" not in said, said


def test_a_published_event_no_stage_took_up_waits_for_a_worker() -> None:
    execution, out = trained(published=True)
    said = "\n".join(footer(record_of(execution, [out.id])))
    assert f"waiting for a worker: model.trained {out.id} (start one" in said
    assert "not yet published" not in said, said
