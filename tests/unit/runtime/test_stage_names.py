"""The names and event types the CLI and run views know without importing the stages
agree with the stages themselves."""

from __future__ import annotations

from gristmill.runtime.run_views import RUN_CONSUMES
from gristmill.runtime.stage_names import ALL_STAGES, STAGE_NAMES
from gristmill.runtime.stages import RUN_STAGES


def test_a_runs_work_goes_through_what_its_stages_consume() -> None:
    assert frozenset(stage.consumes for stage in RUN_STAGES) == RUN_CONSUMES


def test_worker_all_runs_every_stage_the_score_triggers_included() -> None:
    assert set(ALL_STAGES) == set(STAGE_NAMES)
