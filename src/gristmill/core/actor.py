"""Who is acting, for audit fields (``actor``, ``changed_by``): its own module so that the
CLI's verbs that only need this do not import the pipeline runner."""

from __future__ import annotations

import getpass
import os


def current_actor() -> str:
    """Who is acting: ``$GRISTMILL_ACTOR``, else the operating-system user."""
    return os.environ.get("GRISTMILL_ACTOR") or getpass.getuser()
