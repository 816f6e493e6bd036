"""A score job run outside a worker (``gristmill score``, a server) held as a worker holds it.

``holding_job`` claims the ``scoring`` stage's execution of the job (``job_key``), the very
one a scoring worker claims for the job's ``scores.requested`` (ADR 23): so one holder at a
time scores a job, its writes are fenced (ADR 14), its lease is renewed on a thread of its
own every ``ack_wait / 3`` while it runs, and when its process dies the lease is the
evidence readers and ``gristmill gc`` go by (``runtime.job_views``). A holder found running
whose process is known gone (same host) is taken over at once; a live one is a
``ConflictError`` naming it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gristmill.core.ids import new_id
from gristmill.errors import BackendError, ConflictError
from gristmill.runtime.run_views import holder_alive
from gristmill.runtime.worker import HEARTBEATS_PER_LEASE, TAKEOVER_MARGIN
from gristmill.stores.fencing import fenced
from gristmill.stores.metadata import ExecutionStore, StageExecution
from gristmill.stores.scores import SCORING_STAGE, job_key

log = logging.getLogger(__name__)


@contextmanager
def holding_job(
    executions: ExecutionStore, job_id: str, *, holder: str, ack_wait: float
) -> Iterator[None]:
    """Hold job ``job_id`` while the block runs (see the module docstring); its execution
    ends ``succeeded``, or ``failed`` with the block's error. A job whose execution
    succeeded already is run without one (asked again, it only finds its partitions)."""
    held = _claim(executions, job_id, holder, ack_wait)
    if held is None:
        yield
        return
    keeper = _Renewal(executions, held.execution_id, ack_wait)
    keeper.start()
    error: str | None = None
    try:
        with fenced(executions.fence(held.execution_id)):
            yield
    except BaseException as exc:
        error = str(exc) or type(exc).__name__
        raise
    finally:
        keeper.stop.set()
        keeper.join()
        now = datetime.now(UTC)
        ended = replace(
            held,
            status="failed" if error is not None else "succeeded",
            finished_at=now,
            lease_expires_at=now,
            error=error,
            published_at=now,  # it announces nothing: nothing for an outbox relay
        )
        executions.finish_execution(ended)


def _claim(
    executions: ExecutionStore, job_id: str, holder: str, ack_wait: float
) -> StageExecution | None:
    """The execution claimed for the job; ``None`` when one succeeded already."""
    margin = timedelta(seconds=ack_wait * TAKEOVER_MARGIN)
    for _ in range(2):
        now = datetime.now(UTC)
        mine = StageExecution(
            execution_id=new_id(),
            stage=SCORING_STAGE,
            idempotency_key=job_key(job_id),
            status="running",
            started_at=now,
            lease_expires_at=now + timedelta(seconds=ack_wait),
            holder=holder,
        )
        found = executions.claim_execution(mine, margin=margin)
        if found is None:
            return mine
        if found.status == "succeeded":
            return None
        if holder_alive(found.holder) is not False:
            lease = found.lease_expires_at or found.started_at
            raise ConflictError(
                f"score job {job_id} is being scored by {found.holder or 'another holder'} "
                f"(its lease runs to {lease:%H:%M:%S} UTC); follow it with `gristmill jobs "
                f"{job_id}`, or score the input as a new job (leave out --job)"
            )
        # its process is gone (this host): take the work over now, not after its lease
        lease = found.lease_expires_at or found.started_at
        executions.abandon_execution(
            found.execution_id,
            reason=f"taken over: its process {found.holder} is gone; {holder} took it over",
            expired_before=max(lease, now) + timedelta(seconds=1),
        )
    raise ConflictError(f"score job {job_id} is claimed by another holder meanwhile; try again")


class _Renewal(threading.Thread):
    """Renews the lease of ``execution_id`` every ``ack_wait / 3`` until ``stop``; once the
    execution was taken over, the fence refuses the job's next write."""

    def __init__(self, executions: ExecutionStore, execution_id: str, ack_wait: float) -> None:
        super().__init__(name=f"gristmill-lease-{execution_id}", daemon=True)
        self.executions = executions
        self.execution_id = execution_id
        self.ack_wait = ack_wait
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.ack_wait / HEARTBEATS_PER_LEASE):
            until = datetime.now(UTC) + timedelta(seconds=self.ack_wait)
            try:
                if not self.executions.renew_lease(self.execution_id, until):
                    log.warning("score job execution %s was taken over", self.execution_id)
                    return
            except BackendError as exc:  # an outage: keep trying, the lease may still hold
                log.warning("could not renew the lease of %s: %s", self.execution_id, exc)
