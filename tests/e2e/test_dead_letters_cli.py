"""``gristmill dead-letters show | replay`` take a dead letter's id or its unique start."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.config.settings import load_settings
from gristmill.core.events import RAW_INGESTED, Event
from gristmill.runtime.wiring import open_services
from gristmill.stores.dead_letters import DeadLetter
from gristmill.testing.cli import run_cli_here

# Two share their first nine characters; the third is alone from its second. The first is
# the id the help's examples show.
LETTERS = ("01J9Z3K4TW8Q2N6M5R7V0XBCDE", "01J9Z3K4TXAAAAAAAAAAAAAAAA", "02ABCDEFGHJKMNPQRSTVWXYZ00")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Embedded stores holding three dead letters of ``raw.ingested`` events."""
    home = tmp_path / ".gristmill"
    home.mkdir()
    with SqlMetadataStore(f"sqlite:///{home / 'metadata.db'}") as store:
        for i, letter_id in enumerate(LETTERS):
            event = Event(type=RAW_INGESTED, key=f"src{i}", payload={"source": f"src{i}"})
            store.dead_letters.add_letter(
                DeadLetter(
                    letter_id=letter_id,
                    group="preparation",
                    event_type=RAW_INGESTED,
                    attempts=3,
                    error=f"boom {i}",
                    event=event.model_dump(mode="json"),
                    dead_lettered_at=datetime(2024, 5, 1, 12, i, tzinfo=UTC),
                )
            )
    return home


def gm(home: Path, *args: str, **fixtures: Any) -> tuple[int, str, str]:
    return run_cli_here("--home", str(home), "dead-letters", *args, cwd=home.parent, **fixtures)


@pytest.mark.parametrize(("start", "full"), [("01j9z3k4tw", LETTERS[0]), ("02", LETTERS[2])])
def test_show_finds_a_letter_by_a_unique_start(
    home: Path, start: str, full: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    code, out, err = gm(home, "show", start, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert f"dead letter {full}" in out and "boom" in out


def test_an_ambiguous_start_lists_the_letters_it_starts(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    for verb in ("show", "replay"):
        code, out, err = gm(home, verb, "01J9Z3K4T", monkeypatch=monkeypatch, capsys=capsys)
        assert code == 1 and out == ""
        assert err.strip() == (
            f"error: '01J9Z3K4T' is the start of 2 dead letter ids: {LETTERS[0]}, "
            f"{LETTERS[1]}; give more of it"
        )


def test_a_start_matching_nothing_names_the_newest_letters(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    for verb in ("show", "replay"):
        code, _, err = gm(home, verb, "01ZZ", monkeypatch=monkeypatch, capsys=capsys)
        assert code == 1 and "Traceback" not in err
        assert "no dead letter with id '01ZZ'; list them with `gristmill dead-letters ls`" in err
        assert f"the newest: {LETTERS[2]}, {LETTERS[1]}, {LETTERS[0]}" in " ".join(err.split())


def test_replay_takes_a_unique_start_and_publishes_that_letter(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    code, out, err = gm(home, "replay", "01j9z3k4tx", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "replayed raw.ingested as event" in out
    with SqlMetadataStore(f"sqlite:///{home / 'metadata.db'}") as store:
        replayed = [
            letter.letter_id for letter in store.dead_letters.list_letters() if letter.replayed_as
        ]
    assert replayed == [LETTERS[1]]

    async def published() -> Event:
        async with open_services(load_settings(None, {"home": home})) as services:
            (delivery,) = await services.bus.consume("preparation", RAW_INGESTED, "c1", wait=5)
            await services.bus.ack(delivery)
            return delivery.event

    assert asyncio.run(published()).key == "src1"


def test_every_verb_shows_examples_in_its_help(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    for verb in ((), ("ls",), ("show",), ("replay",)):
        code, out, _ = gm(home, *verb, "--help", monkeypatch=monkeypatch, capsys=capsys)
        assert code == 0
        lines = [line.strip() for line in out.splitlines()]
        examples = [line.split() for line in lines if line.startswith("gristmill dead-letters")]
        assert examples, out
        if verb:
            assert all(words[2] == verb[0] for words in examples), out
        if verb in (("show",), ("replay",)):
            assert [words[3] for words in examples[:2]] == [LETTERS[0], "01J9Z3"]
