"""The Executor contract suite: each backend's test class subclasses it to prove the port.

::

    @pytest.fixture(scope="module")
    def local_executor():
        with LocalExecutor(workers=2) as executor:
            yield executor

    class TestLocalExecutor(ExecutorContract):
        __test__ = True

        @pytest.fixture
        def executor(self, local_executor):
            return local_executor

        @pytest.fixture
        def make_executor(self):
            return lambda: LocalExecutor(workers=2)

``executor`` gives an opened executor; it may be shared by a class's tests (each test leaves
it usable), because starting workers is slow. ``make_executor`` gives a factory of new,
unopened executors for the open/close tests. Tasks come from ``gristmill.testing.tasks``.
Behaviour an executor cannot show is skipped with the reason, decided from its
``capabilities`` or from what a task did, never from its class.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from gristmill.errors import BackendError, ExecutorError
from gristmill.execution.port import Executor
from gristmill.testing.tasks import (
    ContractTaskError,
    add,
    echo,
    fail,
    keywords,
    kill_own_process,
    process_id,
    sleep_then_return,
    square_slowest_first,
)

TIMEOUT = 60.0
"""The longest any one result may take; nothing here should come near it."""

SLEEP = 1.0
"""How long the concurrency test's tasks sleep, in seconds."""


def _wait_for_workers(executor: Executor, n: int) -> None:
    """Returns once ``n`` tasks ran at once in ``n`` processes: workers started or restarted."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        tasks = executor.map(process_id, [0.2] * n)
        if len({task.result(TIMEOUT) for task in tasks}) == n:
            return
    pytest.fail(f"{n} workers never ran tasks at once within {TIMEOUT} s")


def _needs_separate_processes(executor: Executor) -> None:
    if not executor.capabilities.separate_processes:
        pytest.skip("tasks run in the caller's process: a task killing it would end the test run")


class ExecutorContract:
    """The behaviour every ``Executor`` shows; see ``gristmill.execution.port``."""

    __test__ = False

    @pytest.fixture
    def executor(self) -> Executor:
        raise NotImplementedError("a backend's test class provides the executor fixture")

    @pytest.fixture
    def make_executor(self) -> Callable[[], Executor]:
        raise NotImplementedError("a backend's test class provides the make_executor fixture")

    # -- values and errors ---------------------------------------------------------------------

    def test_submit_gives_the_value_of_the_call(self, executor: Executor) -> None:
        task = executor.submit(add, 2, b=3)
        assert task.result(TIMEOUT) == 5
        assert task.done()
        assert task.result(TIMEOUT) == 5  # asking again gives the same value

    def test_keyword_arguments_reach_the_function_whatever_their_names(
        self, executor: Executor
    ) -> None:
        given = {"key": "k", "workers": 3, "pure": False, "retries": 2, "timeout": 0.5, "fn": 1}
        assert executor.submit(keywords, **given).result(TIMEOUT) == given

    def test_map_gives_results_in_input_order(self, executor: Executor) -> None:
        tasks = executor.map(square_slowest_first, range(10))
        assert [task.result(TIMEOUT) for task in tasks] == [n * n for n in range(10)]
        assert executor.map(echo, []) == []

    def test_a_task_exception_comes_back_with_its_type_and_message(
        self, executor: Executor
    ) -> None:
        message = "bad input 'x' in row 3 ✓"
        task = executor.submit(fail, message)
        for _ in range(2):  # every call raises it again
            with pytest.raises(ContractTaskError) as raised:
                task.result(TIMEOUT)
            assert str(raised.value) == message
        assert task.done()

    def test_result_raises_timeout_error_while_the_task_runs(self, executor: Executor) -> None:
        task = executor.submit(sleep_then_return, SLEEP, "late")
        if task.done():
            pytest.skip("the executor ran the task at submit: it cannot be caught running")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            task.result(timeout=0.05)
        assert time.monotonic() - started < SLEEP / 2
        assert not task.done()
        assert task.result(TIMEOUT) == "late"

    def test_a_10_mb_array_travels_there_and_back(self, executor: Executor) -> None:
        array = np.random.default_rng(7).random(10_000_000 // 8)
        back = executor.submit(echo, array).result(TIMEOUT)
        assert back.dtype == array.dtype
        np.testing.assert_array_equal(back, array)

    # -- capabilities --------------------------------------------------------------------------

    def test_separate_processes_says_where_tasks_run(self, executor: Executor) -> None:
        capabilities = executor.capabilities
        assert capabilities.workers >= 1
        elsewhere = executor.submit(process_id).result(TIMEOUT) != os.getpid()
        assert elsewhere == capabilities.separate_processes
        if capabilities.distributed:
            assert capabilities.separate_processes

    def test_tasks_run_concurrently_up_to_workers(self, executor: Executor) -> None:
        n = min(executor.capabilities.workers, 4)
        if n < 2:
            pytest.skip("the executor runs one task at a time (capabilities.workers == 1)")
        _wait_for_workers(executor, n)  # process start-up is not what this measures
        started = time.monotonic()
        tasks = executor.map(partial(sleep_then_return, SLEEP), range(n))
        assert [task.result(TIMEOUT) for task in tasks] == list(range(n))
        elapsed = time.monotonic() - started
        # One after the other would take n * SLEEP; loose, for small shared machines.
        assert elapsed < n * SLEEP * 0.8, f"{n} tasks of {SLEEP} s took {elapsed:.2f} s"

    # -- a worker dies -------------------------------------------------------------------------

    def test_a_task_that_kills_its_worker_fails_and_later_tasks_run(
        self, executor: Executor
    ) -> None:
        _needs_separate_processes(executor)
        task = executor.submit(kill_own_process)
        with pytest.raises(ExecutorError):
            task.result(TIMEOUT)
        assert task.done()
        assert executor.submit(add, 1, 2).result(TIMEOUT) == 3
        tasks = executor.map(echo, range(4))
        assert [t.result(TIMEOUT) for t in tasks] == list(range(4))
        _wait_for_workers(executor, min(executor.capabilities.workers, 4))  # back to strength

    def test_a_worker_death_fails_at_most_the_tasks_running_beside_it(
        self, executor: Executor
    ) -> None:
        _needs_separate_processes(executor)
        killer = executor.submit(kill_own_process)
        others = executor.map(partial(sleep_then_return, 0.1), range(8))
        with pytest.raises(ExecutorError):
            killer.result(TIMEOUT)
        survived = []
        for n, task in enumerate(others):
            try:
                assert task.result(TIMEOUT) == n
            except ExecutorError:
                continue
            survived.append(n)
        # The queued tasks run on; only those sharing the worker (or the pool) may be lost.
        assert len(survived) >= len(others) - executor.capabilities.workers, survived
        _wait_for_workers(executor, min(executor.capabilities.workers, 4))

    # -- opening and closing -------------------------------------------------------------------

    def test_open_and_close_are_idempotent_and_guard_submit(
        self, make_executor: Callable[[], Executor]
    ) -> None:
        executor = make_executor()
        executor.close()  # closing what was never opened does nothing
        with pytest.raises(BackendError, match="open"):
            executor.submit(add, 1, 1)
        executor.open()
        executor.open()
        assert executor.submit(add, 1, 1).result(TIMEOUT) == 2
        executor.close()
        executor.close()
        with pytest.raises(BackendError, match="open"):
            executor.submit(add, 1, 1)
        executor.open()  # and again after a close
        try:
            assert executor.submit(add, 2, 2).result(TIMEOUT) == 4
        finally:
            executor.close()

    def test_close_waits_for_running_tasks_and_keeps_their_results(
        self, make_executor: Callable[[], Executor]
    ) -> None:
        executor = make_executor()
        executor.open()
        try:
            tasks = executor.map(partial(sleep_then_return, 0.3), range(3))
            failing = executor.submit(fail, "after close")
        finally:
            executor.close()
        assert all(task.done() for task in [*tasks, failing])
        assert [task.result(0) for task in tasks] == [0, 1, 2]
        with pytest.raises(ContractTaskError, match="after close"):
            failing.result(0)
