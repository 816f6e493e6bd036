"""Live quality as a user meets it: a real ``gristmill serve`` (its token required for
predictions and feedback), a real ``gristmill worker --stage feedback --stage live-quality``
and a real bus, and actual outcomes sent to ``POST /v1/feedback`` and published on the bus.

Feedback naming unknown request ids, sent twice (a client's retry), labels received three
days after their predictions, and an entity's outcome named by entity key and time: all
counted, and the window's figures equal scikit-learn's on the server's own answers.
Every state is waited for in the metadata store, never by sleeping.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn import metrics as skm

from gristmill.cli.monitor_quality import quality_table, read_quality
from gristmill.config.settings import Settings, load_settings
from gristmill.core.events import FEEDBACK_RECEIVED, Event
from gristmill.runtime.wiring import build_bus, open_stores
from gristmill.stores.feedback import FeedbackCounts, QualityWindow
from gristmill.testing.cli import cli_stdout, running_worker
from gristmill.testing.registered import penguins as penguin_frame
from gristmill.testing.serving import running_server

from .test_serve import trained  # noqa: F401  (the module's fixture)

pytestmark = pytest.mark.slow

TOKEN = "feedback-s3cret"
AUTH = {"authorization": f"Bearer {TOKEN}"}
COLUMNS = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]


@pytest.fixture(scope="module")
def folder(trained: tuple[Path, dict[str, str]]) -> Path:  # noqa: F811
    folder, _ = trained
    (folder / "gristmill.toml").write_text(
        f'[serve]\npoll_seconds = 600\nlog_flush_seconds = 0.2\ntoken = "{TOKEN}"\n'
        "token_for_predictions = true\n"
    )
    return folder


def _settings(folder: Path) -> Settings:
    return load_settings(folder / "gristmill.toml", overrides={"home": str(folder / ".gristmill")})


def _windows(folder: Path) -> list[QualityWindow]:
    with open_stores(_settings(folder)) as stores:
        return stores.metadata.feedback.list_windows("birds")


def _counts(folder: Path, model: str | None = "birds") -> FeedbackCounts:
    with open_stores(_settings(folder)) as stores:
        return stores.metadata.feedback.counts(model)


def _wait(what: str, check: Callable[[], bool], within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _publish_late(folder: Path, outcomes: list[dict[str, Any]]) -> None:
    """Outcomes published on the bus by another system, received three days later."""
    late = Event(
        type=FEEDBACK_RECEIVED,
        key="birds",
        payload={"model": "birds", "outcomes": outcomes},
        occurred_at=datetime.now(UTC) + timedelta(days=3),
    )

    async def publish() -> None:
        bus = build_bus(_settings(folder))
        await bus.open()
        try:
            await bus.publish([late])
        finally:
            await bus.close()

    asyncio.run(publish())


def test_feedback_is_joined_counted_and_measured(folder: Path) -> None:
    rows = penguin_frame().dropna().sample(40, random_state=3)
    records = [{c: row[c] for c in COLUMNS} for _, row in rows.iterrows()]
    truth = rows["species"].tolist()
    with (
        running_server(folder, "--model", "birds") as server,
        running_worker(folder, "--stage", "feedback", "--stage", "live-quality"),
        httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client,
    ):
        answers = []  # (request id, row, prediction, probabilities) of each row sent
        for start in range(0, 40, 5):
            answer = client.post(
                "/v1/models/birds/predict", json={"rows": records[start : start + 5]}
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            for row, (value, proba) in enumerate(
                zip(body["predictions"], body["probabilities"], strict=True)
            ):
                answers.append((body["request_id"], row, value, proba))
        classes = body["classes"]
        entity = client.post("/v1/models/birds/predict", json={"entities": ["p0000"]}).json()
        _wait("41 predictions logged", lambda: sum(w.predictions for w in _windows(folder)) == 41)

        labels = [
            {"request_id": rid, "row": row, "actual": truth[i]}
            for i, (rid, row, _, _) in enumerate(answers[:30])
        ]
        unknown = [{"request_id": f"nobody-{i}", "actual": "Adelie"} for i in range(3)]
        first = client.post("/v1/feedback", json={"model": "birds", "outcomes": labels + unknown})
        assert first.status_code == 202, first.text
        assert first.json()["outcomes"] == 33 and first.json()["feedback_id"]
        retry = client.post("/v1/feedback", json={"model": "birds", "outcomes": labels})
        assert (
            retry.status_code == 202 and retry.json()["feedback_id"] != first.json()["feedback_id"]
        )
        p0000 = penguin_frame().set_index("penguin_id").loc["p0000", "species"]
        by_entity = client.post(
            "/v1/feedback",
            json={"model": "birds", "outcomes": [{"entity": "p0000", "actual": p0000}]},
        )
        assert by_entity.status_code == 202, by_entity.text
        _publish_late(
            folder,
            [
                {"request_id": rid, "row": row, "actual": truth[30 + i]}
                for i, (rid, row, _, _) in enumerate(answers[30:])
            ],
        )
        expected = FeedbackCounts(received=30 + 3 + 30 + 1 + 10, joined=71, waiting=3)
        _wait("the feedback joined", lambda: _counts(folder) == expected)
        _wait("the window measured", lambda: _measured(folder))

        # refused, naming the field, without a token, and past the server's limits
        bad = client.post("/v1/feedback", json={"outcomes": [{"request_id": "x", "actual": None}]})
        assert bad.status_code == 400 and bad.json()["field"] == "outcomes[0].actual"
        assert "outcomes[0].actual" in bad.json()["error"]
        anonymous = httpx.post(f"{server.url}/v1/feedback", json={"outcomes": labels})
        assert anonymous.status_code == 401
        document = client.get("/openapi.json").json()
        assert "FeedbackRequest" in str(document["paths"]["/v1/feedback"]["post"])

    [window] = _windows(folder)
    assert (window.predictions, window.labelled) == (41, 41)
    assert (window.duplicates, window.late, window.unusable) == (30, 10, 0)
    actual = [*truth, p0000]
    predicted = [value for _, _, value, _ in answers] + entity["predictions"]
    proba = np.array([p for *_, p in answers] + entity["probabilities"])
    assert window.classes == classes
    assert window.metrics["accuracy"] == pytest.approx(skm.accuracy_score(actual, predicted))
    assert window.metrics["f1"] == pytest.approx(
        skm.f1_score(actual, predicted, average="macro", labels=classes)
    )
    assert window.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(actual, proba, multi_class="ovr", labels=classes)
    )
    with open_stores(_settings(folder)) as stores:
        quality = read_quality(stores.metadata, "birds")
    assert quality.rows[0].estimated["accuracy"] is not None
    assert "of every model, 3 waiting" in str(quality_table(quality).caption)
    # `gristmill monitor` shows the same window in its live quality section
    shown = json.loads(cli_stdout("monitor", "birds", "--json", cwd=folder))
    [listed] = shown["quality"]["windows"]
    assert listed["metrics"]["accuracy"] == pytest.approx(window.metrics["accuracy"])
    assert (listed["labelled"], shown["quality"]["counts"]["received"]) == (
        41,
        _counts(folder).received,
    )
    table = cli_stdout("monitor", "birds", cwd=folder)
    assert "Live quality" in table or "acc" in table, table


def _measured(folder: Path) -> bool:
    windows = _windows(folder)
    return bool(windows) and all(w.measured_revision == w.revision for w in windows)
