"""The inline executor: runs each task in the caller's thread at submit, for tests and debugging."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from gristmill.errors import BackendError
from gristmill.execution.port import ExecutorCapabilities, Task

T = TypeVar("T")


class CompletedTask(Generic[T]):
    """A task that has run already: it holds the value or the exception its function gave."""

    __slots__ = ("_error", "_value")

    def __init__(self, value: T | None = None, error: Exception | None = None) -> None:
        self._value = value
        self._error = error

    def result(self, timeout: float | None = None) -> T:
        """The value, or the function's exception raised again; ``timeout`` is never reached."""
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # None only when T admits it

    def done(self) -> bool:
        return True


class InlineExecutor:
    """Runs ``fn`` at ``submit`` in the calling thread; one task at a time, no pickling.

    A task that crashes the process crashes the caller: use it where a debugger or a plain
    traceback matters more than isolation. ``open`` and ``close`` only mark the state, so
    code that forgets them fails here as it would on the process-backed executors.
    """

    capabilities = ExecutorCapabilities(workers=1, separate_processes=False)

    def __init__(self) -> None:
        self._open = False

    def __repr__(self) -> str:
        return "InlineExecutor()"

    def __enter__(self) -> InlineExecutor:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> CompletedTask[T]:
        if not self._open:
            raise BackendError(f"{self!r} is not open; call open() first")
        try:
            return CompletedTask(fn(*args, **kwargs))
        except Exception as exc:  # handed to the caller through result(), as a pool would
            return CompletedTask(error=exc)

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[Task[T]]:
        return [self.submit(fn, item) for item in items]
