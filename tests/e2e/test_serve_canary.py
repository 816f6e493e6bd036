"""The canary judge as a user meets it: two real ``gristmill serve`` processes sharing one
metadata store (SQLite) and one bus, under a sustained load, and ``gristmill deploy
--canary --promote-after-requests``.

* A canary that answers cleanly is promoted by the servers themselves once the requests it
  answered on *both* servers add up to the rule: both switch (the one that did not judge
  through the ``model.deployed`` event: polling is off), zero requests fail, and the
  promotion is one policy revision and one audit entry although both servers judge.
  Beforehand ``gristmill deployments`` shows the canary's progress against its rule.
* A canary whose artifact was tampered with cannot be loaded: the requests it is picked for
  are answered by the primary (none fails) and counted as its fallbacks, and the servers pull
  it — once.

Each state is waited for through ``GET /admin/policies/birds`` or the CLI, never by sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gristmill.config.settings import Settings, load_settings
from gristmill.runtime.wiring import open_stores
from gristmill.servables import compile_version
from gristmill.servables.storage import recorded
from gristmill.testing.cli import cli_stdout as gm
from gristmill.testing.serving import ServerProcess, running_server
from gristmill.training.canary import JUDGE, CanaryProgress, canary_progress

from .test_serve import trained  # noqa: F401  (the module's fixture)
from .test_serve_policies import _Load

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet_folder(trained: tuple[Path, dict[str, str]]) -> Path:  # noqa: F811
    """The trained folder with birds/2 registered beside birds/1, stats recorded every
    0.2 s, and polling off (a server learns of a change made elsewhere from the bus)."""
    folder, candidates = trained
    gm("promote", candidates["forest"], "--model", "birds", "--alias", "challenger", cwd=folder)
    (folder / "gristmill.toml").write_text(
        "[serve]\npoll_seconds = 600\nstats_flush_seconds = 0.2\n"
    )
    return folder


def _settings(folder: Path) -> Settings:
    return load_settings(folder / "gristmill.toml", overrides={"home": str(folder / ".gristmill")})


def _judged(folder: Path) -> list[dict[str, Any]]:
    """The policy changes the canary judge stored for birds, newest first."""
    with open_stores(_settings(folder)) as stores:
        entries = stores.metadata.audit.list_entries(subject="model:birds", limit=1000)
    return [e.details for e in entries if e.actor == JUDGE and e.action == "model.policy_set"]


@contextmanager
def _fleet(folder: Path, count: int = 2) -> Iterator[list[tuple[ServerProcess, _Load]]]:
    """``count`` servers of ``folder`` (started at once: a start takes long on a shared
    machine), each under its own load of two client threads."""
    managers = [running_server(folder, "--model", "birds") for _ in range(count)]
    with ExitStack() as stack:
        with ThreadPoolExecutor(count) as pool:
            starts = [pool.submit(manager.__enter__) for manager in managers]
        for manager, start in zip(managers, starts, strict=True):
            if start.exception() is None:
                stack.push(manager.__exit__)  # stopped at the end, even if another failed
        servers = [start.result() for start in starts]
        loads = [stack.enter_context(_Load(server.url, threads=2)) for server in servers]
        yield list(zip(servers, loads, strict=True))


def _wait(what: str, check: Callable[[], bool], within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _applied(server: ServerProcess, done: Callable[[dict[str, Any]], bool]) -> bool:
    body = httpx.get(f"{server.url}/admin/policies/birds", timeout=10).json()
    return "revision" in body and done(body) and body["applied"] == body["revision"]


def _progress(folder: Path) -> CanaryProgress | None:
    """birds' canary progress as ``gristmill deployments`` reads it (without starting a
    process per look: the machine is shared)."""
    with open_stores(_settings(folder)) as stores:
        policy = stores.metadata.registry.get_policy("birds")
        return None if policy is None else canary_progress(stores.metadata.serving_stats, policy)


def _on_both(folder: Path) -> bool:
    progress = _progress(folder)
    return progress is not None and progress.stats.replicas == 2


def test_two_servers_promote_a_clean_canary_once(fleet_folder: Path) -> None:
    folder = fleet_folder
    before = len(_judged(folder))
    with _fleet(folder) as fleet:
        _wait("answers", lambda: all(len(load.free) > 10 for _, load in fleet))
        gm(
            "deploy",
            "birds",
            "2",
            "--canary",
            "0.5",
            "--promote-after-requests",
            "1000000",
            cwd=folder,
        )
        _wait("canary answers on both servers", lambda: _on_both(folder))
        progress = _progress(folder)
        assert progress is not None and progress.verdict() == "wait"
        assert progress.stats.errors == progress.stats.fallbacks == 0
        table = gm("deployments", "birds", cwd=folder)
        assert "/1000000 requests, 0 errors" in table and "over 2 servers" in table

        # the same canary with a shorter rule: its count so far stands, and it is promoted
        gm("deploy", "birds", "2", "--canary", "0.5", "--promote-after-requests", "40", cwd=folder)
        for server, _ in fleet:
            _wait("the promotion", lambda s=server: _applied(s, lambda p: p["primary"] == 2))
        since = time.monotonic()
        for _, load in fleet:
            start = len(load.free)
            _wait("answers after", lambda load=load, start=start: len(load.free) - start > 50)
            assert {v for t, v in load.free[start:] if t > since + 0.2} == {2}
    assert all(not load.failures for _, load in fleet), [load.failures[:3] for _, load in fleet]
    judged = _judged(folder)
    assert len(judged) == before + 1, judged[: len(judged) - before]
    assert judged[0]["policy"]["primary"] == 2 and "canary 2 promoted" in judged[0]["reason"]


@contextmanager
def _tampered(folder: Path, version: int) -> Iterator[None]:
    """``birds/version``'s servable fails its digest for the block; restored after."""
    settings = _settings(folder)
    with open_stores(settings) as stores:
        found = stores.metadata.registry.get_version("birds", version)
        digest = recorded(stores, found)
        assert digest is not None
        manifest = Path(settings.artifacts_url()) / "servable" / digest.removeprefix("sha256:")
        original = manifest.read_bytes()
        changed = original.replace(b'"onnx"', b'"native"', 1)
        assert changed != original
        manifest.write_bytes(changed)
    try:
        yield
    finally:
        manifest.write_bytes(original)
        with open_stores(settings) as stores:
            assert compile_version(stores, found).manifest.digest == digest


def test_two_servers_pull_a_canary_that_cannot_answer_once(fleet_folder: Path) -> None:
    folder = fleet_folder
    with _tampered(folder, 2):
        gm("deploy", "birds", "1", cwd=folder)
        before = len(_judged(folder))
        with _fleet(folder) as fleet:
            _wait("answers", lambda: all(len(load.free) > 10 for _, load in fleet))
            # through the admin API: `gristmill deploy` compiles first and would refuse the
            # damaged version; a server's PUT stores the policy as it is and announces it
            answer = httpx.put(
                f"{fleet[0][0].url}/admin/policies/birds",
                json={
                    "primary": 1,
                    "canary": 2,
                    "canary_share": 0.5,
                    "promote_after_requests": 50,
                    "reason": "a canary whose artifact was damaged",
                },
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            for server, _ in fleet:
                _wait(
                    "the canary pulled",
                    lambda s=server: _applied(
                        s, lambda p: p["canary"] is None and p["changed_by"] == JUDGE
                    ),
                )
            for _, load in fleet:
                start = len(load.free)
                _wait("answers after", lambda load=load, start=start: len(load.free) - start > 20)
        assert {v for _, load in fleet for _, v in load.free} == {1}
        assert all(not load.failures for _, load in fleet)
        judged = _judged(folder)
        assert len(judged) == before + 1
        assert judged[0]["before"]["canary"] == 2 and judged[0]["policy"]["canary"] is None
        assert "canary 2 pulled" in judged[0]["reason"] and "fallbacks" in judged[0]["reason"]
