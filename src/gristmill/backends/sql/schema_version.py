"""Which revision the metadata tables should be at: the newest migration script, read from
the scripts' text, and the table that records the revision a database is at.

Imports neither SQLAlchemy nor Alembic, so a reader that checks a database's revision
(``backends.sqlite.metadata_reader``, ADR 28) loads neither.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

# Own version table, so another Alembic-managed app in the same schema does not collide.
VERSION_TABLE = "gristmill_metadata_version"
VERSIONS = Path(__file__).parent / "migrations" / "versions"
_ASSIGNED = r"^{name}\s*(?::[^=\n]*)?=\s*(?:None|[\"'](\w+)[\"'])\s*$"


@functools.cache
def head_revision() -> str | None:
    """The newest revision of the migration scripts (the one no other script revises), read
    from their text as Alembic reads their ``revision`` and ``down_revision``; ``None``
    unless there is exactly one."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in VERSIONS.glob("v*.py"):
        text = path.read_text(encoding="utf-8")
        revision = re.search(_ASSIGNED.format(name="revision"), text, re.MULTILINE)
        down = re.search(_ASSIGNED.format(name="down_revision"), text, re.MULTILINE)
        if revision is None or revision.group(1) is None or down is None:
            return None  # a form this reading does not know: let Alembic decide
        revisions.add(revision.group(1))
        if down.group(1) is not None:
            revised.add(down.group(1))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None
