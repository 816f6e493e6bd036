"""The spec and dead-letter stores' part of the metadata contract (``stores.specs``,
``stores.dead_letters``).

``MetadataStoreContract`` inherits it, so a backend passes it by passing that suite; it
reaches the stores as ``store.specs`` and ``store.dead_letters``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta, timezone

import pytest

from gristmill.errors import NotFoundError
from gristmill.stores.dead_letters import DeadLetter
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.specs import StoredSpec
from gristmill.testing.metadata_records import PAYLOAD, assert_utc, at, run_together


def make_spec(digest: str, seconds: float = 0, **changes: object) -> StoredSpec:
    spec = StoredSpec(
        digest=digest,
        pipeline="churn",
        body={"name": "churn", "sources": {"customers": {"format": "csv"}}, **PAYLOAD},
        created_at=at(seconds),
        sources=["customers", "orders"],
        folder="/srv/specs/churn",
    )
    return replace(spec, **changes)  # type: ignore[arg-type]


def make_letter(letter_id: str, seconds: float = 0) -> DeadLetter:
    original = {"id": "ev-1", "type": "raw.ingested", "key": "customers", "payload": PAYLOAD}
    return DeadLetter(letter_id, "preparation", "raw.ingested", 5, "boom", original, at(seconds))


class SpecStoreContract:
    """The semantics of ``SpecStore`` and ``DeadLetterStore`` on a ``MetadataStore``."""

    __test__ = False

    # -- specs ---------------------------------------------------------------------------

    def test_spec_round_trips_exactly_in_utc(self, store: MetadataStore) -> None:
        paris = timezone(timedelta(hours=1))
        spec = make_spec("sha256:a", created_at=at(0).astimezone(paris))
        assert store.specs.add_spec(spec) == spec
        got = store.specs.get_spec("sha256:a")
        assert got == spec
        assert_utc(got.created_at)

    def test_add_spec_keeps_the_first_record_of_a_digest(self, store: MetadataStore) -> None:
        first = make_spec("sha256:a")
        store.specs.add_spec(first)
        again = store.specs.add_spec(make_spec("sha256:a", 60, folder="/elsewhere"))
        assert again == first == store.specs.get_spec("sha256:a")
        assert store.specs.specs_naming("customers") == [first]

    def test_racing_writers_of_one_spec_get_one(self, store: MetadataStore) -> None:
        results = run_together(4, lambda i: store.specs.add_spec(make_spec("sha256:a", i)))
        assert all(not isinstance(r, BaseException) for r in results), results
        assert len({r.created_at for r in results}) == 1

    def test_missing_spec_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError, match=r"no pipeline spec with digest 'sha256:x'"):
            store.specs.get_spec("sha256:x")
        assert store.specs.find_spec("sha256:x") is None

    def test_specs_naming_a_source_newest_first(self, store: MetadataStore) -> None:
        store.specs.add_spec(make_spec("sha256:a", 0))
        store.specs.add_spec(make_spec("sha256:b", 10, sources=["orders"]))
        store.specs.add_spec(make_spec("sha256:c", 20, sources=["clicks"]))
        assert [s.digest for s in store.specs.specs_naming("orders")] == ["sha256:b", "sha256:a"]
        assert [s.digest for s in store.specs.specs_naming("orders", limit=1)] == ["sha256:b"]
        assert store.specs.specs_naming("nothing") == []

    # -- dead letters --------------------------------------------------------------------

    def test_dead_letters_are_kept_once_listed_newest_first(self, store: MetadataStore) -> None:
        store.dead_letters.add_letter(make_letter("dl-1", 0))
        store.dead_letters.add_letter(make_letter("dl-2", 10))
        store.dead_letters.add_letter(make_letter("dl-1", 0))
        assert [d.letter_id for d in store.dead_letters.list_letters()] == ["dl-2", "dl-1"]
        assert store.dead_letters.get_letter("dl-1") == make_letter("dl-1", 0)
        assert store.dead_letters.list_letters(limit=1)[0].letter_id == "dl-2"

    def test_a_replayed_letter_says_by_which_event(self, store: MetadataStore) -> None:
        store.dead_letters.add_letter(make_letter("dl-1"))
        replayed = store.dead_letters.mark_replayed("dl-1", "ev-2", at(30))
        assert (replayed.replayed_as, replayed.replayed_at) == ("ev-2", at(30))
        assert store.dead_letters.get_letter("dl-1") == replayed
        store.dead_letters.add_letter(make_letter("dl-1"))  # collected again: kept as it is
        assert store.dead_letters.get_letter("dl-1") == replayed

    def test_missing_dead_letter_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError, match=r"no dead letter with id 'x'.*dead-letters ls"):
            store.dead_letters.get_letter("x")
        with pytest.raises(NotFoundError):
            store.dead_letters.mark_replayed("x", "ev", at(0))
