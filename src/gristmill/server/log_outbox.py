"""The prediction log's outbox: a written log file is announced, even if the bus was away.

Each ``predictions.logged`` event is kept as a *marker* — the event's JSON, one small file
in ``<log folder>/.unannounced/`` — from before its log file is written until the bus took
it. So what was written while the bus was down (a broker restarting, a network cut) is
announced once it is back, by the same server on a later flush or, if that server stopped,
by any server on the same log folder when it starts (it scans the markers; one started on
the folder since scans every ``SCAN_EVERY`` seconds).

Order of writes: the marker, then the log file (a temporary name, renamed when complete),
then the announcement, then the marker removed. A server killed anywhere leaves either
nothing to announce, a marker whose file is complete (announced later), or a marker whose
file never came (dropped once it is ``ABANDONED_AFTER`` old: the writer died first). A
file may so be announced twice — a server killed between the bus taking it and the marker
going, or two servers relaying the same marker — which the consumers absorb: they count a
file once by its path (the monitoring and live-quality stages' idempotency keys).

Markers are read in the server's writer thread; the bus calls stay in the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from gristmill.core.events import Event

logger = logging.getLogger(__name__)

FOLDER = ".unannounced"
SCAN_AFTER = 5.0
"""Seconds a marker of another server must be old before it is announced from here: its own
server normally announces it within a flush."""
SCAN_EVERY = 60.0
"""Seconds between scans of the outbox for markers this server did not make."""
ABANDONED_AFTER = 600.0
"""Seconds after which a marker whose log file does not exist is dropped (its writer died)."""


class LogOutbox:
    """The markers of a log folder's files not announced yet (see the module docstring).

    Not shared between threads at once: the server calls it from its writer thread, one
    call at a time.
    """

    def __init__(self, log_folder: Path) -> None:
        self.folder = log_folder / FOLDER

    def keep(self, event: Event) -> None:
        """Write ``event``'s marker (before its file is written)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        marker = self._marker(event.id)
        temporary = marker.with_suffix(".tmp")
        temporary.write_bytes(event.to_bytes())
        os.replace(temporary, marker)

    def done(self, events: list[Event]) -> None:
        """Remove the markers of ``events`` (the bus took them)."""
        for event in events:
            with contextlib.suppress(FileNotFoundError):  # another server relayed it too
                self._marker(event.id).unlink()

    def waiting(self, known: set[str], *, now: float | None = None) -> list[Event]:
        """The events of markers not in ``known`` (ids), whose file is written and which are
        ``SCAN_AFTER`` old, oldest first; markers whose file never came are dropped once
        ``ABANDONED_AFTER`` old, and unreadable ones are set aside (``.bad``)."""
        now = time.time() if now is None else now
        found: list[tuple[float, Event]] = []
        try:
            markers = list(self.folder.glob("*.json"))
        except OSError:
            return []
        for marker in markers:
            if marker.stem in known:
                continue
            try:
                age = now - marker.stat().st_mtime
                event = Event.from_bytes(marker.read_bytes())
            except FileNotFoundError:
                continue  # announced meanwhile
            except (OSError, ValueError) as exc:
                logger.warning("log marker %s cannot be read (%s); set aside", marker, exc)
                with contextlib.suppress(OSError):
                    marker.rename(marker.with_suffix(".bad"))
                continue
            if age < SCAN_AFTER:
                continue
            if not Path(str(event.payload.get("path", ""))).is_file():
                if age >= ABANDONED_AFTER:
                    logger.warning(
                        "prediction log file %s was never written (its server stopped first); "
                        "its announcement is dropped",
                        event.payload.get("path"),
                    )
                    self.done([event])
                continue
            found.append((age, event))
        return [event for _, event in sorted(found, key=lambda pair: -pair[0])]

    def _marker(self, event_id: str) -> Path:
        return self.folder / f"{event_id}.json"
