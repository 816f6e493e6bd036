"""The report recording a version's drift reference, as readers see it without the data
libraries: its kind, the columns the reference does not monitor and why."""

from __future__ import annotations

from gristmill.stores.metadata import MetadataStore

REFERENCE_KIND = "drift_reference"
IDENTIFIER = "an identifier"
"""How the reason a column is not monitored starts when it is an identifier."""


def skipped_columns(metadata: MetadataStore, model: str, version: int) -> dict[str, str]:
    """The inputs ``model``/``version``'s newest drift reference does not monitor, and why
    (empty when it has none)."""
    reports = metadata.reports.list_reports(
        subject=f"{model}/{version}", kind=REFERENCE_KIND, limit=1
    )
    return dict(reports[0].body.get("skipped") or {}) if reports else {}
