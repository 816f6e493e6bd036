"""The `score:` section of the pipeline spec: batch scoring without a person, and when."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gristmill.config.schedules import Timing, cron_text, every_text


class ScoreSpec(BaseModel):
    """Batch scoring without a person: which model scores which input, and when.

    ``on: new_batch`` scores every new raw batch of ``source`` (or every new feature set
    ``feature_set``) with ``model`` as it arrives; ``on: schedule`` scores the newest one at
    each tick of ``every`` or ``cron`` (UTC) with the version ``model`` names at that tick,
    unless a scheduled job scored that input with that version already; ``manual`` only
    records the intent (``gristmill score`` and ``POST /v1/jobs`` still work).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    model: str | None = Field(
        None,
        description="NAME, NAME@ALIAS or NAME/VERSION (default: deploy.model, else `name`).",
    )
    source: str | None = Field(None, description="Score each new raw batch of this source.")
    feature_set: str | None = Field(None, description="Score each new feature set of this name.")
    on: Literal["new_batch", "schedule", "manual"] = "new_batch"
    every: str | None = Field(
        None, description="With on: schedule: tick every duration (30s, 15m, 1h, 1d), UTC."
    )
    cron: str | None = Field(
        None, description="With on: schedule: tick at a cron expression ('0 2 * * *', UTC)."
    )

    @model_validator(mode="before")
    @classmethod
    def _on_read_as_true(cls, data: Any) -> Any:
        # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean true: `on: schedule`
        # arrives as {True: "schedule"}. Take it for the key it was written as.
        if isinstance(data, dict) and True in data and "on" not in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data

    @field_validator("every", mode="before")
    @classmethod
    def _every(cls, value: Any) -> str | None:
        return None if value is None else every_text(value)

    @field_validator("cron", mode="before")
    @classmethod
    def _cron(cls, value: Any) -> str | None:
        return None if value is None else cron_text(value)

    @model_validator(mode="after")
    def _one_input(self) -> ScoreSpec:
        if (self.source is None) == (self.feature_set is None):
            raise ValueError("name exactly one input: source: NAME or feature_set: NAME")
        return self

    @model_validator(mode="after")
    def _timing_with_schedule(self) -> ScoreSpec:
        given = [name for name in ("every", "cron") if getattr(self, name) is not None]
        if self.on == "schedule" and len(given) != 1:
            raise ValueError(
                "on: schedule needs one of every: DURATION (e.g. 1h) or cron: EXPRESSION "
                f"(e.g. '0 2 * * *'); {'both are given' if given else 'neither is given'}"
            )
        if self.on != "schedule" and given:
            raise ValueError(
                f"{given[0]} applies only with on: schedule (on is {self.on}); add "
                f"on: schedule, or remove {given[0]}"
            )
        return self

    def timing(self) -> Timing | None:
        """When it ticks under ``on: schedule``; ``None`` otherwise."""
        if self.on != "schedule":
            return None
        return Timing(every=self.every, cron=self.cron)
