"""How ``gristmill deployments --history`` prints the audit entries of policy changes: who
changed which model's traffic policy, to what, from what, when and why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from gristmill.stores.metadata import AuditEntry

POLICY_SET = "model.policy_set"
"""The audit action of a policy change (``ModelRegistry.set_policy`` writes it)."""
SUBJECT_PREFIX = "model:"


def routing_text(routing: dict[str, Any] | None) -> str:
    """``primary 2 (90%), canary 3 (10%), shadow 4, fallback 1`` (``-`` for no policy)."""
    if not routing:
        return "-"
    share = float(routing.get("canary_share") or 0.0)
    canary = routing.get("canary")
    parts = [f"primary {routing.get('primary')}" + (f" ({1 - share:.0%})" if canary else "")]
    if canary is not None:
        parts.append(f"canary {canary} ({share:.0%})")
    if routing.get("shadow"):
        parts.append("shadow " + " ".join(map(str, routing["shadow"])))
    if routing.get("fallback"):
        parts.append("fallback " + " → ".join(map(str, routing["fallback"])))
    rule = [
        f"{routing[key]:g} {unit}"
        for key, unit in (("promote_after_requests", "requests"), ("promote_after_minutes", "min"))
        if routing.get(key) is not None
    ]
    if rule:
        parts.append("promoted after " + " and ".join(rule))
    if routing.get("rollback"):
        from gristmill.stores.rollback_rules import rule_of

        parts.append(f"rollback rule {rule_of(routing['rollback']).describe()}")
    return ", ".join(parts)


def history_rows(entries: list[AuditEntry]) -> list[dict[str, Any]]:
    """Each change as JSON values: when, by whom, which model and revision, to and from
    what routing, and why."""
    return [
        {
            "at": entry.at.isoformat(),
            "by": entry.actor,
            "model": entry.subject.removeprefix(SUBJECT_PREFIX),
            "revision": entry.details.get("revision"),
            "policy": entry.details.get("policy"),
            "before": entry.details.get("before"),
            "reason": entry.details.get("reason") or "",
        }
        for entry in entries
    ]


def history_table(entries: list[AuditEntry], *, one_model: bool) -> Table:
    """The changes, newest first (as given); the model column only for several models."""
    table = Table()
    columns = ["when (UTC)", *([] if one_model else ["model"]), "rev", "by", "policy", "was"]
    for column in (*columns, "why"):
        table.add_column(column, no_wrap=column in ("when (UTC)", "model", "rev", "by"))
    for row in history_rows(entries):
        model = [] if one_model else [row["model"]]
        table.add_row(
            row["at"][:19].replace("T", " "),
            *model,
            str(row["revision"] if row["revision"] is not None else "-"),
            row["by"],
            routing_text(row["policy"]),
            routing_text(row["before"]),
            row["reason"] or "-",
        )
    return table
