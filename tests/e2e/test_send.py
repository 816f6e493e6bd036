"""``gristmill send`` takes records only for stream sources, and only records that fit them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gristmill.config.settings import load_settings
from gristmill.core.events import RECORDS_APPENDED
from gristmill.runtime.wiring import open_services
from gristmill.testing.cli import run_cli_here

SPEC = """\
name: shop
sources:
  orders: {format: csv, path: data/orders.csv}
  clicks:
    format: jsonl
    path: data/clicks.jsonl
    stream: true
    columns: {user: int64, page: string, at: timestamp}
  views: {format: jsonl, path: data/views.jsonl, stream: true}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.yaml").write_text(SPEC)
    (tmp_path / "files.yaml").write_text(
        "name: files\nsources:\n  orders: {format: csv, path: data/orders.csv}\n"
    )
    return tmp_path


def send(folder: Path, *args: str, **fixtures: Any) -> tuple[int, str, str]:
    code, out, err = run_cli_here(
        "--home", str(folder / ".gristmill"), "send", *args, cwd=folder, **fixtures
    )
    return code, out, " ".join(err.split())  # the message unwrapped


def published(folder: Path) -> list[dict[str, Any]]:
    """Every record published on the bus so far."""

    async def go() -> list[dict[str, Any]]:
        settings = load_settings(None, {"home": str(folder / ".gristmill")})
        async with open_services(settings) as services:
            deliveries = await services.bus.consume(
                "test-reader", RECORDS_APPENDED, "t", max_events=100, wait=0.2
            )
            return [r for d in deliveries for r in d.event.payload["records"]]

    return asyncio.run(go())


def write(folder: Path, *lines: str) -> str:
    (folder / "records.jsonl").write_text("".join(line + "\n" for line in lines))
    return "records.jsonl"


GOOD = '{"user": 1, "page": "/", "at": "2024-05-01T12:00:00"}'


@pytest.mark.parametrize(
    ("spec", "accepting"),
    [
        ("pipeline.yaml", "of its sources, 'clicks' and 'views' take records"),
        ("files.yaml", "none of its sources takes records"),
    ],
)
def test_a_file_source_is_refused_naming_the_sources_that_take_records(
    folder: Path, spec: str, accepting: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # Before: "published 1 record(s) in 1 message(s) to 'orders'".
    records = write(folder, '{"order": 1}')
    code, out, err = send(
        folder, "orders", records, "--spec", spec, **locals_of(monkeypatch, capsys)
    )
    assert code == 2 and out == "", err
    assert f"error: source 'orders' of {spec} is a csv source, not a stream" in err
    assert accepting in err and "add `stream: true` under sources.orders" in err
    assert published(folder) == []


def test_a_recorded_spec_refuses_a_file_source_too(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fixtures = locals_of(monkeypatch, capsys)
    records = write(folder, GOOD)
    assert send(folder, "clicks", records, "--spec", "pipeline.yaml", **fixtures)[0] == 0
    # orders is named by the recorded spec, so it is known, but it is no stream
    code, _, err = send(folder, "orders", write(folder, '{"order": 1}'), **fixtures)
    assert code == 2
    assert "source 'orders' of the recorded spec of pipeline 'shop' is a csv source" in err
    assert [r.get("order") for r in published(folder)] == [None]  # only the clicks record


@pytest.mark.parametrize(
    ("lines", "where", "why"),
    [
        (
            [GOOD, "", '{"user": "ann", "page": "/a", "at": "2024-05-01T12:01:00"}'],
            "line 3 (record 2), field 'user': 'ann' is not a valid int64",
            "declares 'user' as int64",
        ),
        (
            [GOOD, GOOD, '{"user": 3, "at": "2024-05-01T12:01:00"}', '{"user": 2.5}'],
            "line 3 (record 3), field 'page': the record has no field 'page'",
            "declares 'page' as string (2 of 4 records do not fit)",
        ),
        (
            ['{"user": 1, "page": "/", "at": "yesterday"}'],
            "line 1 (record 1), field 'at': 'yesterday' is not a valid timestamp",
            "declares 'at' as timestamp",
        ),
    ],
)
def test_records_that_do_not_fit_the_declared_columns_are_refused_before_any_is_sent(
    folder: Path,
    lines: list[str],
    where: str,
    why: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    records = write(folder, *lines)
    code, out, err = send(
        folder, "clicks", records, "--spec", "pipeline.yaml", **locals_of(monkeypatch, capsys)
    )
    assert code == 1 and out == "", err
    assert f"error: {records}, {where}; sources.clicks.columns in pipeline.yaml {why}" in err
    assert err.endswith("nothing was sent")
    assert published(folder) == []


def test_records_that_fit_are_sent_and_undeclared_fields_and_nulls_pass(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fixtures = locals_of(monkeypatch, capsys)
    lines = [GOOD, '{"user": 2, "page": null, "at": null, "agent": "curl"}']
    code, out, err = send(
        folder, "clicks", write(folder, *lines), "--spec", "pipeline.yaml", **fixtures
    )
    assert code == 0, err
    assert "published 2 record(s)" in out
    # a stream that declares no columns takes any records; the recorded spec is used
    code, out, err = send(folder, "views", write(folder, '{"anything": [1, 2]}'), **fixtures)
    assert code == 0, err
    assert [r.get("agent") for r in published(folder)] == [None, "curl", None]


def locals_of(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> dict[str, Any]:
    return {"monkeypatch": monkeypatch, "capsys": capsys}
