"""The stages this build of gristmill runs, constructed from opened services."""

from __future__ import annotations

from gristmill.runtime.wiring import Services
from gristmill.stages.base import Stage
from gristmill.stages.ingestion import IngestionStage

STAGE_NAMES = ("ingestion",)


def build_stages(services: Services, names: tuple[str, ...] = STAGE_NAMES) -> list[Stage]:
    """The named stages, wired to ``services``; unknown names raise ``ConfigError``."""
    from gristmill.errors import ConfigError

    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown:
        raise ConfigError(
            f"no stage named {unknown[0]!r}; stages built so far: {', '.join(STAGE_NAMES)}"
        )
    factories = {"ingestion": lambda: IngestionStage(services.raw, services.metadata)}
    return [factories[name]() for name in names]
