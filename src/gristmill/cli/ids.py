"""Ids a person types: an exact id, or the unique start of one, of any kind ``show`` knows,
and of dead letters.

Content ids carry their kind in a prefix (``fs_`` feature set, ``rep_``/``lb_`` report,
``mc_`` candidate, ``sp_`` split); runs, batches and dead letters are ULIDs. A start is
matched against the newest ``PREFIX_SCAN`` ids of each listing. Content ids are lower-case
hex after their prefix and ULIDs upper-case, so a start is matched in either case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gristmill.errors import NotFoundError
from gristmill.stores.dead_letters import DeadLetter
from gristmill.stores.metadata import MetadataReader, MetadataStore, Run

PREFIX_SCAN = 1000  # how many of the newest ids of each listing a prefix is matched against
ULID_FIRST = "01234567"  # a ULID starts with its timestamp, whose first character is 0-7
NEWEST_SHOWN = 5  # ids a "no such id" message names, for kinds listed newest first


@dataclass(frozen=True)
class _IdKind:
    """A kind of object ``show`` finds by its id, or by the unique start of one."""

    name: str
    get: Callable[[str], Any]
    recent: Callable[[], Iterable[str]]
    """The newest ids (``PREFIX_SCAN`` of each listing) a start is matched against."""
    listing: str
    noun: str = ""
    """What a person calls the objects, when it says more than ``name`` (``leaderboard``)."""
    newest_first: bool = False
    """Whether ``recent`` is newest first, so a start matching nothing names the newest."""


def _id_kinds(store: MetadataReader) -> dict[str, _IdKind]:
    """The kinds by id prefix; ``""`` (runs and batches, whose ids are ULIDs) comes last."""

    def splits() -> set[str]:  # no listing: the splits of candidates and of feature sets
        ids = {c.split_id for c in store.candidates.list_candidates(limit=PREFIX_SCAN)}
        for f in store.feature_sets.list_feature_sets(limit=PREFIX_SCAN):
            ids.update(e.child_id for e in store.lineage.children(f.feature_set_id))
        return ids

    def reports() -> list[str]:
        return [r.report_id for r in store.reports.list_reports(limit=PREFIX_SCAN)]

    sets = store.feature_sets
    listed = "`gristmill ls reports`"
    return {
        "fs_": _IdKind(
            "feature set",
            sets.get_feature_set,
            lambda: [f.feature_set_id for f in sets.list_feature_sets(limit=PREFIX_SCAN)],
            "`gristmill ls feature-sets`",
        ),
        "rep_": _IdKind("report", store.reports.get_report, reports, listed, "validation report"),
        "lb_": _IdKind("report", store.reports.get_report, reports, listed, "leaderboard"),
        "mc_": _IdKind(
            "candidate",
            store.candidates.get_candidate,
            lambda: [c.candidate_id for c in store.candidates.list_candidates(limit=PREFIX_SCAN)],
            "`gristmill ls candidates`",
            "model candidate",
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


def resolve_id(store: MetadataReader, object_id: str) -> tuple[str, str, Any]:
    """``(kind, full id, record)`` of the object ``object_id`` names or uniquely starts."""
    kinds = _id_kinds(store)
    typed = object_id.lower()
    prefix = next(p for p in kinds if typed.startswith(p))
    _refuse_bare_prefix(object_id, kinds)
    if prefix or object_id[:1] in ULID_FIRST:
        full, found = _lookup(object_id, prefix, kinds[prefix])
    else:  # not the start of a ULID, so only an exact id (say, a run of another tool)
        try:
            full, found = object_id, kinds[prefix].get(object_id)
        except NotFoundError:
            raise NotFoundError(_not_an_id(object_id, kinds)) from None
    name = kinds[prefix].name if prefix else "run" if isinstance(found, Run) else "batch"
    return name, full, found


def resolve_prefixed(store: MetadataReader, prefix: str, object_id: str) -> tuple[str, Any]:
    """``(full id, record)`` of the one object of ``prefix``'s kind (``mc_``, ``fs_``) whose
    id ``object_id`` is or uniquely starts; ``NotFoundError`` when it names none, several,
    or an id of another kind."""
    kinds = _id_kinds(store)
    kind = kinds[prefix]
    _refuse_bare_prefix(object_id, kinds)
    if not object_id.lower().startswith(prefix):
        raise NotFoundError(
            f"no {kind.name} with id {object_id!r}: {kind.noun or kind.name} ids start with "
            f"{prefix}; list them with {kind.listing}"
        )
    return _lookup(object_id, prefix, kind)


def resolve_dead_letter(store: MetadataStore, letter_id: str) -> tuple[str, DeadLetter]:
    """``(full id, letter)`` of the dead letter whose id ``letter_id`` is or uniquely starts;
    ``NotFoundError`` listing the matches when several do, or the newest when none does."""
    letters = store.dead_letters
    kind = _IdKind(
        "dead letter",
        letters.get_letter,
        lambda: [letter.letter_id for letter in letters.list_letters(limit=PREFIX_SCAN)],
        "`gristmill dead-letters ls`",
        newest_first=True,
    )
    found: DeadLetter = _lookup(letter_id, "", kind)[1]
    return found.letter_id, found


def _lookup(object_id: str, prefix: str, kind: _IdKind) -> tuple[str, Any]:
    try:
        return object_id, kind.get(object_id)
    except NotFoundError:
        full = _complete(object_id.lower() if prefix else object_id.upper(), kind, object_id)
        return full, kind.get(full)


def _refuse_bare_prefix(object_id: str, kinds: dict[str, _IdKind]) -> None:
    """``NotFoundError`` saying what ids of a kind look like, when ``object_id`` is only the
    prefix of that kind (``lb``, ``mc_``): a person who typed it does not know one yet."""
    typed = object_id.lower()
    for prefix, kind in kinds.items():
        if prefix and typed in (prefix, prefix.rstrip("_")):
            raise NotFoundError(
                f"{object_id!r} is only the prefix of {kind.noun or kind.name} ids "
                f"({prefix}…), not an id; give one, or a unique start of one such as "
                f"{prefix}3fa9; list them with {kind.listing}"
            )


def _not_an_id(object_id: str, kinds: dict[str, _IdKind]) -> str:
    """Why ``object_id`` (neither a ULID's start nor prefixed by a kind) names nothing."""
    typed = object_id.lower()
    for meant, kind in kinds.items():
        rest = typed.removeprefix(meant.rstrip("_")).lstrip("-_ ")
        if not meant or not typed.startswith(meant.rstrip("_")) or not _is_hex(rest):
            continue
        guess = meant + rest
        return (
            f"no id is or starts with {object_id!r}; {kind.noun or kind.name} ids start with "
            f"{meant} (did you mean {guess}?); list them with {kind.listing}"
        )
    known = ", ".join(f"{p}… ({k.noun or k.name})" for p, k in kinds.items() if p)
    return (
        f"no id is or starts with {object_id!r}: runs and batches have ids such as "
        f"01M8F62MRZACAVEHTA8B9TG6W0 (list them with `gristmill ls runs` or "
        f"`gristmill ls batches`); other ids start with their kind: {known}"
    )


def _complete(start: str, kind: _IdKind, typed: str) -> str:
    """The one recent id of ``kind`` beginning with ``start`` (``typed`` in the case the
    person typed it); ``NotFoundError`` listing the matches when several do, or saying where
    the ids are listed (and, for a kind listed newest first, the newest) when none does."""
    recent = list(kind.recent())
    matches = sorted({i for i in recent if i.startswith(start)})
    if len(matches) == 1:
        return matches[0]
    if matches:
        more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
        raise NotFoundError(
            f"{typed!r} is the start of {len(matches)} {kind.name} ids: "
            f"{', '.join(matches[:10])}{more}; give more of it"
        )
    newest = ""
    if kind.newest_first:
        shown = ", ".join(recent[:NEWEST_SHOWN]) + (" …" if len(recent) > NEWEST_SHOWN else "")
        newest = f"; the newest: {shown}" if recent else f"; there are no {kind.name}s yet"
    raise NotFoundError(
        f"no {kind.name} with id {typed!r}; list them with {kind.listing} "
        f"(no id starts with it either){newest}"
    )


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdef" for c in text)
