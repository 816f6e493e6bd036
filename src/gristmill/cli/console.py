"""The CLI's two consoles: results to stdout, errors to stderr."""

from __future__ import annotations

import sys

from rich.console import Console

# Piped output (a log, CI, `| less`) is not cut at 80 columns: ids and tables stay whole.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)
