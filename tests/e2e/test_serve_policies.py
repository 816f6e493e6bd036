"""Traffic policies as a user changes them: a real ``gristmill serve`` process under a
sustained load from several client threads while ``gristmill deploy --canary`` starts a
canary, ``gristmill deploy`` promotes it and ``gristmill rollback`` takes it back.

Zero requests fail; over 2,000 answers during the canary the share of each version is
within 3 points of the policy; a key (``x-gristmill-key``) always reaches the same version.
Each stage is waited for through ``GET /admin/policies/birds`` (the stored revision and the
one the process applies), not by sleeping.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from gristmill.testing.cli import cli_stdout as gm
from gristmill.testing.serving import running_server

from .test_serve import ROW, trained  # noqa: F401  (the module's fixture)

pytestmark = pytest.mark.slow
SHARE = 0.2
ANSWERS = 2_000
TOLERANCE = 0.03
KEYS = [f"customer-{i}" for i in range(40)]


class _Load:
    """Client threads sending without pause: random requests (no key) and keyed ones."""

    def __init__(self, url: str, threads: int = 3) -> None:
        self.url = url
        self.free: list[tuple[float, int]] = []
        self.keyed: list[tuple[float, str, int]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(i,)) for i in range(threads)]

    def __enter__(self) -> _Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _send(self, index: int) -> None:
        count = 0
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                count += 1
                key = KEYS[count % len(KEYS)] if index == 0 else None
                headers = {"x-gristmill-key": key} if key else {}
                try:
                    answer = client.post(
                        "/v1/models/birds/predict", json={"rows": [ROW]}, headers=headers
                    )
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if answer.status_code != 200:
                    self.failures.append(answer.text)
                    continue
                version = answer.json()["version"]
                if key is None:
                    self.free.append((time.monotonic(), version))
                else:
                    self.keyed.append((time.monotonic(), key, version))


def _applied(url: str, after: int, within: float = 20.0) -> tuple[float, int]:
    """Wait until the server applies a revision of birds' policy newer than ``after`` (as
    stored in the registry); the time it did, and that revision."""
    deadline = time.monotonic() + within
    with httpx.Client(base_url=url) as client:
        while time.monotonic() < deadline:
            shown = client.get("/admin/policies/birds")
            if shown.status_code == 200:
                body = shown.json()
                if body["revision"] > after and body["applied"] == body["revision"]:
                    return time.monotonic(), body["revision"]
            time.sleep(0.05)
    raise AssertionError(f"no revision after {after} was applied within {within}s: {shown.text}")


def _wait_for(predicate: Any, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_canary_started_promoted_and_rolled_back_under_load(
    trained: tuple[Path, dict[str, str]],  # noqa: F811
) -> None:
    folder, candidates = trained
    # version 2 registered beside the champion (version 1), not promoted
    gm("promote", candidates["forest"], "--model", "birds", "--alias", "challenger", cwd=folder)
    with running_server(folder, "--model", "birds") as server, _Load(server.url) as load:
        _wait_for(lambda: len(load.free) > 20)

        gm("deploy", "birds", "2", "--canary", str(SHARE), "--reason", uuid.uuid4().hex, cwd=folder)
        since, revision = _applied(server.url, 0)
        start = len(load.free)
        _wait_for(lambda: len(load.free) - start >= ANSWERS + 10, within=120)
        during = [v for t, v in load.free[start:] if t > since][:ANSWERS]
        assert len(during) == ANSWERS
        share = during.count(2) / ANSWERS
        assert abs(share - SHARE) <= TOLERANCE, share
        by_key: dict[str, set[int]] = {}
        for t, key, version in load.keyed:
            if t > since:
                by_key.setdefault(key, set()).add(version)
        assert len(by_key) == len(KEYS)
        assert all(len(v) == 1 for v in by_key.values()), by_key
        assert {v for versions in by_key.values() for v in versions} == {1, 2}

        gm("deploy", "birds", "2", "--reason", "promote", cwd=folder)
        since, revision = _applied(server.url, revision)
        start = len(load.free)
        _wait_for(lambda: len(load.free) - start >= 200)
        assert {v for t, v in load.free[start:] if t > since + 0.05} == {2}

        gm("rollback", "birds", "--reason", "back", cwd=folder)
        since, revision = _applied(server.url, revision)
        start = len(load.free)
        _wait_for(lambda: len(load.free) - start >= 200)
        assert {v for t, v in load.free[start:] if t > since + 0.05} == {1}
    assert not load.failures, load.failures[:3]
