"""The CLI's two consoles: results to stdout, errors to stderr."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

# Piped output (a log, CI, `| less`) is not cut at 80 columns: ids and tables stay whole.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)


@contextmanager
def quiet_unless_verbose(name: str) -> Iterator[None]:
    """Without -v, logger ``name`` says only errors while the block runs (the CLI's own
    display shows each failure; the logger's warnings would repeat them), then its level is
    put back as it was."""
    logger = logging.getLogger(name)
    level = logger.level
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
