"""The stages this build of gristmill runs, as workers wired to opened services."""

from __future__ import annotations

import asyncio
from typing import Protocol

from gristmill.errors import ConfigError
from gristmill.runtime.stream import STREAM_STAGE, StreamIngestionWorker
from gristmill.runtime.wiring import Services
from gristmill.runtime.worker import StageWorker
from gristmill.stages.ingestion import IngestionStage

STAGE_NAMES = ("ingestion", STREAM_STAGE)


class Worker(Protocol):
    """What ``gristmill worker`` runs: a consumer of one event type."""

    consumer: str
    consumes: str
    handled: int

    async def run(
        self, stop: asyncio.Event, *, poll: float = ..., concurrency: int = ...
    ) -> None: ...


def build_workers(services: Services, names: tuple[str, ...] = STAGE_NAMES) -> list[Worker]:
    """Workers for the named stages; an unknown name raises ``ConfigError``."""
    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown:
        raise ConfigError(
            f"no stage named {unknown[0]!r}; stages built so far: {', '.join(STAGE_NAMES)}"
        )
    workers: list[Worker] = []
    for name in names:
        if name == "ingestion":
            stage = IngestionStage(services.raw, services.metadata)
            workers.append(StageWorker(stage, services.bus, services.metadata.executions))
        else:
            workers.append(
                StreamIngestionWorker(
                    services.bus,
                    services.raw,
                    services.metadata,
                    max_seconds=min(2.0, services.bus.ack_wait / 3),
                )
            )
    return workers
