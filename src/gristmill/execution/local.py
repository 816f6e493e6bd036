"""The local executor: a pool of worker processes on this machine, the default engine.

Tasks go through a dispatcher thread that hands at most ``workers`` of them to a
``concurrent.futures.ProcessPoolExecutor`` at a time; the rest wait in this process. When
a worker dies, the standard pool turns *broken* and fails everything it holds, so holding
back the queue keeps a death to the tasks that were running: those fail with
``ExecutorError`` (the pool cannot tell which one died, and it stops the others), and the
dispatcher starts a fresh pool for the tasks still waiting and those submitted later.

Workers start when the executor opens (their imports overlap the caller's own work) and
each caps the native thread pools it loads (OpenMP, BLAS) at its share of the CPUs, so
``workers`` processes never run more threads than there are cores — oversubscribed OpenMP
spins and can run many times slower. Modules named in ``preload`` are imported once, in the
forkserver, and every worker forked from it starts with them loaded.

Workers die with their owner. A worker that outlived a killed owner (``kill -9``, an
out-of-memory kill) would go on training for nobody and hold its memory, so each one
watches a *lifeline*: the read end of a pipe whose only write end the owner holds. The
kernel closes that end when the owner dies, however it dies; the worker's watch thread
sees end-of-file and exits at once (``os._exit``). The forkserver and multiprocessing's
resource tracker then exit by themselves, their last clients gone. (``PR_SET_PDEATHSIG``
would not do: a pool worker's parent is the forkserver, which outlives the owner while
any worker does, and under ``spawn`` it is the *thread* that started the worker, which
ends before the pool does.) The watch thread needs the interpreter lock: native code that
holds it for long (rare; numerical libraries release it) delays the exit until it lets go.

Workers keep what they imported. ``restart_workers`` puts a fresh pool in place for the
tasks submitted after it (their processes import the code as it is now, e.g. a custom
module fixed on disk); the tasks running in the old pool finish there. Each task carries
the spec folders made importable in the submitting process by then (``core.user_code``),
put on the worker's ``sys.path`` before it runs: a worker started before a second
project's spec was read still imports the custom code beside it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

from gristmill.core.user_code import custom_folders
from gristmill.errors import BackendError, ConfigError, ExecutorError
from gristmill.execution.port import ExecutorCapabilities, Task

T = TypeVar("T")

_log = logging.getLogger(__name__)


def default_workers() -> int:
    """The CPUs this process may use (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def checked_workers(owner: str, workers: int | None) -> int:
    """``workers`` or one per CPU; a count below one is a ``ConfigError``."""
    if workers is None:
        return default_workers()
    if workers < 1:
        raise ConfigError(
            f"{owner} workers must be at least 1, got {workers}; leave it unset for one per CPU"
        )
    return workers


THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def thread_share(workers: int) -> int:
    """The native threads one of ``workers`` processes may run: its share of the CPUs."""
    return max(1, default_workers() // workers)


OWNER_GONE = 70
"""A worker's exit status when it stops because its owner died (``EX_SOFTWARE``)."""


def watch_owner(lifeline: Connection) -> threading.Thread:
    """Start a daemon thread that ends this process once ``lifeline`` reaches end-of-file.

    The owner holds the only write end and never writes: end-of-file means it is gone (or
    closed the executor, after its workers were stopped). Nothing is cleaned up: the work
    in hand is for an owner that can no longer take its result.
    """

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv_bytes()
        os._exit(OWNER_GONE)

    thread = threading.Thread(target=watch, name="gristmill-owner-watch", daemon=True)
    thread.start()
    return thread


def prepare_worker(
    threads: int, preload: tuple[str, ...], lifeline: Connection | None = None
) -> None:
    """Runs first in each worker process: watch the owner, cap native thread pools, import
    ``preload``.

    Given ``lifeline``, the worker exits when its owner dies (see ``watch_owner``). A limit
    the user set in the environment (``OMP_NUM_THREADS`` …) is kept as it is. Ctrl-C is the
    caller's to handle: a worker ignores SIGINT (the terminal sends it to the whole process
    group) and is stopped by the pool when the caller shuts it down.
    """
    if lifeline is not None:
        watch_owner(lifeline)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if any(name in os.environ for name in THREAD_VARIABLES):
        threads = 0
    else:
        for name in THREAD_VARIABLES:  # read by libraries loaded from now on
            os.environ[name] = str(threads)
    for module in preload:
        importlib.import_module(module)
    if threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)  # the libraries already loaded (preloaded in the forkserver)


def _started() -> None:
    """A no-op task that makes the pool start a worker now, not at the first real task."""


def _beside_specs(
    folders: tuple[str, ...], fn: Callable[..., T], /, *args: Any, **kwargs: Any
) -> T:
    """Run in a worker: ``fn(*args, **kwargs)`` with the spec ``folders`` on ``sys.path``."""
    for folder in folders:
        if folder not in sys.path:
            sys.path.insert(0, folder)
    return fn(*args, **kwargs)


def start_method() -> str:
    """``forkserver`` where the platform has it, else ``spawn``; never ``fork``.

    ``fork`` copies the parent's memory with whatever locks its other threads held at that
    instant (the stage runtime runs handlers in threads, logging and database drivers lock),
    so a child can deadlock on a lock no thread will ever release.
    """
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def task_name(fn: Callable[..., Any]) -> str:
    """The name of the function a task runs (through ``functools.partial``), for messages."""
    while isinstance(fn, partial):
        fn = fn.func
    return getattr(fn, "__qualname__", None) or type(fn).__qualname__


class PoolTask(Generic[T]):
    """A task of the local executor, over the ``concurrent.futures.Future`` it completes."""

    __slots__ = ("_future",)

    def __init__(self, future: Future[T]) -> None:
        self._future = future

    def result(self, timeout: float | None = None) -> T:
        try:
            return self._future.result(timeout)
        except TimeoutError:
            if self._future.done():  # the task itself raised it
                raise
            raise TimeoutError(f"the task is not done after {timeout} s") from None

    def done(self) -> bool:
        return self._future.done()


class _Restart:
    """Queued among the jobs: the jobs after it run in a fresh pool."""


@dataclass(frozen=True)
class _Job:
    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    folders: tuple[str, ...] = ()  # the spec folders importable when it was submitted


class LocalExecutor:
    """Runs tasks in ``workers`` processes (default: one per CPU) started with forkserver.

    Workers start with the first tasks and are reused. Functions and arguments must be
    picklable by reference (module-level functions, plain data); a task whose exception
    cannot be unpickled here breaks the pool like a dead worker and fails the same way.
    """

    def __init__(self, workers: int | None = None, *, preload: tuple[str, ...] = ()) -> None:
        self.workers = workers
        self.preload = preload
        self.capabilities = ExecutorCapabilities(
            workers=checked_workers("LocalExecutor", workers),
            separate_processes=True,
            restartable=True,
        )
        self._lock = threading.Lock()
        self._dispatcher: threading.Thread | None = None
        self._jobs: queue.SimpleQueue[_Job | _Restart | None] = queue.SimpleQueue()
        self._slots = threading.Semaphore(self.capabilities.workers)
        self._pool: ProcessPoolExecutor | None = None
        self._retired: list[ProcessPoolExecutor] = []  # replaced by restart_workers
        self._lifeline: tuple[Connection, Connection] | None = None  # (read end, write end)

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers!r})"

    def __enter__(self) -> LocalExecutor:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        with self._lock:
            if self._dispatcher is not None:
                return
            self._lifeline = multiprocessing.get_context(start_method()).Pipe(duplex=False)
            self._pool = self._new_pool()
            self._dispatcher = threading.Thread(
                target=self._dispatch, name="gristmill-local-executor", daemon=True
            )
            self._dispatcher.start()

    def close(self) -> None:
        """Runs every task submitted so far, waits for them, then stops the workers."""
        with self._lock:
            dispatcher, self._dispatcher = self._dispatcher, None
            if dispatcher is None:
                return
            self._jobs.put(None)  # after every job already queued
        dispatcher.join()
        pools, self._pool, self._retired = [*self._retired, self._pool], None, []
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True)
        lifeline, self._lifeline = self._lifeline, None
        for end in lifeline or ():
            end.close()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> PoolTask[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._dispatcher is None:
                raise BackendError(f"{self!r} is not open; call open() first")
            folders = tuple(sorted(str(folder) for folder in custom_folders()))
            self._jobs.put(_Job(future, fn, args, kwargs, folders))
        return PoolTask(future)

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[Task[T]]:
        return [self.submit(fn, item) for item in items]

    def restart_workers(self) -> None:
        """Jobs submitted from now on run in a fresh pool; the old one finishes its jobs."""
        with self._lock:
            if self._dispatcher is not None:
                self._jobs.put(_Restart())  # the dispatcher swaps pools between two jobs

    # -- the dispatcher thread ----------------------------------------------------------------

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context(start_method())
        if self.preload and context.get_start_method() == "forkserver":
            context.set_forkserver_preload(list(self.preload))
        workers = self.capabilities.workers
        lifeline = self._lifeline[0] if self._lifeline is not None else None
        return ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=prepare_worker,
            initargs=(thread_share(workers), self.preload, lifeline),
        )

    def _warm_up(self) -> None:
        if self._pool is not None:  # start the workers now, while the caller gets ready
            for _ in range(self.capabilities.workers):
                self._pool.submit(_started)

    def _restart(self) -> None:
        old, self._pool = self._pool, self._new_pool()
        if old is not None:
            old.shutdown(wait=False)  # its running jobs finish; then its workers exit
            self._retired.append(old)  # close() waits for them
        self._warm_up()

    def _dispatch(self) -> None:
        self._warm_up()
        while (job := self._jobs.get()) is not None:
            if isinstance(job, _Restart):
                self._restart()
                continue
            self._slots.acquire()  # released when the pool finishes the job
            try:
                running = self._hand_over(job)
            except Exception as exc:  # the interpreter is shutting down, or a pool would not start
                self._slots.release()
                error = ExecutorError(f"{self!r} could not start task {task_name(job.fn)}: {exc}")
                error.__cause__ = exc
                job.future.set_exception(error)
                continue
            running.add_done_callback(partial(self._finish, job))

    def _hand_over(self, job: _Job) -> Future[Any]:
        if self._pool is None:  # pragma: no cover - only close() clears it, after this thread
            raise BackendError(f"{self!r} is closed")
        call: tuple[Any, ...] = (job.fn, *job.args)
        if job.folders:
            call = (_beside_specs, job.folders, *call)
        try:
            return self._pool.submit(*call, **job.kwargs)
        except BrokenProcessPool:
            _log.warning("%r: a worker process died; starting a fresh pool", self)
            self._pool.shutdown(wait=True)
            self._pool = self._new_pool()
            return self._pool.submit(*call, **job.kwargs)

    def _finish(self, job: _Job, running: Future[Any]) -> None:
        """Pass the pool's outcome on; runs in the pool's thread when the job ends."""
        self._slots.release()
        exc = running.exception()
        if exc is None:
            job.future.set_result(running.result())
        elif isinstance(exc, BrokenProcessPool):
            error = ExecutorError(
                f"task {task_name(job.fn)} failed: a worker process of {self!r} died (killed, "
                "crashed, or its result could not be unpickled) while the task ran; "
                "later tasks run on a fresh pool"
            )
            error.__cause__ = exc
            job.future.set_exception(error)
        else:
            job.future.set_exception(exc)
