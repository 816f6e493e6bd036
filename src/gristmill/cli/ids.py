"""Ids a person types: an exact id, or the unique start of one, of any kind ``show`` knows.

Content ids carry their kind in a prefix (``fs_`` feature set, ``rep_``/``lb_`` report,
``mc_`` candidate, ``sp_`` split); runs and batches are ULIDs. A start is matched against
the newest ``PREFIX_SCAN`` ids of each listing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gristmill.errors import NotFoundError
from gristmill.stores.metadata import MetadataStore, Run

PREFIX_SCAN = 1000  # how many of the newest ids of each listing a prefix is matched against


@dataclass(frozen=True)
class _IdKind:
    """A kind of object ``show`` finds by its id, or by the unique start of one."""

    name: str
    get: Callable[[str], Any]
    recent: Callable[[], Iterable[str]]
    """The newest ids (``PREFIX_SCAN`` of each listing) a start is matched against."""
    listing: str


def _id_kinds(store: MetadataStore) -> dict[str, _IdKind]:
    """The kinds by id prefix; ``""`` (runs and batches, whose ids are ULIDs) comes last."""

    def splits() -> set[str]:  # no listing: the splits of candidates and of feature sets
        ids = {c.split_id for c in store.candidates.list_candidates(limit=PREFIX_SCAN)}
        for f in store.feature_sets.list_feature_sets(limit=PREFIX_SCAN):
            ids.update(e.child_id for e in store.lineage.children(f.feature_set_id))
        return ids

    sets = store.feature_sets
    reports = _IdKind(
        "report",
        store.reports.get_report,
        lambda: [r.report_id for r in store.reports.list_reports(limit=PREFIX_SCAN)],
        "`gristmill ls reports`",
    )
    return {
        "fs_": _IdKind(
            "feature set",
            sets.get_feature_set,
            lambda: [f.feature_set_id for f in sets.list_feature_sets(limit=PREFIX_SCAN)],
            "`gristmill ls feature-sets`",
        ),
        "rep_": reports,
        "lb_": reports,
        "mc_": _IdKind(
            "candidate",
            store.candidates.get_candidate,
            lambda: [c.candidate_id for c in store.candidates.list_candidates(limit=PREFIX_SCAN)],
            "`gristmill ls candidates`",
        ),
        "sp_": _IdKind(
            "split",
            store.splits.get_split,
            splits,
            "`gristmill ls candidates --json` (split_id) or `gristmill lineage <feature set>`",
        ),
        "": _IdKind(
            "run or batch",
            lambda full: store.runs.find_run(full) or store.batches.get_batch(full),
            lambda: [
                *(r.run_id for r in store.runs.list_runs(limit=PREFIX_SCAN)),
                *(b.batch_id for b in store.batches.list_batches(limit=PREFIX_SCAN)),
            ],
            "`gristmill ls runs` or `gristmill ls batches`",
        ),
    }


def resolve_id(store: MetadataStore, object_id: str) -> tuple[str, str, Any]:
    """``(kind, full id, record)`` of the object ``object_id`` names or uniquely starts."""
    prefix, kind = next((p, k) for p, k in _id_kinds(store).items() if object_id.startswith(p))
    try:
        full, found = object_id, kind.get(object_id)
    except NotFoundError:
        full = _complete(object_id.lower() if prefix else object_id.upper(), kind)
        found = kind.get(full)
    name = kind.name if prefix else "run" if isinstance(found, Run) else "batch"
    return name, full, found


def _complete(start: str, kind: _IdKind) -> str:
    """The one recent id of ``kind`` beginning with ``start``; ``NotFoundError`` listing the
    matches when several do, or saying where the ids are listed when none does."""
    matches = sorted({i for i in kind.recent() if i.startswith(start)})
    if len(matches) == 1:
        return matches[0]
    if matches:
        more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
        raise NotFoundError(
            f"{start!r} is the start of {len(matches)} {kind.name} ids: "
            f"{', '.join(matches[:10])}{more}; give more of it"
        )
    raise NotFoundError(
        f"no {kind.name} id is or starts with {start!r}; find the ids with {kind.listing}"
    )
