"""Schedules in the spec: tick times of ``every`` and ``cron`` (UTC), the schedules a spec
asks for, and bad values refused naming the key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from gristmill.config.schedules import Timing, cron_text, every_text
from gristmill.config.spec import parse_spec
from gristmill.errors import SpecError
from gristmill.stores.schedules import spec_schedules


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_every_ticks_at_whole_multiples_since_the_epoch() -> None:
    hourly = Timing(every=every_text("1h"))
    assert hourly.latest(at("2024-05-01 10:59:59.9")) == at("2024-05-01 10:00:00")
    assert hourly.latest(at("2024-05-01 11:00:00")) == at("2024-05-01 11:00:00")
    assert hourly.following(at("2024-05-01 11:00:00")) == at("2024-05-01 12:00:00")
    quarter = Timing(every=every_text("15m"))
    assert quarter.latest(at("2024-05-01 10:44:00")) == at("2024-05-01 10:30:00")
    daily = Timing(every=every_text(86400))
    assert daily.latest(at("2024-05-01 23:00:00")) == at("2024-05-01 00:00:00")
    paris = datetime(2024, 5, 1, 12, 30, tzinfo=UTC).astimezone()  # any zone: the same tick
    assert hourly.latest(paris) == at("2024-05-01 12:00:00")


def test_cron_ticks_in_utc_and_aliases_read_as_cron() -> None:
    nightly = Timing(cron=cron_text("0  2 * * *"))
    assert str(nightly) == "cron 0 2 * * *"
    assert nightly.latest(at("2024-05-01 01:59:00")) == at("2024-04-30 02:00:00")
    assert nightly.latest(at("2024-05-01 02:00:00")) == at("2024-05-01 02:00:00")
    assert nightly.following(at("2024-05-01 02:00:00")) == at("2024-05-02 02:00:00")
    hourly = Timing(cron=cron_text("@hourly"))
    assert hourly.latest(at("2024-05-01 10:30:00")) == at("2024-05-01 10:00:00")
    assert Timing.parse(str(hourly)) == hourly
    assert Timing.parse("every 90m") == Timing(every="90m")


@pytest.mark.parametrize(
    ("value", "written"), [("90s", "90s"), (5400, "90m"), ("1h", "1h"), ("2w", "14d")]
)
def test_durations_are_written_in_their_largest_whole_unit(value: Any, written: str) -> None:
    assert every_text(value) == written


def test_a_tick_is_the_same_computed_anywhere() -> None:
    timing = Timing(every=every_text("1s"))
    now = at("2024-05-01 10:00:00.75")
    assert timing.latest(now) == at("2024-05-01 10:00:00")
    assert timing.following(now) - timing.latest(now) == timedelta(seconds=1)


def spec(**sections: Any) -> dict[str, Any]:
    return {
        "name": "churn",
        "sources": {"customers": {"format": "csv", "path": "c.csv"}},
        "features": {"customers_v1": {"from": ["customers"]}},
        **sections,
    }


def test_a_spec_asks_for_its_source_and_score_schedules() -> None:
    data = spec(score={"source": "customers", "on": "schedule", "every": "1h"})
    data["sources"]["customers"]["schedule"] = "0 2 * * *"
    since = at("2024-05-01 00:00:00")
    ingest, score = spec_schedules(parse_spec(data), "sha256:x", since)
    assert (ingest.key, ingest.action, ingest.target, ingest.timing) == (
        "churn/ingest/customers",
        "ingest",
        "customers",
        "cron 0 2 * * *",
    )
    assert (score.key, score.target, score.timing, score.model) == (
        "churn/score",
        "source:customers",
        "every 1h",
        "churn",
    )
    assert {ingest.since, score.since} == {since} and ingest.spec_digest == "sha256:x"
    on_batch = parse_spec(spec(score={"feature_set": "customers_v1"}))
    assert spec_schedules(on_batch, "sha256:y", since) == []


@pytest.mark.parametrize(
    ("score", "message"),
    [
        ({"on": "schedule"}, "score: on: schedule needs one of every: DURATION"),
        ({"on": "schedule", "every": "1h", "cron": "0 2 * * *"}, "both are given"),
        ({"every": "1h"}, "score: every applies only with on: schedule"),
        ({"on": "manual", "cron": "0 2 * * *"}, "cron applies only with on: schedule"),
        ({"on": "schedule", "every": "1.5s"}, "score.every: '1.5s' is not a whole number"),
        ({"on": "schedule", "every": "soon"}, "score.every: 'soon' is not a duration"),
        ({"on": "schedule", "cron": "0 25 * * *"}, "score.cron: '0 25 \\* \\* \\*' is not a cron"),
        ({"on": "schedule", "cron": "0 2 * *"}, "score.cron: .* needs five fields"),
        ({"on": "hourly"}, "score.on: 'hourly' is not one of new_batch, schedule, manual"),
    ],
)
def test_bad_score_timing_is_refused_naming_the_key(score: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(spec(score={"source": "customers", **score}))


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("every 1h", "sources.customers.schedule: 'every 1h' is not a cron expression"),
        ("* * * * * *", "needs five fields"),
        ("0 0 31 2 *", "bad day-of-month"),
        (7, "sources.customers.schedule: a cron expression is text"),
    ],
)
def test_a_bad_source_schedule_is_refused_naming_the_key(schedule: Any, message: str) -> None:
    data = spec()
    data["sources"]["customers"]["schedule"] = schedule
    with pytest.raises(SpecError, match=message):
        parse_spec(data)


def test_on_written_in_yaml_is_the_key_on_not_true() -> None:
    # YAML 1.1 reads a bare `on` key as the boolean true
    data = yaml.safe_load(
        "name: churn\n"
        "sources: {customers: {format: csv, path: c.csv}}\n"
        "score: {source: customers, on: schedule, cron: '@daily'}\n"
    )
    assert True in data["score"]
    score = parse_spec(data).score
    assert score is not None and (score.on, score.cron) == ("schedule", "@daily")
    timing = score.timing()
    assert timing is not None and timing.latest(at("2024-05-01 13:00:00")) == at("2024-05-01")
