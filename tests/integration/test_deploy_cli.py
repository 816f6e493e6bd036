"""deploy, rollback and deployments on the command line, against a real SQLite home and bus."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gristmill.config.settings import Settings, load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import MODEL_DEPLOYED, MODEL_ROLLED_BACK, Event
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import build_bus, build_metadata, open_services
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.rollback_rules import RollbackRule
from gristmill.stores.serving_stats import ServingWindow, window_start
from gristmill.testing.cli import run_cli_here
from gristmill.testing.registered import PENGUIN_SECTION, penguins, write_csv
from gristmill.training.deployment import deploy


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home holding four real trained candidates registered as churn/1 … churn/4 (deploy
    compiles a version before any policy changes, so each needs its model bundle)."""
    folder = tmp_path_factory.mktemp("deploy")
    settings = load_settings(
        overrides={"home": str(folder / "home"), "executor": {"backend": "inline"}}
    )
    spec = parse_spec(
        {
            "name": "churn",
            "sources": {"birds": {"format": "csv", "path": str(folder / "birds.csv")}},
            "features": {"birds_v1": {"from": ["birds"], **PENGUIN_SECTION}},
            "split": {"strategy": "random", "test_size": 0.3, "seed": 7},
            "train": {
                "candidates": [
                    {"name": f"c{i}", "algorithm": "logistic_regression", "params": {"C": c}}
                    for i, c in enumerate((0.1, 0.5, 1.0, 2.0), start=1)
                ]
            },
            "evaluate": {"metric": "accuracy"},
        }
    )
    write_csv(penguins(), folder, "birds")

    async def train() -> None:
        async with open_services(settings) as services:
            report = await run_pipeline(spec, services, timeout=280)
            assert report.run.status == "succeeded", report.run.summary
            trained = services.metadata.candidates.list_candidates(run_id=report.run.run_id)
            for candidate in sorted(trained, key=lambda c: c.name):
                services.metadata.registry.register_version("churn", candidate)

    asyncio.run(train())
    return settings.home


@pytest.fixture
def settings(tmp_path: Path, trained: Path) -> Settings:
    home = tmp_path / "home"
    shutil.copytree(trained, home)
    return load_settings(overrides={"home": str(home)})


@pytest.fixture
def store(settings: Settings) -> Iterator[MetadataStore]:
    opened = build_metadata(settings)
    opened.open()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def gm(tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> Any:
    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setenv("COLUMNS", "200")
        monkeypatch.setenv("LOGNAME", "ann")  # the acting user (GRISTMILL_* are cleared)
        home = ("--home", str(settings.home))
        return run_cli_here(*home, *args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)

    return run


def announced(settings: Settings, event_type: str) -> list[Event]:
    async def read() -> list[Event]:
        bus = build_bus(settings)
        await bus.open()
        try:
            found = await bus.consume("test-reader", event_type, "t", max_events=100, wait=0.5)
            return [d.event for d in found]
        finally:
            await bus.close()

    return asyncio.run(read())


def test_deploy_canary_shadow_rollback_and_list(
    gm: Any, store: MetadataStore, settings: Settings
) -> None:
    code, out, err = gm("deploy", "churn", "1", "--reason", "first")
    assert code == 0, err
    assert "churn: version 1 answers every request (policy revision 1)" in out
    code, out, _ = gm("deploy", "churn", "2")
    assert "version 1 is now churn@previous and first fallback" in out
    code, out, _ = gm("deploy", "churn", "3", "--canary", "0.1")
    assert "version 3 is a canary answering 10% of requests beside primary version 2" in out
    code, out, _ = gm("deploy", "churn", "4", "--shadow")
    assert code == 0 and "version 4 scores beside every answer of version 2" in out
    code, out, _ = gm("deploy", "churn", "4", "--shadow")
    assert "nothing changed" in out

    code, out, _ = gm("deployments")
    assert code == 0
    (row,) = [line for line in out.splitlines() if "churn" in line and "│" in line]
    for cell in ("2 (90%)", "3 (10%)", " 4 ", " 1 ", "ann"):
        assert cell in row, row
    progress = " ".join(out.split("┘")[-1].split())
    assert progress.startswith("churn: canary 3 so far: 0 requests, 0 errors, 0 fallbacks")
    assert "no promotion rule: promote it with gristmill deploy churn 3" in progress
    policy = store.registry.get_policy("churn")
    assert policy is not None
    assert (policy.primary, policy.canary, policy.shadow, policy.fallback) == (2, 3, (4,), (1,))
    assert (policy.revision, policy.changed_by) == (4, "ann")

    code, out, _ = gm("rollback", "churn", "--reason", "errors up")
    assert code == 0
    assert "version 1 answers every request again (policy revision 5)" in out
    assert "version 2 is no longer served" in out
    back = store.registry.get_policy("churn")
    assert back is not None and (back.primary, back.canary, back.reason) == (1, None, "errors up")
    assert {a.alias: a.version for a in store.registry.list_aliases("churn")} == {"champion": 1}

    deployed = announced(settings, MODEL_DEPLOYED)
    assert [e.payload["revision"] for e in deployed] == [1, 2, 3, 4]
    assert deployed[2].key == "churn"
    assert deployed[2].payload | {"shadow": []} == {
        "model": "churn",
        "revision": 3,
        "primary": 2,
        "canary": 3,
        "canary_share": 0.1,
        "shadow": [],
        "fallback": [1],
        "promote_after_requests": None,
        "promote_after_minutes": None,
        "rollback": None,
        "version": 3,
        "previous": 2,
    }
    (rolled,) = announced(settings, MODEL_ROLLED_BACK)
    assert rolled.payload["primary"] == 1 and rolled.payload["previous"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("deploy", "nope", "1"), "no version 1 of model 'nope'"),
        (("deploy", "churn", "9"), r"no version 9 of model 'churn'.*gristmill models churn"),
        (("deploy", "churn", "2", "--canary", "1.5"), r"--canary 1.5: the share must be"),
        (("deploy", "churn", "2", "--canary", "0"), r"--canary 0: the share must be"),
        (("deploy", "churn", "2", "--canary", "0.1", "--shadow"), "exclude each other"),
        (("deploy", "churn", "2", "--shadow"), r"no live version yet.*gristmill deploy churn"),
        (("rollback", "churn"), r"'churn' is not deployed"),
        (
            ("deploy", "churn", "2", "--promote-after-requests", "10"),
            r"say when a canary is promoted; add --canary SHARE",
        ),
        (
            ("deploy", "churn", "2", "--canary", "0.1", "--promote-after-minutes", "0"),
            r"--promote-after-minutes 0: give the minutes a canary must run, above 0",
        ),
        (
            ("deploy", "churn", "2", "--canary", "0.1", "--promote-after-requests", "0"),
            r"Invalid value for '--promote-after-requests'",
        ),
        (("rollback", "bad name"), r"'bad name' is not deployed"),
    ],
)
def test_wrong_inputs_are_one_line_and_a_failure(
    gm: Any, store: MetadataStore, args: tuple[str, ...], message: str
) -> None:
    import re

    code, out, err = gm(*args)
    assert code != 0
    assert "Traceback" not in out + err
    assert re.search(message, " ".join(err.split())), err
    assert store.registry.get_policy("churn") is None


def test_rollback_without_previous_is_explained(gm: Any, store: MetadataStore) -> None:
    gm("deploy", "churn", "1")
    code, _, err = gm("rollback", "churn")
    assert code == 2
    assert "no @previous version to roll back to" in " ".join(err.split())


def test_a_judged_canary_shows_its_progress_and_can_be_pulled_by_hand(
    gm: Any, store: MetadataStore, settings: Settings
) -> None:
    gm("deploy", "churn", "1")
    code, out, err = gm(
        "deploy", "churn", "2", "--canary", "0.2",
        "--promote-after-requests", "100", "--promote-after-minutes", "5",
    )  # fmt: skip
    assert code == 0, err
    assert "promoted after 100 requests and 5 minutes without errors" in " ".join(out.split())
    policy = store.registry.get_policy("churn")
    assert policy is not None and policy.judged and policy.canary_since is not None
    # two servers served the canary this minute, as its policy sent it requests
    store.serving_stats.record(
        [
            ServingWindow(
                "churn", 2, replica, window_start(policy.canary_since), policy.revision,
                requests=requests, client_errors=1,
            )
            for replica, requests in (("a", 21), ("b", 11))
        ]
    )  # fmt: skip
    _, out, _ = gm("deployments", "churn")
    text = " ".join(out.split())
    assert "churn: canary 2 so far: 30/100 requests, 0 errors, 0 fallbacks, 2 client errors" in (
        text
    )
    assert "/5 min, over 2 servers; promoted once its rule is met, pulled at its first" in text
    _, out, _ = gm("deployments", "churn", "--json")
    (row,) = json.loads(out)
    assert row["promote_after_requests"] == 100 and row["promote_after_minutes"] == 5.0
    assert row["canary_progress"] | {"minutes": 0} == {
        "requests": 32,
        "answered": 30,
        "errors": 0,
        "client_errors": 2,
        "fallbacks": 0,
        "replicas": 2,
        "minutes": 0,
        "judged": True,
        "verdict": "wait",
    }

    code, out, _ = gm("rollback", "churn", "--canary", "--reason", "not now")
    assert code == 0
    assert "version 1 answers every request again" in out
    assert "canary version 2 is no longer served" in out
    pulled = store.registry.get_policy("churn")
    assert pulled is not None and (pulled.primary, pulled.canary) == (1, None)
    assert not pulled.judged
    (rolled,) = announced(settings, MODEL_ROLLED_BACK)
    assert (rolled.payload["primary"], rolled.payload["canary"]) == (1, None)
    code, _, err = gm("rollback", "churn", "--canary")
    assert code == 2 and "no canary to pull" in " ".join(err.split())


def test_deployments_shows_the_rollback_rule_and_its_figures(gm: Any, store: MetadataStore) -> None:
    rule = RollbackRule(max_miss_rate=0.05, min_requests=200, window_minutes=2)
    gm("deploy", "churn", "1")
    deploy(store.registry, "churn", 2, rollback_rule=rule)
    policy = store.registry.get_policy("churn")
    assert policy is not None
    store.serving_stats.record(
        [
            ServingWindow(
                "churn", 2, "a", window_start(datetime.now(UTC)), policy.revision,
                requests=40, budget_misses=3,
            )
        ]
    )  # fmt: skip
    code, out, _ = gm("deployments", "churn")
    assert code == 0
    line = " ".join(next(x for x in out.splitlines()[1:] if "rollback rule" in x).split())
    assert line.startswith("churn: rollback rule miss rate > 5%; ≥ 200 requests in 2 min")
    assert "primary 2: 40 requests, 3 budget misses (7.5%), 0 errors" in " ".join(out.split())
    code, out, _ = gm("deployments", "churn", "--json")
    [row] = json.loads(out)
    assert row["rollback_rule"]["max_miss_rate"] == 0.05
    [reading] = row["rollback_readings"]
    assert (reading["version"], reading["role"], reading["budget_misses"]) == (2, "primary", 3)
    code, out, _ = gm("deployments", "churn", "--history")
    assert code == 0 and "rollback rule miss rate > 5%" in " ".join(out.split())


def test_an_unreachable_bus_is_a_warning(gm: Any, store: MetadataStore) -> None:
    code, out, err = gm(
        "--bus", "redis", "--bus-url", "redis://127.0.0.1:1/0", "deploy", "churn", "1"
    )
    assert code == 0, err
    assert "answers every request" in out
    assert "warning: could not announce model.deployed of churn" in " ".join(err.split())
    assert store.registry.get_policy("churn") is not None


def test_deployments_lists_champions_without_a_policy(gm: Any, store: MetadataStore) -> None:
    _, out, _ = gm("deployments")
    assert "no model is deployed yet" in out
    store.registry.set_alias("churn", "champion", 2)
    _, out, _ = gm("deployments", "churn")
    (row,) = [line for line in out.splitlines() if "churn" in line]
    assert "2 (100%)" in row and "champion alias" in row


def test_a_registered_model_not_deployed_is_said_and_an_unknown_one_is_an_error(
    gm: Any, store: MetadataStore
) -> None:
    code, out, _ = gm("deployments", "churn")
    assert code == 0 and "model 'churn' is not deployed; deploy a version" in " ".join(out.split())
    for args in (("deployments", "fraud"), ("deployments", "fraud", "--history")):
        code, out, err = gm(*args)
        assert code != 0 and out == "" and "Traceback" not in err
        assert "no model named 'fraud' is registered; list the registered models with " in (
            " ".join(err.split())
        )
        assert "`gristmill models`" in err
    code, _, err = gm("deployments", "chrun")
    assert code != 0 and "did you mean 'churn'?" in err


def test_history_lists_who_changed_what_when_and_why(gm: Any, store: MetadataStore) -> None:
    code, out, _ = gm("deployments", "churn", "--history")
    assert code == 0 and "no policy changes of churn yet" in out
    gm("deploy", "churn", "1", "--reason", "first")
    gm("deploy", "churn", "2", "--canary", "0.2", "--reason", "try two")
    code, _, err = gm("rollback", "churn", "--canary", "--reason", "not now")
    assert code == 0, err

    code, out, _ = gm("deployments", "churn", "--history")
    assert code == 0
    rows = [" ".join(line.split()) for line in out.splitlines() if "│ ann │" in line]
    assert [row.split("│")[2].strip() for row in rows] == ["3", "2", "1"]  # newest first
    pulled, canary, first = rows
    assert "primary 1 │ primary 1 (80%), canary 2 (20%) │ not now" in pulled
    assert "primary 1 (80%), canary 2 (20%) │ primary 1 │ try two" in canary
    assert "primary 1 │ - │ first" in first

    _, out, _ = gm("deployments", "churn", "--history", "--limit", "1", "--json")
    (latest,) = json.loads(out)
    assert latest | {"at": "-"} == {
        "at": "-",
        "by": "ann",
        "model": "churn",
        "revision": 3,
        "policy": {"primary": 1, "canary": None, "canary_share": 0.0, "shadow": [],
                   "fallback": []},
        "before": {"primary": 1, "canary": 2, "canary_share": 0.2, "shadow": [],
                   "fallback": []},
        "reason": "not now",
    }  # fmt: skip
    _, out, _ = gm("deployments", "--history", "--limit", "2")
    header = next(line for line in out.splitlines() if "when (UTC)" in line)
    assert "model" in header
    assert sum("│ churn │" in line for line in out.splitlines()) == 2


def test_help_shows_examples(gm: Any) -> None:
    for command, example in (
        ("deploy", "gristmill deploy churn 4 --canary 0.1"),
        ("rollback", "gristmill rollback churn"),
        ("deployments", "gristmill deployments churn"),
        ("deployments", "gristmill deployments churn --history"),
    ):
        code, out, _ = gm(command, "--help")
        assert code == 0 and example in out


def test_a_version_that_cannot_be_served_is_not_deployed(
    gm: Any, store: MetadataStore, settings: Settings
) -> None:
    assert gm("deploy", "churn", "1")[0] == 0
    for path in (settings.home / "artifacts" / "model").iterdir():
        if "." not in path.name:  # every trained model's bytes altered on disk
            data = path.read_bytes()
            path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    code, out, err = gm("deploy", "churn", "2", "--canary", "0.2")
    assert code != 0 and "Traceback" not in out + err
    assert "churn/2 cannot be served, so it is not deployed" in err, err
    policy = store.registry.get_policy("churn")
    assert policy is not None and (policy.primary, policy.canary) == (1, None)
