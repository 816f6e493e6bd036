"""Live quality that falls below a version's offline metric by more than its rollback rule
allows demotes the version — once — through the deployment policy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.core.events import MODEL_ROLLED_BACK, MONITOR_ALERT
from gristmill.stages.quality_windows import quality_demotions
from gristmill.stores.feedback import QualityWindow
from gristmill.stores.models import TrafficPolicy
from gristmill.stores.rollback_rules import RollbackRule
from gristmill.testing.metadata_records import make_candidate
from gristmill.training.rollback import ROLLBACK_JUDGE

START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _window(version: int, labelled: int, **metrics: float) -> QualityWindow:
    return QualityWindow(
        "churn", version, 3600, START, predictions=labelled, labelled=labelled, metrics=metrics
    )


def test_a_quality_drop_past_the_rule_demotes_the_live_version_once(tmp_path: Path) -> None:
    with SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}") as store:
        registry = store.registry
        for number, accuracy in ((1, 0.88), (2, 0.91)):
            candidate = make_candidate(f"c-{number}", metrics={"accuracy": accuracy, "f1": 0.8})
            registry.register_version("churn", candidate)
        rule = RollbackRule(max_quality_drop=0.05, min_requests=50)
        registry.set_policy(TrafficPolicy("churn", primary=2, fallback=(1,), rollback_rule=rule))

        # too few labels, or a drop within the rule: judged, left alone
        assert quality_demotions(store, [_window(2, 49, accuracy=0.5)]) == []
        assert quality_demotions(store, [_window(2, 400, accuracy=0.87)]) == []
        # the fallback is not live: its own drop is not judged
        assert quality_demotions(store, [_window(1, 400, accuracy=0.1)]) == []

        announced = quality_demotions(store, [_window(2, 400, accuracy=0.80)])
        assert [a.type for a in announced] == [MODEL_ROLLED_BACK, MONITOR_ALERT]
        policy = registry.get_policy("churn")
        assert policy is not None and policy.primary == 1 and policy.changed_by == ROLLBACK_JUDGE
        assert "live accuracy 0.8 against 0.91 offline" in policy.reason
        # measured again (late labels): no second demotion
        assert quality_demotions(store, [_window(2, 500, accuracy=0.7)]) == []
        assert registry.get_policy("churn").revision == policy.revision  # type: ignore[union-attr]


def test_error_metrics_drop_upwards_and_the_rule_can_name_its_metric(tmp_path: Path) -> None:
    with SqlMetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}") as store:
        registry = store.registry
        for number in (1, 2):
            candidate = make_candidate(
                f"c-{number}", task="regression", metrics={"rmse": 10.0, "mae": 8.0}
            )
            registry.register_version("price", candidate)
        rule = RollbackRule(max_quality_drop=1.0, quality_metric="mae", min_requests=10)
        registry.set_policy(TrafficPolicy("price", primary=2, fallback=(1,), rollback_rule=rule))
        window = QualityWindow("price", 2, 3600, START, predictions=20, labelled=20)
        better = QualityWindow(**{**window.__dict__, "metrics": {"rmse": 30.0, "mae": 7.0}})
        assert quality_demotions(store, [better]) == []  # rmse is not the rule's metric
        worse = QualityWindow(**{**window.__dict__, "metrics": {"rmse": 10.0, "mae": 9.5}})
        assert next(a.type for a in quality_demotions(store, [worse])) == MODEL_ROLLED_BACK
