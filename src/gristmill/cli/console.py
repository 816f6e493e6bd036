"""The CLI's two consoles: results to stdout, errors to stderr.

Neither reads console markup: what they print (paths, error messages, YAML excerpts,
values from a spec) is shown as it is, ``[`` and all. Styled words are given as styles
(``console.print(text, style="dim")``) or as a ``Text`` built by ``styled``. On a
terminal, a line printed with ``soft_wrap=True`` wraps at word boundaries (a word wider
than the terminal is folded, never dropped); piped (a log, CI, ``| grep``) it stays one line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.text import Text

# Piped output (a log, CI, `| less`) is not cut at 80 columns: ids and tables stay whole.
_WIDTH = None if sys.stdout.isatty() else 160


class PlainConsole(Console):
    """A console that reads no markup and, on a terminal, wraps long lines between words."""

    def __init__(self, **options: Any) -> None:
        super().__init__(markup=False, **options)

    def print(self, *objects: Any, soft_wrap: bool | None = None, **options: Any) -> None:
        if soft_wrap and self.is_terminal:
            # the terminal would break the line wherever its width ends, mid-word
            soft_wrap, options = False, {"overflow": "fold", **options}
        super().print(*objects, soft_wrap=soft_wrap, **options)


console = PlainConsole(width=_WIDTH)
err_console = PlainConsole(stderr=True, width=_WIDTH)


def styled(*parts: str | tuple[str, str]) -> Text:
    """One line of text, some parts styled: ``styled(("error:", "bold red"), " ", message)``;
    nothing in any part is read as markup."""
    return Text.assemble(*parts)


def print_error(message: str) -> None:
    """``error: MESSAGE`` on stderr, the message exactly as given."""
    err_console.print(styled(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)


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
