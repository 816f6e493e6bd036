"""An Executor on dask.distributed: a scheduler's cluster, or a LocalCluster it starts itself.

Each task is one dask task whose function carries its arguments (``functools.partial``), so
no keyword of ``fn`` can collide with ``Client.submit``'s own. Tasks are submitted with
``retries=0``: an exception is the task's answer, not a reason to run it again. A worker that
dies while it runs a task makes dask raise ``KilledWorker`` for that task once the task has
killed more than ``distributed.scheduler.allowed-failures`` workers; the LocalCluster this
executor starts sets that to 0, so a task that kills its worker fails at once, as on the
local executor, and the nanny restarts the worker. A remote cluster keeps its own setting
(dask's default 3 retries the task on other workers first).

A LocalCluster logs its start, every worker and its shutdown at INFO on the
``distributed`` loggers (about thirty lines a run). While this executor runs its own
cluster, those loggers are held at WARNING unless the root logger is at INFO or DEBUG (a
CLI ``-v``): the cluster is then an implementation detail, not news. Their level is put
back on ``close``.
"""

# distributed annotates only part of its API; its unannotated calls are checked by the tests.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import replace
from functools import partial
from typing import Any, Generic, TypeVar

from gristmill.core.urls import mask_url
from gristmill.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    ExecutorError,
    MissingExtraError,
)
from gristmill.execution.local import checked_workers, task_name
from gristmill.execution.port import ExecutorCapabilities, Task

try:
    import dask.config
    from distributed import CancelledError, Client, Future, KilledWorker, LocalCluster
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingExtraError(
        "the dask executor needs dask.distributed: pip install 'gristmill[dask]'"
    ) from exc

T = TypeVar("T")

# A task's arguments always travel with it (that is the port), so dask's hint to embed big
# data in the graph differently cannot be acted on here; only absurd sizes still warn.
_GRAPH_WARNING = {"distributed.admin.large-graph-warning-threshold": "1GiB"}
_CLUSTER_LOGGER = "distributed"


class DaskTask(Generic[T]):
    """A task on dask: the dask ``Future`` until its outcome is fetched, then the outcome.

    Once fetched (by ``result``, or by the executor's ``close``) the value or exception is
    kept here and the cluster's copy is released, so results stay readable after ``close``.
    """

    __slots__ = ("__weakref__", "_future", "_outcome")

    def __init__(self, future: Future[T]) -> None:
        self._future: Future[T] | None = future
        self._outcome: tuple[Any, BaseException | None] | None = None

    def result(self, timeout: float | None = None) -> T:
        value, error = self._fetch(timeout)
        if error is not None:
            raise error
        return value  # type: ignore[no-any-return]

    def done(self) -> bool:
        future = self._future
        return future is None or bool(future.done())

    def _fetch(self, timeout: float | None) -> tuple[Any, BaseException | None]:
        future = self._future
        if self._outcome is not None or future is None:
            return self._outcome or (None, None)
        try:
            outcome: tuple[Any, BaseException | None] = (future.result(timeout), None)
        except KilledWorker as exc:
            outcome = (None, _died(future, exc, "its dask worker died (killed or crashed)"))
        except CancelledError as exc:
            outcome = (None, _died(future, exc, "dask cancelled it (the scheduler was lost)"))
        except TimeoutError:
            if not future.done():
                raise TimeoutError(f"task {future.key} is not done after {timeout} s") from None
            raise
        except Exception as exc:  # the task's own exception, with its type and message
            outcome = (None, exc)
        self._outcome, self._future = outcome, None
        return outcome


def _died(future: Future[Any], cause: Exception, why: str) -> ExecutorError:
    error = ExecutorError(f"task {future.key} failed: {why}; the cluster keeps serving")
    error.__cause__ = cause
    return error


class DaskExecutor:
    """Runs tasks on a dask.distributed cluster.

    With ``address`` (``tcp://scheduler:8786``) it connects to that scheduler, whose cluster
    decides the workers: ``capabilities.workers`` is measured at ``open`` (its worker
    threads). Without one, ``open`` starts a ``LocalCluster`` of ``workers`` processes
    (default: one per CPU) with one thread each and no dashboard, and ``close`` stops it.
    """

    def __init__(self, address: str | None = None, *, workers: int | None = None) -> None:
        if address is not None and workers is not None:
            raise ConfigError(
                "DaskExecutor takes an address or a number of workers, not both: the "
                "cluster behind a scheduler address decides its own workers"
            )
        self.address = address
        self.workers = workers
        self.capabilities = ExecutorCapabilities(
            workers=checked_workers("DaskExecutor", workers),
            separate_processes=True,
            distributed=address is not None,
        )
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._cluster: LocalCluster | None = None
        self._running: set[Future[Any]] = set()  # kept until done, so a dropped task still runs
        self._tasks: weakref.WeakSet[DaskTask[Any]] = weakref.WeakSet()
        self._quieted: int | None = None  # the distributed logger's level before open

    def __repr__(self) -> str:
        if self.address is None:
            return f"DaskExecutor(workers={self.workers!r})"
        return f"DaskExecutor({mask_url(self.address)!r})"

    def __enter__(self) -> DaskExecutor:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def scheduler_address(self) -> str:
        """The scheduler's address while open (the LocalCluster's, when it started one)."""
        self._connected()
        return self._cluster.scheduler_address if self._cluster else str(self.address)

    def open(self) -> None:
        with self._lock:
            if self._client is not None:
                return
            try:
                self._client = self._connect()
            except (OSError, TimeoutError) as exc:
                where = mask_url(self.address) if self.address else "a LocalCluster"
                raise BackendUnavailableError(f"{self!r} cannot reach {where}: {exc}") from exc
            if self.address is not None:
                threads = sum(self._client.nthreads().values())
                self.capabilities = replace(self.capabilities, workers=max(threads, 1))

    def _connect(self) -> Client:
        if self.address is not None:
            return Client(self.address, set_as_default=False)
        self._quiet_cluster_logs()
        # A task that kills its worker fails at once instead of killing three more first.
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            self._cluster = LocalCluster(
                n_workers=self.capabilities.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # its health and metrics routes stay on: on a free local port, not 8787
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )
        try:
            return Client(self._cluster, set_as_default=False)
        except BaseException:
            self._cluster.close()
            self._cluster = None
            self._restore_cluster_logs()
            raise

    def _quiet_cluster_logs(self) -> None:
        if logging.getLogger().getEffectiveLevel() <= logging.INFO:
            return  # the user asked for INFO (-v): the cluster's story is part of it
        cluster_logger = logging.getLogger(_CLUSTER_LOGGER)
        if self._quieted is None:
            self._quieted = cluster_logger.level
        cluster_logger.setLevel(max(cluster_logger.level, logging.WARNING))

    def _restore_cluster_logs(self) -> None:
        if self._quieted is not None:
            logging.getLogger(_CLUSTER_LOGGER).setLevel(self._quieted)
            self._quieted = None

    def close(self) -> None:
        """Waits for the running tasks, keeps their outcomes in their tasks, disconnects."""
        with self._lock:
            client, cluster = self._client, self._cluster
            self._client = self._cluster = None
            running = list(self._running)
        if client is None:
            return
        try:
            for future in running:
                with suppress(CancelledError):
                    future.exception()  # waits without fetching the value
            for task in list(self._tasks):
                task._fetch(None)
            with self._lock:
                self._running.clear()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
                self._restore_cluster_logs()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> DaskTask[T]:
        client = self._connected()
        key = f"{task_name(fn)}-{uuid.uuid4().hex}"
        with dask.config.set(_GRAPH_WARNING):
            future = client.submit(partial(fn, *args, **kwargs), key=key, retries=0)
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._forget)
        task: DaskTask[T] = DaskTask(future)
        self._tasks.add(task)
        return task

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[Task[T]]:
        return [self.submit(fn, item) for item in items]

    def _connected(self) -> Client:
        client = self._client
        if client is None:
            raise BackendError(f"{self!r} is not open; call open() first")
        return client

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._running.discard(future)
