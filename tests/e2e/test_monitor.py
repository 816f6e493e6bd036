"""``gristmill monitor`` as a user meets it: a real ``gristmill serve`` answers requests
(some from its prediction cache, some refused for their input), records its figures every
0.2 s, and stops; ``gristmill monitor`` (its own process) then prints them per span and
draws the last day as a PNG — the figures outlive the server. Meanwhile ``/metrics``
carries the same requests as Prometheus counters, a latency histogram and min/max gauges.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gristmill.config.settings import load_settings
from gristmill.runtime.wiring import open_stores
from gristmill.testing.cli import cli_stdout as gm
from gristmill.testing.serving import running_server

from .test_serve import ROW, trained  # noqa: F401  (the module's fixture)

pytestmark = pytest.mark.slow

SAME_ROW_REQUESTS = 20


def _recorded(folder: Path) -> int:
    """birds/1's requests recorded in the metadata store (every server, the last hour)."""
    settings = load_settings(
        folder / "gristmill.toml", overrides={"home": str(folder / ".gristmill")}
    )
    since = datetime.now(UTC) - timedelta(hours=1)
    with open_stores(settings) as stores:
        windows = stores.metadata.serving_stats.list_windows("birds", 1, since=since)
    return sum(w.requests for w in windows)


def _wait(what: str, check: Callable[[], bool], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _sample(metrics: str, name: str) -> float:
    labels = 'model_name="birds",model_version="1"'
    found = re.search(rf"^{name}{{{labels},process=\"\d+\"}} (\S+)$", metrics, re.MULTILINE)
    assert found, f"{name} of birds/1 not in /metrics"
    return float(found.group(1))


def test_monitor_shows_what_a_real_server_served(
    trained: tuple[Path, dict[str, str]],  # noqa: F811
) -> None:
    folder, _ = trained
    (folder / "gristmill.toml").write_text(
        "[serve]\npoll_seconds = 600\nstats_flush_seconds = 0.2\ncache_size = 100\n"
    )
    with (
        running_server(folder, "--model", "birds") as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        for _ in range(SAME_ROW_REQUESTS):  # the first is scored, the others cached
            assert client.post("/v1/models/birds/predict", json={"rows": [ROW]}).is_success
        assert client.post("/v1/models/birds/predict", json={"rows": [ROW, ROW]}).is_success
        for bad in ({"rows": [{**ROW, "body_mass_g": "heavy"}]}, {"rows": [{"island": "Dream"}]}):
            assert client.post("/v1/models/birds/predict", json=bad).status_code == 400
        requests = SAME_ROW_REQUESTS + 3
        metrics = client.get("/metrics").text
        assert _sample(metrics, "gristmill_requests_total") == requests
        assert _sample(metrics, "gristmill_cache_hits_total") == SAME_ROW_REQUESTS - 1
        assert _sample(metrics, "gristmill_fallbacks_total") == 0
        assert _sample(metrics, "gristmill_request_latency_seconds_count") == requests
        low = _sample(metrics, "gristmill_request_latency_min_seconds")
        high = _sample(metrics, "gristmill_request_latency_max_seconds")
        assert 0 < low <= high < 10  # seconds
        _wait("the figures recorded", lambda: _recorded(folder) == requests)

    chart = folder / "charts" / "birds.png"
    body = json.loads(gm("monitor", "birds", "--json", "--chart", str(chart), cwd=folder))
    [served] = body["serving"]["versions"]
    assert (served["version"], served["role"]) == (1, "primary")
    minute, hour, day = (served["spans"][s] for s in ("1 min", "1 h", "1 day"))
    # the minute span holds this minute and the one before: all, unless minutes turned since
    at = datetime.fromisoformat(body["at"])
    assert datetime.fromisoformat(minute["since"]) == at.replace(second=0, microsecond=0) - (
        timedelta(minutes=1)
    )
    assert 0 <= minute["requests"] <= requests
    assert hour["requests"] == day["requests"] == requests
    assert (hour["errors"], hour["client_errors"], hour["fallbacks"]) == (0, 2, 0)
    assert (hour["cache_hits"], hour["rows"], hour["replicas"]) == (SAME_ROW_REQUESTS - 1, 22, 1)
    assert hour["latency_min"] <= hour["p50"] <= hour["p90"] <= hour["p99"] <= hour["latency_max"]
    low, high = hour["p99_bounds"]
    assert low <= hour["p99"] <= high
    assert hour["latency_min"] <= hour["latency_mean"] <= hour["latency_max"]
    picture = chart.read_bytes()
    assert picture.startswith(b"\x89PNG\r\n\x1a\n") and len(picture) > 20_000
    assert body["serving"]["chart"] == str(chart)

    table = gm("monitor", "birds", cwd=folder)
    assert "birds/1 — primary" in table
    rows = {
        line.split("│")[1].strip(): line.split("│")[2:5]
        for line in table.splitlines()
        if "│" in line
    }
    assert [cell.strip() for cell in rows["requests"]][1:] == [str(requests)] * 2
    assert [cell.strip() for cell in rows["cache hits"]][1:] == [str(SAME_ROW_REQUESTS - 1)] * 2
