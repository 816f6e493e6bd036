"""``gristmill monitor`` and the serving stats' retention in ``gristmill gc``, on a real
SQLite metadata store holding recorded windows (the e2e test serves a real model)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.stores.models import TrafficPolicy
from gristmill.stores.serving_stats import LATENCY_BUCKETS, ServingWindow, empty_buckets
from gristmill.stores.serving_stats import window_start as minute_of
from gristmill.testing.cli import modules_imported, run_cli_here
from gristmill.testing.metadata_records import make_candidate


def _now() -> datetime:
    """This minute: taken when a test runs (a suite may run long after this module loads)."""
    return minute_of(datetime.now(UTC))


def _window(version: int, minutes_ago: int, replica: str = "a", **values: Any) -> ServingWindow:
    """10 requests, 6 of them in (0.5, 1] ms and 4 in (10, 25] ms, unless told otherwise."""
    buckets = list(empty_buckets())
    buckets[LATENCY_BUCKETS.index(0.001)] = 6
    buckets[LATENCY_BUCKETS.index(0.025)] = 4
    fields: dict[str, Any] = {
        "requests": 10,
        "rows": 10,
        "latency_sum": 0.086,
        "latency_min": 0.0008,
        "latency_max": 0.02,
        "latency_buckets": tuple(buckets),
        **values,
    }
    start = _now() - timedelta(minutes=minutes_ago)
    return ServingWindow("churn", version, replica, start, **fields)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """churn/1 and churn/2 registered, 2 primary with 1 as its fallback; figures of v2 this
    minute (two servers), half an hour ago and 40 days ago; of v1 two hours ago."""
    (tmp_path / ".gristmill").mkdir()
    with SqlMetadataStore(f"sqlite:///{tmp_path / '.gristmill' / 'metadata.db'}") as store:
        for number in (1, 2):
            store.registry.register_version("churn", make_candidate(f"c-{number}"))
        store.registry.set_policy(TrafficPolicy("churn", primary=2, fallback=(1,)))
        store.serving_stats.record(
            [
                _window(2, 0, errors=1, fallbacks=1, cache_hits=2, budget_misses=4),
                _window(2, 0, "b", client_errors=3),
                _window(2, 30),
                _window(2, 40 * 24 * 60),
                _window(1, 120, requests=5, errors=5, latency_buckets=empty_buckets()),
            ]
        )
    yield tmp_path


def _gm(home: Path, *args: str, **fixtures: Any) -> tuple[int, str, str]:
    return run_cli_here(*args, cwd=home, **fixtures)


def test_monitor_prints_each_versions_figures_over_the_spans(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _gm(home, "monitor", "churn", "--json", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    body = json.loads(out)
    assert body["model"] == "churn" and body["serving"]["policy_revision"] == 1
    versions = {v["version"]: v for v in body["serving"]["versions"]}
    assert (versions[2]["role"], versions[1]["role"]) == ("primary", "fallback")
    minute, hour, day = (versions[2]["spans"][s] for s in ("1 min", "1 h", "1 day"))
    assert (minute["requests"], minute["errors"], minute["client_errors"]) == (20, 1, 3)
    assert (minute["fallbacks"], minute["cache_hits"], minute["replicas"]) == (1, 2, 2)
    assert (minute["budget_misses"], minute["miss_rate"]) == (4, 0.2)
    assert (hour["requests"], day["requests"]) == (30, 30)  # 40 days ago counts in none
    # 12 of 20 in (0.5,1] ms, 8 in (10,25] ms: p50 rank 10 → 0.5 + 0.5 * 10 / 12 ms
    assert minute["p50"] == pytest.approx(0.0005 + 0.0005 * 10 / 12)
    assert minute["p50_bounds"] == [0.0008, 0.001]
    assert minute["p99_bounds"] == [0.01, 0.02]
    assert (minute["latency_min"], minute["latency_max"]) == (0.0008, 0.02)
    old = versions[1]["spans"]
    assert (old["1 h"]["requests"], old["1 day"]["requests"], old["1 day"]["errors"]) == (0, 5, 5)
    assert old["1 day"]["error_rate"] == 1.0 and old["1 day"]["p50"] is None

    code, out, err = _gm(home, "monitor", "churn", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "churn/2 — primary" in out and "churn/1 — fallback" in out
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert [c.strip() for c in lines["requests"].split("│")[2:5]] == ["20", "30", "30"]
    assert "1 (5.0%)" in lines["errors"]
    assert "4 (20.0%)" in lines["budget misses"]
    assert "Percentiles are estimated from latency buckets" in out


def test_monitor_draws_the_last_day_of_one_version(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = home / "charts" / "churn.png"
    code, out, err = _gm(
        home,
        "monitor",
        "churn",
        "--version",
        "1",
        "--chart",
        str(chart),
        monkeypatch=monkeypatch,
        capsys=capsys,
    )
    assert code == 0, err
    assert "churn/1" in out and "churn/2" not in out
    assert f"chart: {chart}" in out
    picture = chart.read_bytes()
    assert picture.startswith(b"\x89PNG\r\n\x1a\n") and len(picture) > 20_000


@pytest.mark.parametrize(
    ("name", "starts"),
    [("churn.svg", b"<?xml"), ("churn.pdf", b"%PDF"), ("churn.jpg", b"\xff\xd8\xff")],
)
def test_the_charts_suffix_names_its_format(
    home: Path,
    name: str,
    starts: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chart = home / "charts" / name
    code, _, err = _gm(
        home, "monitor", "churn", "--chart", str(chart), monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0, err
    assert chart.read_bytes().startswith(starts)


@pytest.mark.parametrize(
    ("chart", "said"),
    [
        (".", "is a folder; give the chart's file name, e.g."),
        ("churn.gif", "'.gif' is not a picture format a chart is written in; end the name with"),
    ],
)
def test_a_chart_into_a_folder_or_an_unknown_format_is_refused(
    home: Path,
    chart: str,
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _gm(
        home, "monitor", "churn", "--chart", chart, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2 and out == "", out  # a wrong option, as a usage error
    assert said in " ".join(err.split()) and "--chart" in err
    assert "unexpected" not in err and "Traceback" not in err
    assert not (home / "churn.gif").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("fish",), "no model named 'fish' in the registry (registered: churn)"),
        (("chrun",), "did you mean 'churn'?"),
        (("churn", "--version", "9"), "no version 9 of model 'churn'; list its versions with"),
    ],
)
def test_monitor_names_what_is_unknown_and_what_to_run(
    home: Path,
    args: tuple[str, ...],
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _gm(home, "monitor", *args, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and out == ""
    assert said in err and "gristmill models" in err and "Traceback" not in err


def test_gc_prunes_serving_stats_older_than_the_setting(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def windows() -> int:
        with SqlMetadataStore(f"sqlite:///{home / '.gristmill' / 'metadata.db'}") as store:
            since = _now() - timedelta(days=100)
            return len(store.serving_stats.list_windows("churn", since=since))

    code, out, err = _gm(home, "gc", "--dry-run", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "would remove 1 serving stats window(s) before" in out
    assert "(serve.stats_keep_days = 30)" in out and windows() == 5
    (home / "gristmill.toml").write_text("[serve]\nstats_keep_days = 0\n")  # keep all
    code, out, err = _gm(home, "gc", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and "serving stats" not in out and windows() == 5
    (home / "gristmill.toml").write_text("[serve]\nstats_keep_days = 0.05\n")  # 72 minutes
    code, out, err = _gm(home, "gc", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "removed 2 serving stats window(s)" in out  # 40 days ago, and v1 two hours ago
    assert windows() == 3


def test_monitor_without_a_chart_reads_the_metadata_store_and_nothing_heavy(home: Path) -> None:
    printed, modules = modules_imported("monitor", "churn", cwd=home)
    assert "churn/2 — primary" in printed
    heavy = ("matplotlib", "numpy", "pandas", "pyarrow", "sklearn", "alembic", "gristmill.stages")
    assert [h for h in heavy if any(m == h or m.startswith(f"{h}.") for m in modules)] == []
    assert "sqlalchemy" in modules  # the metadata store is read, for real
