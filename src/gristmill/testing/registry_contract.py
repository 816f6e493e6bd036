"""The model registry's part of the metadata contract (``gristmill.stores.models.ModelRegistry``).

``ModelStoreContract`` inherits it (and ``MetadataStoreContract`` that one), so a backend
passes it by passing the metadata suite; it reaches the registry as ``store.registry``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from gristmill.errors import ConfigError, NotFoundError
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.models import ModelVersion
from gristmill.testing.metadata_records import PAYLOAD, assert_utc, make_candidate, run_together
from gristmill.testing.policy_contract import PolicyContract


def register(store: MetadataStore, model: str, *candidate_ids: str) -> list[ModelVersion]:
    """Register one candidate (built by ``make_candidate``) per id under ``model``, in order."""
    return [store.registry.register_version(model, make_candidate(c)) for c in candidate_ids]


class RegistryContract(PolicyContract):
    """The semantics of ``ModelRegistry`` on a ``MetadataStore`` (traffic policies in the
    inherited ``PolicyContract``)."""

    __test__ = False

    # -- versions ------------------------------------------------------------------------

    def test_versions_count_up_per_model_and_round_trip(self, store: MetadataStore) -> None:
        candidate = make_candidate(
            "c-1", artifact="sha256:bundle", metrics=PAYLOAD, task="regression"
        )
        first = store.registry.register_version("churn", candidate)
        second, other = (
            store.registry.register_version("churn", make_candidate("c-2")),
            store.registry.register_version("fraud", make_candidate("c-3")),
        )
        assert (first.version, second.version, other.version) == (1, 2, 1)
        assert (first.model, first.candidate_id, first.ref) == ("churn", "c-1", "churn/1")
        assert (first.artifact, first.task, first.metrics) == (
            "sha256:bundle",
            "regression",
            PAYLOAD,
        )
        assert_utc(first.created_at)
        assert store.registry.get_version("churn", 1) == first
        assert store.registry.get_version("fraud", 1) == other

    def test_a_candidate_registered_again_keeps_its_version(self, store: MetadataStore) -> None:
        candidate = make_candidate("c-1", metrics={"f1": 0.5})
        (first,) = register(store, "churn", "c-1")
        register(store, "churn", "c-2")
        again = store.registry.register_version("churn", replace(candidate, metrics={"f1": 0.9}))
        assert again == first
        assert [v.version for v in store.registry.list_versions("churn")] == [2, 1]
        assert store.registry.register_version("fraud", candidate).version == 1

    def test_missing_versions_are_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(
            NotFoundError, match=r"no version 3 of model 'churn'.*`gristmill models churn`"
        ):
            store.registry.get_version("churn", 3)
        assert store.registry.list_versions() == []
        assert store.registry.list_versions("churn") == []
        assert store.registry.find_alias("churn", "champion") is None
        assert store.registry.list_aliases("churn") == []

    def test_list_versions_newest_first_filtered_and_limited(self, store: MetadataStore) -> None:
        register(store, "churn", "c-1", "c-2", "c-3")
        register(store, "fraud", "c-4", "c-1")

        def keys(**filters: object) -> list[tuple[str, int]]:
            found = store.registry.list_versions(**filters)  # type: ignore[arg-type]
            return [(v.model, v.version) for v in found]

        assert keys() == [("fraud", 2), ("fraud", 1), ("churn", 3), ("churn", 2), ("churn", 1)]
        assert keys(model="churn", limit=2) == [("churn", 3), ("churn", 2)]
        assert keys(candidate_id="c-1") == [("fraud", 2), ("churn", 1)]
        assert keys(model="churn", candidate_id="c-1") == [("churn", 1)]
        assert keys(model="churn", candidate_id="c-9") == []
        assert keys(limit=1) == [("fraud", 2)]

    def test_racing_registrations_number_without_gaps(self, store: MetadataStore) -> None:
        writers = 8
        versions = run_together(writers, lambda i: register(store, "churn", f"c-{i}")[0])
        assert sorted(v.version for v in versions) == list(range(1, writers + 1))
        listed = {v.candidate_id: v for v in store.registry.list_versions("churn")}
        assert listed == {v.candidate_id: v for v in versions}

    def test_racing_registrations_of_one_candidate_get_one_version(
        self, store: MetadataStore
    ) -> None:
        register(store, "churn", "c-0")
        versions = run_together(6, lambda _: register(store, "churn", "c-1")[0])
        assert {v.version for v in versions} == {2}
        assert all(v == versions[0] for v in versions)
        assert len(store.registry.list_versions("churn")) == 2

    def test_registering_records_lineage_and_audit_once(self, store: MetadataStore) -> None:
        store.registry.register_version("churn", make_candidate("c-1"), actor="ann")
        (edge,) = store.lineage.parents("churn/1")
        assert (edge.parent_id, edge.parent_kind, edge.child_kind, edge.relation) == (
            "c-1",
            "candidate",
            "model_version",
            "registered_as",
        )
        (entry,) = store.audit.list_entries(subject="model:churn")
        assert (entry.actor, entry.action) == ("ann", "model.registered")
        assert entry.details == {"version": 1, "candidate_id": "c-1"}
        register(store, "churn", "c-1")
        assert len(store.audit.list_entries(subject="model:churn")) == 1
        assert len(store.lineage.children("c-1")) == 1

    @pytest.mark.parametrize("model", ["", "1churn", "my model", "churn/2", "churn@x"])
    def test_bad_model_names_are_refused(self, store: MetadataStore, model: str) -> None:
        with pytest.raises(ConfigError, match="model name"):
            store.registry.register_version(model, make_candidate("c-1"))
        assert store.registry.list_versions() == []

    # -- aliases -------------------------------------------------------------------------

    def test_aliases_point_move_and_resolve(self, store: MetadataStore) -> None:
        one, two = register(store, "churn", "c-1", "c-2")
        assert store.registry.set_alias("churn", "champion", 1) is None
        assert store.registry.find_alias("churn", "champion") == one
        assert store.registry.set_alias("churn", "champion", 2) == one
        assert store.registry.find_alias("churn", "champion") == two
        assert store.registry.set_alias("churn", "challenger", 1) is None
        aliases = store.registry.list_aliases("churn")
        assert [(a.model, a.alias, a.version) for a in aliases] == [
            ("churn", "challenger", 1),
            ("churn", "champion", 2),
        ]
        for alias in aliases:
            assert_utc(alias.updated_at)
        assert store.registry.find_alias("churn", "previous") is None
        assert store.registry.find_alias("fraud", "champion") is None

    def test_aliases_belong_to_one_model(self, store: MetadataStore) -> None:
        register(store, "churn", "c-1", "c-2")
        (fraud,) = register(store, "fraud", "c-3")
        store.registry.set_alias("churn", "champion", 2)
        store.registry.set_alias("fraud", "champion", 1)
        assert store.registry.find_alias("fraud", "champion") == fraud
        assert [a.version for a in store.registry.list_aliases("churn")] == [2]

    def test_a_promotion_keeps_the_version_it_replaces(self, store: MetadataStore) -> None:
        one, two, _ = register(store, "churn", "c-1", "c-2", "c-3")
        registry = store.registry
        assert registry.set_alias("churn", "champion", 1, previous="previous", actor="ann") is None
        assert registry.find_alias("churn", "previous") is None
        assert registry.set_alias("churn", "champion", 2, previous="previous") == one
        assert registry.find_alias("churn", "previous") == one
        assert registry.set_alias("churn", "champion", 3, previous="previous") == two
        assert registry.find_alias("churn", "previous") == two
        moves = [
            e.details
            for e in store.audit.list_entries(subject="model:churn")
            if e.action == "model.alias_set"
        ]
        assert {"alias": "champion", "version": 3, "from": 2} in moves
        assert {"alias": "previous", "version": 2, "from": 1} in moves
        assert {"alias": "champion", "version": 1, "from": None} in moves
        assert len(moves) == 5

    def test_setting_an_alias_where_it_points_changes_nothing(self, store: MetadataStore) -> None:
        (one,) = register(store, "churn", "c-1")
        store.registry.set_alias("churn", "champion", 1)
        aliases = store.registry.list_aliases("churn")
        entries = store.audit.list_entries(subject="model:churn")
        assert store.registry.set_alias("churn", "champion", 1, previous="previous") == one
        assert store.registry.list_aliases("churn") == aliases
        assert store.audit.list_entries(subject="model:churn") == entries

    def test_an_alias_to_a_missing_version_is_not_found(self, store: MetadataStore) -> None:
        register(store, "churn", "c-1")
        with pytest.raises(NotFoundError, match=r"churn@champion.*version 4.*gristmill models"):
            store.registry.set_alias("churn", "champion", 4)
        with pytest.raises(NotFoundError, match="fraud"):
            store.registry.set_alias("fraud", "champion", 1)
        assert store.registry.list_aliases("churn") == []

    @pytest.mark.parametrize("alias", ["", "1st", "champ ion", "x" * 65, "latest", "a@b", "v/1"])
    def test_bad_aliases_are_refused(self, store: MetadataStore, alias: str) -> None:
        register(store, "churn", "c-1")
        with pytest.raises(ConfigError, match=f"alias {alias!r}"):
            store.registry.set_alias("churn", alias, 1)
        with pytest.raises(ConfigError, match=f"alias {alias!r}"):
            store.registry.set_alias("churn", "champion", 1, previous=alias)
        assert store.registry.list_aliases("churn") == []

    def test_an_alias_cannot_keep_what_it_leaves(self, store: MetadataStore) -> None:
        register(store, "churn", "c-1")
        with pytest.raises(ConfigError, match="'champion' cannot also keep"):
            store.registry.set_alias("churn", "champion", 1, previous="champion")

    def test_remove_alias_says_what_it_removed(self, store: MetadataStore) -> None:
        (one,) = register(store, "churn", "c-1")
        store.registry.set_alias("churn", "champion", 1)
        assert store.registry.remove_alias("churn", "champion", actor="ann") == one
        assert store.registry.find_alias("churn", "champion") is None
        assert store.registry.remove_alias("churn", "champion") is None
        assert store.registry.get_version("churn", 1) == one
        latest = store.audit.list_entries(subject="model:churn", limit=1)[0]
        assert (latest.actor, latest.action) == ("ann", "model.alias_removed")
        assert latest.details == {"alias": "champion", "version": 1}

    def test_racing_promotions_form_one_chain(self, store: MetadataStore) -> None:
        # Each promotion must see the champion the one before it left, or a fallback is lost.
        count = 6
        register(store, "churn", *(f"c-{i}" for i in range(1, count + 1)))
        replaced = run_together(
            count,
            lambda i: store.registry.set_alias("churn", "champion", i + 1, previous="previous"),
        )
        champion = store.registry.find_alias("churn", "champion")
        previous = store.registry.find_alias("churn", "previous")
        assert champion is not None and previous is not None
        assert replaced.count(None) == 1
        assert sorted(v.version for v in replaced if v is not None) == sorted(
            set(range(1, count + 1)) - {champion.version}
        )
        assert replaced[champion.version - 1] == previous
