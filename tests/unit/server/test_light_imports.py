"""A server worker starts light: what a spawned worker imports before it answers uvicorn's
health check, and what building the app imports, leave out pandas, scikit-learn, the
feature pipeline and the CLI (seconds of CPU on a loaded machine; see server.supervisor).
They are imported when a version that needs them is loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "sklearn", "scipy", "skops", "gristmill.features.prepare", "gristmill.cli")


def _imported_by(statement: str) -> list[str]:
    """The HEAVY modules that ``statement`` imports, run in a fresh interpreter."""
    probe = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    return [m for m in HEAVY if m in loaded]


@pytest.mark.parametrize(
    "statement",
    [
        # what a spawned worker runs as __mp_main__ before its health-check thread starts
        "import runpy; runpy.run_module('gristmill.server.supervisor', run_name='__mp_main__')",
        # what it imports to build its app (its health-check thread answers meanwhile)
        "import gristmill.server.app",
    ],
)
def test_a_worker_imports_no_heavy_library_to_start(statement: str) -> None:
    assert _imported_by(statement) == []
