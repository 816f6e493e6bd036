"""The Executor port: where compute runs (training candidates, HPO trials, partitions).

Semantics every backend guarantees (proved by ``gristmill.testing.executor_contract``):

* ``submit(fn, *args, **kwargs)`` schedules ``fn(*args, **kwargs)`` and returns a ``Task``
  at once; ``Task.result(timeout)`` returns its value or raises the exception ``fn``
  raised (the original type, with its message), or ``TimeoutError``.
* ``fn`` and its arguments must be picklable (module-level functions, plain data): the
  ``local`` and ``dask`` backends run them in other processes. ``inline`` runs them in
  the calling thread at ``submit`` time, for tests and debugging.
* ``map(fn, items)`` is ``[submit(fn, item) for item in items]``, results in input order.
* Tasks run concurrently up to ``capabilities.workers``; a task that crashes its worker
  process (killed, segfault) fails with ``ExecutorError`` instead of hanging the caller,
  and the executor stays usable for later tasks.
* ``open`` starts workers (or connects to a scheduler); ``close`` waits for running tasks
  and releases them. Both are idempotent; a constructor does no work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class ExecutorCapabilities:
    workers: int
    """How many tasks run at once."""
    separate_processes: bool
    """Tasks run outside the caller's process (a crash cannot take the caller down)."""
    distributed: bool = False
    """Workers may be on other machines (arguments travel over the network)."""
    restartable: bool = False
    """The executor is also a ``RestartableWorkers``: fresh worker processes on demand."""


class Task(Protocol[T_co]):
    def result(self, timeout: float | None = None) -> T_co: ...

    def done(self) -> bool: ...


class Executor(Protocol):
    capabilities: ExecutorCapabilities

    def open(self) -> None: ...

    def close(self) -> None: ...

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Task[T]: ...

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[Task[T]]: ...


class RestartableWorkers(Protocol):
    """An executor whose worker processes can be replaced while it is open.

    Worker processes keep what they imported; after custom code changed on disk, tasks must
    run in processes that import it again.
    """

    def restart_workers(self) -> None:
        """Tasks submitted from now on run in fresh worker processes; the tasks running now
        finish in the old ones, which then exit. Returns at once; a no-op when not open."""
        ...
