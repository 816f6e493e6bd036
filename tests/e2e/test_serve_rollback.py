"""Automatic rollback as a user meets it: two real ``gristmill serve`` processes sharing one
metadata store (SQLite) and one bus, under a sustained load, with a latency budget no version
can keep (``serve.latency_budget_ms = 0.001``). Version 2 is made the primary with a rollback
rule through one server's admin API: every request it gets is overtaken by its fallback
(version 1) and counted as a miss on both servers; both judge, one rolls it back — one policy
revision, one audit entry — both switch (the other through ``model.rolled_back``: polling is
off), and no request fails.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gristmill.runtime.wiring import open_stores
from gristmill.testing.cli import cli_stdout as gm
from gristmill.training.rollback import ROLLBACK_JUDGE

from .test_serve import trained  # noqa: F401  (the module's fixture)
from .test_serve_canary import _applied, _fleet, _settings, _wait

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def budget_folder(trained: tuple[Path, dict[str, str]]) -> Path:  # noqa: F811
    """The trained folder with birds/2 registered beside birds/1, birds/1 deployed, stats
    recorded every 0.2 s, a budget no version keeps, and polling off."""
    folder, candidates = trained
    gm("promote", candidates["forest"], "--model", "birds", "--alias", "challenger", cwd=folder)
    # a stored policy from the start: the servers then switch routes, which is atomic (a
    # server that knows no policy yet answers with @champion alone, and the first policy
    # moves @champion before that server has applied it)
    gm("deploy", "birds", "1", cwd=folder)
    (folder / "gristmill.toml").write_text(
        "[serve]\npoll_seconds = 600\nstats_flush_seconds = 0.2\nlatency_budget_ms = 0.001\n"
    )
    return folder


def _judged(folder: Path) -> list[dict[str, Any]]:
    """The policy changes the rollback judge stored for birds, newest first."""
    with open_stores(_settings(folder)) as stores:
        entries = stores.metadata.audit.list_entries(subject="model:birds", limit=1000)
    return [
        e.details for e in entries if e.actor == ROLLBACK_JUDGE and e.action == "model.policy_set"
    ]


def test_two_servers_roll_back_a_primary_that_misses_its_budget_once(budget_folder: Path) -> None:
    folder = budget_folder
    before = len(_judged(folder))
    with _fleet(folder) as fleet:
        _wait("answers", lambda: all(len(load.free) > 10 for _, load in fleet))
        answer = httpx.put(
            f"{fleet[0][0].url}/admin/policies/birds",
            json={
                "primary": 2,
                "fallback": [1],
                "rollback": {"max_miss_rate": 0.5, "min_requests": 60},
                "reason": "try the forest",
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        put_at = time.monotonic()
        started = answer.json()
        for server, _ in fleet:
            _wait(
                "the rollback",
                lambda s=server: _applied(
                    s, lambda p: p["primary"] == 1 and p["changed_by"] == ROLLBACK_JUDGE
                ),
            )
        for _, load in fleet:
            start = len(load.free)
            _wait("answers after", lambda load=load, start=start: len(load.free) - start > 20)
        table = gm("deployments", "birds", cwd=folder)
    assert all(not load.failures for _, load in fleet), [load.failures[:3] for _, load in fleet]
    twos = [round(t - put_at, 3) for _, load in fleet for t, v in load.free if v == 2]
    assert twos == [], twos  # 2 never kept the budget
    judged = _judged(folder)
    assert len(judged) == before + 1, judged[: len(judged) - before]
    assert judged[0]["revision"] == started["revision"] + 1
    assert judged[0]["before"]["primary"] == 2 and judged[0]["policy"]["primary"] == 1
    assert "miss rate 100% > 50% over" in judged[0]["reason"]
    assert "rollback rule miss rate > 50%" in " ".join(table.split())
