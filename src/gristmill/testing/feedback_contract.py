"""The feedback store's part of the metadata store contract (``FeedbackStore``).

``MetadataStoreContract`` inherits it, so a backend passes it by passing the metadata suite;
it reaches the store as ``store.feedback``. Windows here are an hour long; the suite's
predictions are made in the hour of ``T0``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from gristmill.stores.feedback import (
    FeedbackCounts,
    LoggedPrediction,
    Outcome,
    WindowKey,
    window_of,
)
from gristmill.stores.metadata import MetadataStore
from gristmill.testing.metadata_records import T0, assert_utc, at, run_together

HOUR = 3600
WINDOW = WindowKey("churn", 1, HOUR, window_of(T0, HOUR))


def make_prediction(
    request_id: str, row: int = 0, *, seconds: float = 0, version: int = 1, **changes: Any
) -> LoggedPrediction:
    """Row ``row`` of request ``request_id`` answered by ``churn``/``version`` at ``seconds``
    after ``T0``: class ``"1"`` with probabilities ``[0.2, 0.8]``."""
    when = at(seconds)
    prediction = LoggedPrediction(
        model="churn",
        version=version,
        request_id=request_id,
        row=row,
        at=when,
        window_start=window_of(when, HOUR),
        window_seconds=HOUR,
        prediction="1",
        probabilities=[0.2, 0.8],
    )
    return replace(prediction, **changes)


def make_outcome(
    feedback_id: str, position: int = 0, actual: Any = "1", *, seconds: float = 60, **names: Any
) -> Outcome:
    """Outcome ``position`` of feedback ``feedback_id``, received ``seconds`` after ``T0``;
    ``names`` says which prediction (``request_id="r1"``, or ``entity=…, model=…``)."""
    return Outcome(feedback_id, position, actual, at(seconds), **names)


def log(store: MetadataStore, source: str, *predictions: LoggedPrediction) -> Any:
    return store.feedback.add_predictions(source, list(predictions), classes=["0", "1"])


class FeedbackStoreContract:
    """Outcomes joined to logged predictions once, whatever comes first; windows revised."""

    __test__ = False

    def test_an_outcome_joins_the_prediction_logged_before_it(self, store: MetadataStore) -> None:
        logged = log(store, "f1", make_prediction("r1"), make_prediction("r2"))
        assert (logged.recorded, logged.joined) == (2, 0)
        joined = store.feedback.add_outcomes([make_outcome("e1", 0, "0", request_id="r1")])
        assert (joined.recorded, joined.joined, joined.waiting) == (1, 1, 0)
        assert joined.windows == (WINDOW,)
        window, labelled = store.feedback.labelled(WINDOW)
        assert (window.predictions, window.classes, window.revision) == (2, ["0", "1"], 1)
        assert_utc(window.window_start)
        [row] = labelled
        assert (row.prediction, row.probabilities, row.actual) == ("1", [0.2, 0.8], "0")
        assert (row.outcomes, row.late) == (1, False)
        assert store.feedback.counts() == FeedbackCounts(received=1, joined=1, waiting=0)
        assert store.feedback.counts("churn") == FeedbackCounts(1, 1, 0)

    def test_an_outcome_waits_for_its_prediction_then_joins(self, store: MetadataStore) -> None:
        early = store.feedback.add_outcomes([make_outcome("e1", 0, "0", request_id="r1")])
        assert (early.recorded, early.joined, early.waiting, early.windows) == (1, 0, 1, ())
        assert store.feedback.counts() == FeedbackCounts(1, 0, 1)
        logged = log(store, "f1", make_prediction("r1"))
        assert (logged.recorded, logged.joined, logged.windows) == (1, 1, (WINDOW,))
        _, [row] = store.feedback.labelled(WINDOW)
        assert (row.actual, row.outcomes) == ("0", 1)
        assert store.feedback.counts("churn") == FeedbackCounts(1, 1, 0)

    def test_unknown_ids_wait_and_join_nothing(self, store: MetadataStore) -> None:
        log(store, "f1", make_prediction("r1"))
        joined = store.feedback.add_outcomes(
            [make_outcome("e1", i, request_id=f"nope-{i}") for i in range(3)]
            + [make_outcome("e1", 3, request_id="r1", row=5)]  # no row 5 in r1
        )
        assert (joined.recorded, joined.joined, joined.waiting) == (4, 0, 4)
        assert store.feedback.counts() == FeedbackCounts(4, 0, 4)
        assert store.feedback.counts("churn") == FeedbackCounts(0, 0, 0)
        assert store.feedback.labelled(WINDOW)[1] == []

    def test_recording_the_same_feedback_again_records_nothing(self, store: MetadataStore) -> None:
        log(store, "f1", make_prediction("r1"))
        outcomes = [make_outcome("e1", 0, "0", request_id="r1"), make_outcome("e1", 1, "1")]
        outcomes[1] = replace(outcomes[1], request_id="nope")
        store.feedback.add_outcomes(outcomes)
        again = store.feedback.add_outcomes(outcomes)
        assert (again.recorded, again.joined, again.windows) == (0, 0, ())
        window, [row] = store.feedback.labelled(WINDOW)
        assert (row.outcomes, window.revision) == (1, 1)
        assert store.feedback.counts() == FeedbackCounts(2, 1, 1)

    def test_a_source_is_recorded_once(self, store: MetadataStore) -> None:
        estimate = {WINDOW: {"rows": 2, "correct": 1.5}}
        first = store.feedback.add_predictions(
            "f1", [make_prediction("r1"), make_prediction("r2")], estimates=estimate
        )
        assert first is not None and first.recorded == 2
        again = store.feedback.add_predictions("f1", [make_prediction("r1")], estimates=estimate)
        assert again is None
        other = store.feedback.add_predictions(
            "f2", [make_prediction("r2"), make_prediction("r3")], estimates=estimate
        )
        assert other is not None and other.recorded == 1  # r2 is recorded already
        [window] = store.feedback.list_windows("churn")
        assert window.predictions == 3
        assert window.estimate == {"rows": 4, "correct": 3.0}

    def test_a_duplicate_counts_and_the_last_received_wins(self, store: MetadataStore) -> None:
        log(store, "f1", make_prediction("r1"))
        # recorded in the opposite order of their receipt: the later one still wins
        store.feedback.add_outcomes([make_outcome("e2", 0, "1", request_id="r1", seconds=90)])
        store.feedback.add_outcomes([make_outcome("e1", 0, "0", request_id="r1", seconds=30)])
        window, [row] = store.feedback.labelled(WINDOW)
        assert (row.actual, row.outcomes, window.revision) == ("1", 2, 2)
        # within one feedback, the later place wins
        store.feedback.add_outcomes(
            [
                make_outcome("e3", 0, "0", request_id="r1", seconds=120),
                make_outcome("e3", 1, "1", request_id="r1", seconds=120),
            ]
        )
        _, [row] = store.feedback.labelled(WINDOW)
        assert (row.actual, row.outcomes) == ("1", 4)
        assert store.feedback.counts() == FeedbackCounts(4, 4, 0)

    def test_a_label_received_after_its_window_is_late(self, store: MetadataStore) -> None:
        log(store, "f1", make_prediction("r1"), make_prediction("r2"))
        days = 3 * 86400
        store.feedback.add_outcomes(
            [
                make_outcome("e1", 0, "1", request_id="r1", seconds=60),
                make_outcome("e1", 1, "0", request_id="r2", seconds=days),
            ]
        )
        _, rows = store.feedback.labelled(WINDOW)
        assert sorted((r.actual, r.late) for r in rows) == [("0", True), ("1", False)]

    def test_an_outcome_joins_every_version_that_answered(self, store: MetadataStore) -> None:
        log(store, "f1", make_prediction("r1"))
        store.feedback.add_outcomes([make_outcome("e1", 0, "0", request_id="r1")])
        # the shadow version's answer is logged (in its own file) after the label came
        shadow = make_prediction("r1", version=2, shadow=True)
        logged = log(store, "f2", shadow)
        shadow_window = replace(WINDOW, version=2)
        assert logged.joined == 1 and logged.windows == (shadow_window,)
        for window in (WINDOW, shadow_window):
            _, [row] = store.feedback.labelled(window)
            assert (row.actual, row.outcomes) == ("0", 1)
        assert store.feedback.counts("churn") == FeedbackCounts(1, 1, 0)

    def test_an_outcome_naming_a_model_joins_only_its_predictions(
        self, store: MetadataStore
    ) -> None:
        log(store, "f1", make_prediction("r1"))
        log(store, "f2", make_prediction("r1", model="fraud"))
        joined = store.feedback.add_outcomes(
            [make_outcome("e1", 0, "0", request_id="r1", model="fraud")]
        )
        assert joined.joined == 1
        assert store.feedback.labelled(WINDOW)[1] == []
        assert store.feedback.counts("churn") == FeedbackCounts(0, 0, 0)
        assert store.feedback.counts("fraud") == FeedbackCounts(1, 1, 0)

    def test_an_entity_outcome_joins_its_nearest_earlier_prediction(
        self, store: MetadataStore
    ) -> None:
        log(
            store,
            "f1",
            make_prediction("r1", seconds=0, entity="c1"),
            make_prediction("r2", seconds=100, entity="c1"),
            make_prediction("r3", seconds=200, entity="c1"),
            make_prediction("r4", seconds=150, entity="c2"),
        )
        joined = store.feedback.add_outcomes(
            [
                make_outcome("e1", 0, "0", model="churn", entity="c1", entity_at=at(150)),
                make_outcome("e1", 1, "0", model="churn", entity="c9", entity_at=at(150)),
            ]
        )
        assert (joined.joined, joined.waiting) == (1, 1)
        window, [row] = store.feedback.labelled(WINDOW)
        assert row.actual == "0"
        rows = store.feedback.list_windows("churn")
        assert [w.revision for w in rows] == [1] and window.predictions == 4

    def test_an_entity_outcome_waits_and_joins_once(self, store: MetadataStore) -> None:
        early = make_outcome("e1", 0, "0", model="churn", entity="c1", entity_at=at(150))
        assert store.feedback.add_outcomes([early]).waiting == 1
        log(store, "f1", make_prediction("r9", seconds=300, entity="c1"))  # after its time
        assert store.feedback.counts() == FeedbackCounts(1, 0, 1)
        logged = log(
            store,
            "f2",
            make_prediction("r1", seconds=0, entity="c1"),
            make_prediction("r2", seconds=100, entity="c1"),
        )
        assert logged.joined == 1
        log(store, "f3", make_prediction("r3", seconds=120, entity="c1"))  # nearer, too late
        _, [row] = store.feedback.labelled(WINDOW)
        assert (row.actual, row.outcomes) == ("0", 1)
        assert store.feedback.counts() == FeedbackCounts(1, 1, 0)

    def test_figures_are_kept_only_as_of_the_latest_revision(self, store: MetadataStore) -> None:
        log(store, "f1", make_prediction("r1"), make_prediction("r2"))
        assert store.feedback.unmeasured() == []
        store.feedback.add_outcomes([make_outcome("e1", 0, "1", request_id="r1")])
        assert store.feedback.unmeasured() == [WINDOW]
        window, _ = store.feedback.labelled(WINDOW)
        store.feedback.add_outcomes([make_outcome("e2", 0, "0", request_id="r2")])  # meanwhile
        measured = replace(window, labelled=1, metrics={"accuracy": 1.0}, measured_at=at(999))
        assert not store.feedback.record_quality(measured)
        window, rows = store.feedback.labelled(WINDOW)
        measured = replace(window, labelled=len(rows), metrics={"accuracy": 0.5})
        assert store.feedback.record_quality(replace(measured, measured_at=at(999)))
        assert store.feedback.unmeasured() == []
        [stored] = store.feedback.list_windows("churn", 1)
        assert (stored.labelled, stored.metrics, stored.measured_revision) == (
            2,
            {"accuracy": 0.5},
            2,
        )
        assert stored.measured_at == at(999)

    def test_windows_are_listed_by_model_version_length_and_time(
        self, store: MetadataStore
    ) -> None:
        log(store, "f1", make_prediction("r1"), make_prediction("r2", seconds=HOUR))
        log(store, "f2", make_prediction("r3", version=2))
        log(store, "f3", make_prediction("r4", window_seconds=60, window_start=window_of(T0, 60)))
        starts = [(w.version, w.window_seconds) for w in store.feedback.list_windows("churn")]
        assert sorted(starts) == [(1, 60), (1, HOUR), (1, HOUR), (2, HOUR)]
        since = window_of(at(HOUR), HOUR)
        later = store.feedback.list_windows("churn", 1, since=since, window_seconds=HOUR)
        assert [w.window_start for w in later] == [window_of(at(HOUR), HOUR)]
        assert store.feedback.list_windows("fraud") == []

    @pytest.mark.parametrize("first", ["outcome", "prediction"])
    def test_an_outcome_and_its_prediction_recorded_at_once_meet(
        self, store: MetadataStore, store_factory: Any, first: str
    ) -> None:
        others = [store_factory() for _ in range(2)]
        for other in others:
            other.open()
        try:
            for attempt in range(5):
                request = f"r{attempt}"

                def work(index: int, request: str = request) -> Any:
                    feedback = others[index].feedback
                    if (index == 0) == (first == "outcome"):
                        return feedback.add_outcomes([make_outcome(request, request_id=request)])
                    return log(others[index], request, make_prediction(request))

                run_together(2, work)
            assert store.feedback.counts() == FeedbackCounts(5, 5, 0)
            _, rows = store.feedback.labelled(WINDOW)
            assert [r.outcomes for r in rows] == [1] * 5
        finally:
            for other in others:
                other.close()

    def test_outcomes_round_trip_their_values(self, store: MetadataStore) -> None:
        values: list[Any] = [True, 3, 2.5, "crème ✓"]
        log(store, "f1", *(make_prediction(f"r{i}", prediction=v) for i, v in enumerate(values)))
        store.feedback.add_outcomes(
            [make_outcome("e1", i, v, request_id=f"r{i}") for i, v in enumerate(values)]
        )
        _, rows = store.feedback.labelled(WINDOW)
        assert sorted((repr(r.prediction), repr(r.actual)) for r in rows) == sorted(
            (repr(v), repr(v)) for v in values
        )

    def test_a_window_later_than_its_labels_is_found(self, store: MetadataStore) -> None:
        log(store, "f1", make_prediction("r1", seconds=-2 * HOUR))
        store.feedback.add_outcomes([make_outcome("e1", request_id="r1", seconds=0)])
        [window] = store.feedback.list_windows("churn")
        assert window.window_start == window_of(at(-2 * HOUR), HOUR)
        assert window.key.window_end == window.window_start + timedelta(hours=1)
        assert store.feedback.labelled(window.key)[1][0].late
