"""``gristmill serve`` as a user runs it: a real process on a free port, called over HTTP.

A spec trains two candidates (a logistic regression, then a small forest); the first is
promoted as ``birds``. The server answers rows and entities, refuses bad input with a 4xx
that names the field while it goes on serving, and picks up the promotion of the second
candidate while a client sends requests without pause: no request fails, and the answers
switch to version 2 within seconds (the ``model.deployed`` event; polling is the fallback).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gristmill.testing.cli import cli_stdout as gm
from gristmill.testing.registered import LOGREG, birds_spec
from gristmill.testing.registered import penguins as penguin_frame
from gristmill.testing.serving import running_server

pytestmark = pytest.mark.slow

SPEC = birds_spec(
    online=True,
    candidates=[
        LOGREG,
        {"name": "forest", "algorithm": "random_forest", "params": {"n_estimators": 5}},
    ],
)
ROW = {
    "island": "Dream",
    "bill_length_mm": 41.2,
    "bill_depth_mm": 18.1,
    "flipper_length_mm": 190,
    "body_mass_g": 3700,
    "sex": "male",
}
SWITCH_WITHIN = 15.0  # seconds from `gristmill promote` returning to version 2 answering
SLOWEST_DURING_PROMOTION = 1.0
"""Seconds a request may take while a promotion is picked up: the server loads the new
version before it switches to it, so no request waits for a load (one took 3.2 s)."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("serve")
    penguins = penguin_frame()
    penguins.to_csv(folder / "penguins.csv", index=False)
    (folder / "birds.yaml").write_text(SPEC)
    # the poll is slow on purpose: the switch below must come from the bus event
    (folder / "gristmill.toml").write_text("[serve]\npoll_seconds = 600\n")
    summary = gm("run", "birds.yaml", cwd=folder)
    candidates = {}
    for line in summary.splitlines():
        for name in ("logreg", "forest"):
            if f" {name} " in line and "mc_" in line:
                candidates[name] = line[line.index("mc_") :].split()[0]
    assert set(candidates) == {"logreg", "forest"}, summary
    gm("promote", candidates["logreg"], "--model", "birds", cwd=folder)
    return folder, candidates


def _predict(client: httpx.Client, body: Any, ref: str = "birds") -> httpx.Response:
    return client.post(f"/v1/models/{ref}/predict", json=body)


def test_serves_rows_entities_and_refuses_bad_input_without_dying(
    trained: tuple[Path, dict[str, str]],
) -> None:
    folder, _ = trained
    with (
        running_server(folder, "--model", "birds") as server,
        httpx.Client(base_url=server.url) as client,
    ):
        answer = _predict(client, {"rows": [ROW, ROW]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == "birds" and body["version"] == 1
        assert len(body["predictions"]) == 2 and body["request_id"]

        entities = _predict(client, {"entities": ["p0000", "p9999"]}).json()
        assert entities["status"] == ["found", "missing"]
        assert entities["predictions"][1] is None

        no_bill = {k: v for k, v in ROW.items() if k != "bill_length_mm"}
        bad = [
            (_predict(client, {"rows": [no_bill]}), 400, "bill_length_mm"),
            (_predict(client, {"rows": [{**ROW, "body_mass_g": "heavy"}]}), 400, "body_mass_g"),
            (_predict(client, {"rows": [ROW]}, ref="fish"), 404, None),
            (
                client.post(
                    "/v1/models/birds/predict",
                    content=b"{not json",
                    headers={"content-type": "application/json"},
                ),
                400,
                None,
            ),
        ]
        for response, status, field in bad:
            assert response.status_code == status, response.text
            error = response.json()
            assert error["error"] and "Traceback" not in error["error"]
            if field is not None:
                assert error["field"] == field and field in error["error"]
        assert _predict(client, {"rows": [ROW]}).status_code == 200
        assert "gristmill_requests_total{" in client.get("/metrics").text


def test_a_promotion_under_load_fails_no_request_and_switches_version(
    trained: tuple[Path, dict[str, str]],
) -> None:
    folder, candidates = trained
    with running_server(folder, "--model", "birds") as server:
        url = server.url
        seen: list[tuple[float, int]] = []
        took: list[tuple[float, float]] = []  # (sent at, seconds)
        failures: list[str] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=url, timeout=10) as client:
                while not stop.is_set():
                    sent = time.monotonic()
                    try:
                        answer = _predict(client, {"rows": [ROW]})
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                        continue
                    took.append((sent, time.monotonic() - sent))
                    if answer.status_code != 200:
                        failures.append(answer.text)
                    else:
                        seen.append((time.monotonic(), answer.json()["version"]))

        sender = threading.Thread(target=load)
        sender.start()
        try:
            while len(seen) < 20:
                time.sleep(0.05)
            promoting = time.monotonic()
            gm("promote", candidates["forest"], "--model", "birds", cwd=folder)
            promoted = time.monotonic()
            deadline = promoted + SWITCH_WITHIN
            while time.monotonic() < deadline and not (seen and seen[-1][1] == 2):
                time.sleep(0.05)
            time.sleep(0.5)  # and keep sending after the switch
        finally:
            stop.set()
            sender.join(timeout=30)
    assert not failures, failures[:3]
    versions = [v for _, v in seen]
    assert versions[0] == 1 and versions[-1] == 2, versions[-5:]
    switched = next(t for t, v in seen if v == 2)
    assert switched - promoted < SWITCH_WITHIN
    assert versions[versions.index(2) :] == [2] * len(versions[versions.index(2) :])
    slowest = max(seconds for sent, seconds in took if sent >= promoting)
    assert slowest < SLOWEST_DURING_PROMOTION, sorted(s for _, s in took)[-5:]


def _answering_pids(folder: Path) -> set[int]:
    """The pids of the processes whose prediction log holds answers of birds/1 (each
    process writes its own files: ``<time>-<pid>-<n>.parquet``)."""
    written = (folder / ".gristmill" / "predictions" / "birds" / "1").glob("*.parquet")
    return {int(f.name.split("-")[-2]) for f in written}


def test_several_workers_come_up_from_the_console_script_and_each_answers(
    trained: tuple[Path, dict[str, str]],
) -> None:
    """Run as a user runs it (the ``gristmill`` console script, whose module a spawned
    worker imports again): both workers come up and answer, each writes its log."""
    folder, _ = trained
    with running_server(folder, "--workers", "2", script=True, timeout=180) as server:
        workers = server.workers()
        assert len(workers) == 2, workers
        sent = 0
        deadline = time.monotonic() + 60
        # a new connection per request: the kernel hands each to either worker; the log
        # is written every second (serve.log_flush_seconds), so wait for both pids in it
        while not set(workers) <= _answering_pids(folder) and time.monotonic() < deadline:
            answer = httpx.post(
                f"{server.url}/v1/models/birds/versions/1/predict",
                json={"rows": [ROW]},
                headers={"x-request-id": f"w-{sent}"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-request-id"] == f"w-{sent}"
            sent += 1
        assert set(workers) <= _answering_pids(folder), (workers, sent)
        assert server.workers() == workers, "a worker was replaced while serving"
        listed = httpx.get(f"{server.url}/v1/models").json()
        assert listed["models"][0]["version"] == 1
    assert "died" not in server.log.read_text(), server.log.read_text()
    written = list((folder / ".gristmill" / "predictions" / "birds" / "1").glob("*.parquet"))
    import pyarrow.parquet as pq

    ids = {i for f in written for i in pq.read_table(f)["request_id"].to_pylist()}
    assert {f"w-{i}" for i in range(sent)} <= ids


def test_a_killed_worker_is_replaced_and_only_its_requests_fail(
    trained: tuple[Path, dict[str, str]],
) -> None:
    folder, _ = trained
    with running_server(folder, "--workers", "2", "--model", "birds/1") as server:
        workers = server.workers()
        assert len(workers) == 2, workers
        answered: list[float] = []
        failed: list[float] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                while not stop.is_set():
                    sent = time.monotonic()  # a request counts when it was sent
                    try:
                        ok = _predict(client, {"rows": [ROW]}, ref="birds").status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    (answered if ok else failed).append(sent)

        senders = [threading.Thread(target=load) for _ in range(4)]
        for sender in senders:
            sender.start()
        try:
            while len(answered) < 50:
                time.sleep(0.05)
            os.kill(workers[0], signal.SIGKILL)
            killed = time.monotonic()
            deadline = killed + 90  # a spawned worker imports for seconds on a busy machine
            while time.monotonic() < deadline:
                now = server.workers()
                if len(now) == 2 and workers[0] not in now:
                    break
                time.sleep(0.1)
            replaced = time.monotonic()
            after = server.workers()
            assert len(after) == 2, ("the killed worker was not replaced", server.log.read_text())
            while time.monotonic() < replaced + 2:  # load goes on after the replacement
                time.sleep(0.1)
        finally:
            stop.set()
            for sender in senders:
                sender.join(timeout=30)
    # at most the requests the killed process held (one per connection) failed, and none
    # once it was replaced
    assert len(failed) <= len(senders), len(failed)
    assert all(t < replaced for t in failed)
    assert any(t > replaced for t in answered)
    # gristmill's log says so (uvicorn says it at info level, which serve does not show)
    new = next(p for p in after if p != workers[1])
    # (killed between uvicorn's liveness check and its ping, the worker is found by the ping's
    # timeout instead: the log then says that, and the replacement is the same)
    said = re.search(
        rf"server worker {workers[0]} (died \(killed by SIGKILL\)|did not answer its health "
        rf"check within \d+s and was killed \(serve.worker_healthcheck_seconds\)); worker "
        rf"{new} replaces it",
        server.log.read_text(),
    )
    assert said, server.log.read_text()


def test_a_bad_or_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    from gristmill.testing.cli import run_cli

    out_of_range = run_cli("serve", "--port", "99999", cwd=tmp_path, timeout=60)
    assert out_of_range.returncode != 0
    said = (out_of_range.stdout + out_of_range.stderr).strip()
    assert said.count("\n") == 0, said
    assert "--port 99999" in said and "0 to 65535" in said and "ValidationError" not in said

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        busy = run_cli("serve", "--port", str(port), cwd=tmp_path, timeout=60)
    said = (busy.stdout + busy.stderr).strip()
    assert busy.returncode != 0
    assert said == f"error: port {port} is in use on 127.0.0.1; choose another with --port"
    assert "serving on" not in said and "starting on" not in said
