"""When a schedule fires: ``every`` a duration or at a cron expression, as tick times in UTC.

``every: D`` ticks at whole multiples of ``D`` since 1970-01-01 00:00 UTC: ``every: 1h`` on
the hour, ``every: 15m`` at :00, :15, :30 and :45, ``every: 1d`` at midnight UTC. A cron
expression has the five usual fields (minute, hour, day of month, month, day of week, read
in UTC) or is one of ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``. Every
process computes the same tick times from the same text, which is what lets several
schedulers agree on a tick (``stores.schedules``). Cron expressions are read by ``cronsim``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gristmill.config.features import parse_duration

CRON_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CRON_FORM = "five fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *' (UTC)"


def every_text(value: Any) -> str:
    """A duration (``90s``, ``15m``, ``1h``, ``1d``, or seconds as a number) written in its
    largest whole unit (``5400s`` → ``90m``, ``3600`` → ``1h``); ``ValueError`` for anything
    that is not a whole number of seconds, at least one."""
    seconds = parse_duration(value)
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"{value!r} is not a whole number of seconds (at least 1s)")
    whole = int(seconds)
    unit, size = next((u, s) for u, s in _UNITS if whole % s == 0)
    return f"{whole // size}{unit}"


def cron_text(value: Any) -> str:
    """A cron expression, checked and with its fields separated by single spaces;
    ``ValueError`` saying what is wrong (the field, or that it never fires)."""
    from cronsim import CronSim, CronSimError

    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a cron expression is text of {CRON_FORM}; not {value!r}")
    text = " ".join(value.split())
    expression = CRON_ALIASES.get(text.lower(), text)
    if len(expression.split()) != 5:
        raise ValueError(f"{value!r} is not a cron expression: it needs {CRON_FORM}")
    try:
        next(CronSim(expression, _EPOCH))
    except CronSimError as exc:
        raise ValueError(
            f"{value!r} is not a cron expression: {str(exc).lower()}; it needs {CRON_FORM}"
        ) from None
    except StopIteration:
        raise ValueError(f"{value!r} never fires (no such date in 50 years)") from None
    return text


@dataclass(frozen=True)
class Timing:
    """When a schedule ticks: ``every`` (a duration text) or ``cron`` (an expression)."""

    every: str | None = None
    cron: str | None = None

    @classmethod
    def parse(cls, text: str) -> Timing:
        """The timing ``str(timing)`` wrote: ``every 1h`` or ``cron 0 2 * * *``."""
        kind, _, rest = text.partition(" ")
        if kind == "every":
            return cls(every=every_text(rest))
        if kind == "cron":
            return cls(cron=cron_text(rest))
        raise ValueError(f"{text!r} is not a timing; write 'every 1h' or 'cron 0 2 * * *'")

    def __str__(self) -> str:
        return f"every {self.every}" if self.every else f"cron {self.cron}"

    def latest(self, now: datetime) -> datetime:
        """The newest tick at or before ``now`` (aware, UTC, whole seconds)."""
        if self.every is not None:
            step = int(parse_duration(self.every))
            seconds = int((now - _EPOCH).total_seconds())
            return _EPOCH + timedelta(seconds=seconds - seconds % step)
        from cronsim import CronSim

        start = now.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
        return next(CronSim(self._expression(), start, reverse=True))

    def following(self, now: datetime) -> datetime:
        """The first tick after ``now``."""
        if self.every is not None:
            return self.latest(now) + timedelta(seconds=parse_duration(self.every))
        from cronsim import CronSim

        return next(CronSim(self._expression(), now.astimezone(UTC).replace(microsecond=0)))

    def _expression(self) -> str:
        text = self.cron or ""
        return CRON_ALIASES.get(text.lower(), text)
