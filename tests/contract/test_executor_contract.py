"""The Executor contract run against inline, local (process pool) and dask."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator

import dask.config
import pytest

from gristmill.backends.dask.executor import DaskExecutor
from gristmill.errors import BackendUnavailableError, ConfigError, MissingExtraError
from gristmill.execution.inline import InlineExecutor
from gristmill.execution.local import LocalExecutor
from gristmill.execution.port import Executor
from gristmill.testing.executor_contract import TIMEOUT, ExecutorContract
from gristmill.testing.tasks import kill_own_process, sleep_then_return


@pytest.fixture(scope="module")
def local_executor() -> Iterator[LocalExecutor]:
    with LocalExecutor(workers=2) as executor:
        yield executor


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[DaskExecutor]:
    """One LocalCluster for the module: starting one takes seconds."""
    with DaskExecutor(workers=2) as executor:
        yield executor


@pytest.fixture(scope="module")
def dask_client(dask_executor: DaskExecutor) -> Iterator[DaskExecutor]:
    """An executor connected by address to the module's LocalCluster."""
    with DaskExecutor(dask_executor.scheduler_address) as executor:
        yield executor


class _Shared(ExecutorContract):
    """The class's tests share the opened executor of a module fixture: workers start slowly."""

    shared: str

    @pytest.fixture
    def executor(self, request: pytest.FixtureRequest) -> Executor:
        executor: Executor = request.getfixturevalue(self.shared)
        return executor


class TestInlineExecutor(ExecutorContract):
    __test__ = True

    @pytest.fixture
    def executor(self) -> Iterator[Executor]:
        with InlineExecutor() as executor:
            yield executor

    @pytest.fixture
    def make_executor(self) -> Callable[[], Executor]:
        return InlineExecutor


class TestLocalExecutor(_Shared):
    __test__ = True
    shared = "local_executor"

    @pytest.fixture
    def make_executor(self) -> Callable[[], Executor]:
        return lambda: LocalExecutor(workers=2)

    def test_tasks_queued_behind_a_dying_worker_all_run(self) -> None:
        with LocalExecutor(workers=1) as executor:
            killer = executor.submit(kill_own_process)
            queued = [executor.submit(sleep_then_return, 0.05, n) for n in range(5)]
            assert [task.result(TIMEOUT) for task in queued] == list(range(5))
            assert killer.done()

    def test_workers_must_be_positive(self) -> None:
        with pytest.raises(ConfigError, match="at least 1"):
            LocalExecutor(workers=0)
        assert LocalExecutor().capabilities.workers >= 1


class TestDaskExecutor(_Shared):
    """The LocalCluster the executor starts and stops itself."""

    __test__ = True
    shared = "dask_executor"

    @pytest.fixture
    def make_executor(self) -> Callable[[], Executor]:
        return lambda: DaskExecutor(workers=1)

    def test_address_and_workers_exclude_each_other(self) -> None:
        with pytest.raises(ConfigError, match="not both"):
            DaskExecutor("tcp://127.0.0.1:8786", workers=2)

    def test_an_unreachable_scheduler_is_unavailable(self) -> None:
        executor = DaskExecutor("tcp://127.0.0.1:1")
        with (
            dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
            pytest.raises(BackendUnavailableError, match=r"127\.0\.0\.1:1"),
        ):
            executor.open()

    def test_without_dask_the_import_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "distributed", None)
        monkeypatch.delitem(sys.modules, "gristmill.backends.dask.executor")
        with pytest.raises(MissingExtraError, match=r"pip install 'gristmill\[dask\]'"):
            importlib.import_module("gristmill.backends.dask.executor")


class TestDaskExecutorOnScheduler(_Shared):
    """Connected by address to a running scheduler (the module's LocalCluster)."""

    __test__ = True
    shared = "dask_client"

    @pytest.fixture
    def make_executor(self, dask_executor: DaskExecutor) -> Callable[[], Executor]:
        return lambda: DaskExecutor(dask_executor.scheduler_address)

    def test_capabilities_are_measured_on_the_cluster(self, dask_client: DaskExecutor) -> None:
        assert dask_client.capabilities.workers == 2
        assert dask_client.capabilities.distributed
