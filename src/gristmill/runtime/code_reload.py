"""Long-lived workers run custom code as it is on disk now, not as it was when first imported.

Before each event a worker handles, the custom modules beside the specs (see
``core.user_code``) whose files changed are forgotten, so the handler imports them again,
and the executor's worker processes are replaced where the executor can do that (``local``),
so its tasks do too. A fixed module then works on the next event — a dead letter replayed
after the fix — without restarting the worker. Code installed as a package, and the
workers of a dask cluster, are not reloaded: restart those.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gristmill.core.user_code import ModuleWatch

log = logging.getLogger(__name__)


class CodeReload:
    """Watches the custom modules of one worker process (share it between its stages).

    ``restart_workers`` gives the executor fresh worker processes; it returns ``False``
    where the executor cannot (a dask cluster), which is then logged as a warning.
    Call ``before`` and ``after`` from one thread (the worker's event loop).
    """

    def __init__(self, restart_workers: Callable[[], bool]) -> None:
        self.restart_workers = restart_workers
        self.watch = ModuleWatch()
        self.reloads = 0

    def before(self) -> None:
        """Forget the custom modules if any changed; then note those imported so far."""
        changed = self.watch.changed()
        if changed:
            forgotten = self.watch.forget()
            self.reloads += 1
            if self.restart_workers():
                log.info(
                    "custom code changed on disk (%s); %d module(s) will be read again, "
                    "by fresh executor workers too",
                    ", ".join(changed),
                    len(forgotten),
                )
            else:
                log.warning(
                    "custom code changed on disk (%s); this process reads it again, but the "
                    "executor's workers keep the old code until they are restarted",
                    ", ".join(changed),
                )
        self.watch.note()

    def after(self, started: float) -> None:
        """Note the custom modules the work that began at ``started`` (``time.time()``)
        imported."""
        self.watch.note(since=started)
