"""Module-level task functions for the executor contract: picklable by reference, no state."""

from __future__ import annotations

import importlib
import os
import signal
import time
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ContractTaskError(ValueError):
    """Raised on purpose by ``fail``: the caller must see this very type and message."""


def add(a: int, b: int) -> int:
    return a + b


def echo(value: T) -> T:
    """Returns its argument: the value travels to the worker and back."""
    return value


def keywords(**kwargs: Any) -> dict[str, Any]:
    """Returns its keyword arguments, whatever their names (``key``, ``workers``, ``pure``…)."""
    return kwargs


def fail(message: str) -> None:
    raise ContractTaskError(message)


def sleep_then_return(seconds: float, value: T) -> T:
    time.sleep(seconds)
    return value


def process_id(after: float = 0.0) -> int:
    """The worker's process id, after sleeping ``after`` seconds."""
    time.sleep(after)
    return os.getpid()


def kill_own_process() -> None:
    """Dies the hard way, as an out-of-memory kill would: no cleanup, no exception."""
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # SIGKILL is asynchronous; never return a value meanwhile


def square_slowest_first(n: int) -> int:
    """``n * n``, later for small ``n`` (up to 0.2 s), so completion order differs from input."""
    time.sleep(max(0, 10 - n) * 0.02)
    return n * n


def spin(seconds: float, started: str = "") -> int:
    """Keeps a CPU busy in Python for ``seconds`` (as training does), then its loop count.

    Given ``started``, a file of that path is created first, to say the task is running.
    """
    if started:
        Path(started).touch()
    loops, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        loops += 1
    return loops


def imported_attribute(module: str, name: str) -> Any:
    """``module.name`` as this worker process sees it (importing ``module`` if it has not)."""
    return getattr(importlib.import_module(module), name)
