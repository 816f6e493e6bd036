"""``gristmill show`` finds every kind of object by its id or by a unique start of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.cli.app import app
from gristmill.errors import NotFoundError
from gristmill.stores.metadata import LineageEdge
from gristmill.testing.metadata_records import (
    make_batch,
    make_candidate,
    make_feature_set,
    make_report,
    make_run,
    make_split,
)

FEATURE_SETS = ("fs_3fa901aa", "fs_3fa902bb", "fs_77c0ffee")
REPORTS = ("rep_5e1001", "rep_5e1002", "lb_5e1003", "lb_a11ce0")
CANDIDATES = ("mc_0badf00d", "mc_0bad1dea", "mc_c0ffee00")
SPLIT_OF_CANDIDATE, SPLIT_IN_LINEAGE, SPLIT_UNLINKED = "sp_ab01", "sp_ab02", "sp_ffff"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A metadata store holding a few objects of every kind, some sharing the start of an id."""
    home = tmp_path_factory.mktemp("show") / ".gristmill"
    home.mkdir()
    with SqlMetadataStore(f"sqlite:///{home / 'metadata.db'}") as store:
        for i, run_id in enumerate(("01HRUNAAAA", "01HRUNAAAB")):
            store.runs.start_run(make_run(run_id, i))
        store.batches.add_batch(make_batch("01HBATCH01"))
        for i, set_id in enumerate(FEATURE_SETS):
            store.feature_sets.add_feature_set(make_feature_set(set_id, i))
        for i, report_id in enumerate(REPORTS):
            store.reports.add_report(make_report(report_id, i))
        for split_id in (SPLIT_OF_CANDIDATE, SPLIT_IN_LINEAGE, SPLIT_UNLINKED):
            store.splits.add_split(make_split(split_id, feature_set_id=FEATURE_SETS[0]))
        for i, candidate_id in enumerate(CANDIDATES):
            store.candidates.save_candidate(
                make_candidate(candidate_id, i, split_id=SPLIT_OF_CANDIDATE)
            )
        store.lineage.add_edges(
            [LineageEdge(FEATURE_SETS[2], "feature_set", SPLIT_IN_LINEAGE, "split", "split_into")]
        )
    return home


def show(home: Path, object_id: str) -> Any:
    """The object ``show --json`` prints, or the error it stopped with."""
    result = CliRunner().invoke(app, ["--home", str(home), "show", object_id, "--json"])
    if result.exception is not None:
        return result.exception
    return json.loads(result.output)


@pytest.mark.parametrize(
    ("start", "field", "full"),
    [
        ("fs_77", "feature_set_id", "fs_77c0ffee"),
        ("fs_3FA901", "feature_set_id", "fs_3fa901aa"),  # hex digits in either case
        ("rep_5e1002", "report_id", "rep_5e1002"),
        ("rep_5e1001", "report_id", "rep_5e1001"),
        ("lb_a", "report_id", "lb_a11ce0"),
        ("mc_c", "candidate_id", "mc_c0ffee00"),
        ("mc_0badf", "candidate_id", "mc_0badf00d"),
        ("sp_ab01", "split_id", SPLIT_OF_CANDIDATE),
        ("01hrunaaab", "run_id", "01HRUNAAAB"),
        ("MC_C0F", "candidate_id", "mc_c0ffee00"),  # a content id typed in capitals
        ("LB_A", "report_id", "lb_a11ce0"),
        ("01HBAT", "batch_id", "01HBATCH01"),
    ],
)
def test_a_unique_start_finds_the_object(home: Path, start: str, field: str, full: str) -> None:
    shown = show(home, start)
    assert not isinstance(shown, BaseException), shown
    assert shown[field] == full


def test_a_split_is_found_by_its_candidates_or_its_feature_set(home: Path) -> None:
    assert show(home, "sp_ab01")["split_id"] == SPLIT_OF_CANDIDATE
    assert show(home, "sp_ab02")["split_id"] == SPLIT_IN_LINEAGE
    error = show(home, "sp_a")
    assert isinstance(error, NotFoundError)
    assert f"2 split ids: {SPLIT_OF_CANDIDATE}, {SPLIT_IN_LINEAGE};" in str(error)
    # No candidate and no lineage edge leads to this one: found by its full id only.
    assert show(home, SPLIT_UNLINKED)["split_id"] == SPLIT_UNLINKED
    error = show(home, "sp_f")
    assert isinstance(error, NotFoundError) and "no split with id 'sp_f';" in str(error)


@pytest.mark.parametrize(
    ("start", "matches"),
    [
        ("fs_3fa90", "2 feature set ids: fs_3fa901aa, fs_3fa902bb"),
        ("rep_5e", "2 report ids: rep_5e1001, rep_5e1002"),
        ("mc_0bad", "2 candidate ids: mc_0bad1dea, mc_0badf00d"),
        ("01HRUNAAA", "2 run or batch ids: 01HRUNAAAA, 01HRUNAAAB"),
    ],
)
def test_an_ambiguous_start_lists_the_matches(home: Path, start: str, matches: str) -> None:
    error = show(home, start)
    assert isinstance(error, NotFoundError)
    assert str(error) == f"{start!r} is the start of {matches}; give more of it"


@pytest.mark.parametrize(
    ("start", "listing"),
    [
        ("fs_9", "`gristmill ls feature-sets`"),
        ("rep_9", "`gristmill ls reports`"),
        ("lb_9", "`gristmill ls reports`"),
        ("mc_9", "`gristmill ls candidates`"),
        ("sp_9", "`gristmill lineage <feature set>`"),
        ("01Z", "`gristmill ls runs` or `gristmill ls batches`"),
    ],
)
def test_a_start_that_matches_nothing_says_where_ids_are_listed(
    home: Path, start: str, listing: str
) -> None:
    error = show(home, start)
    assert isinstance(error, NotFoundError)
    assert f"with id {start!r}; list them with " in str(error) and listing in str(error)
    assert str(error).endswith("(no id starts with it either)")


def test_show_prints_the_full_id(home: Path) -> None:
    result = CliRunner().invoke(app, ["--home", str(home), "show", "fs_77"])
    assert result.exit_code == 0, result.output
    assert "feature set fs_77c0ffee" in result.output


def test_an_ambiguous_start_exits_1_with_one_line_naming_the_matches(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    command = [sys.executable, "-m", "gristmill", "--home", str(home), "show", "mc_0bad"]
    result = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "mc_0bad1dea, mc_0badf00d; give more of it" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("typed", "kind", "listing"),
    [
        ("lb", "leaderboard ids (lb_…)", "`gristmill ls reports`"),
        ("LB", "leaderboard ids (lb_…)", "`gristmill ls reports`"),
        ("lb_", "leaderboard ids (lb_…)", "`gristmill ls reports`"),
        ("rep", "validation report ids (rep_…)", "`gristmill ls reports`"),
        ("mc", "model candidate ids (mc_…)", "`gristmill ls candidates`"),
        ("mc_", "model candidate ids (mc_…)", "`gristmill ls candidates`"),
        ("fs", "feature set ids (fs_…)", "`gristmill ls feature-sets`"),
        ("sp_", "split ids (sp_…)", "`gristmill lineage <feature set>`"),
    ],
)
def test_a_bare_prefix_says_what_ids_of_its_kind_look_like(
    home: Path, typed: str, kind: str, listing: str
) -> None:
    error = show(home, typed)
    assert isinstance(error, NotFoundError)
    assert str(error).startswith(f"{typed!r} is only the prefix of {kind}, not an id; give one")
    assert listing in str(error)


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("mc0bad", "model candidate ids start with mc_ (did you mean mc_0bad?)"),
        ("lb-a11", "leaderboard ids start with lb_ (did you mean lb_a11?)"),
        ("penguins", "other ids start with their kind: fs_… (feature set), rep_…"),
        ("re", "runs and batches have ids such as 01M8F62MRZACAVEHTA8B9TG6W0"),
    ],
)
def test_a_word_that_is_no_id_is_not_uppercased(home: Path, typed: str, says: str) -> None:
    error = show(home, typed)
    assert isinstance(error, NotFoundError)
    assert f"no id is or starts with {typed!r}" in str(error) and says in str(error)
    assert typed.upper() not in str(error)


def test_a_bare_prefix_exits_1_with_one_line(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    command = [sys.executable, "-m", "gristmill", "--home", str(home), "show", "lb"]
    result = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "'lb' is only the prefix of leaderboard ids (lb_…)" in result.stderr
    assert "'LB'" not in result.stderr and "Traceback" not in result.stderr
