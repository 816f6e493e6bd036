"""The one error tree of gristmill; every error a user can see is one of these.

::

    GristmillError
    ├── ConfigError                 settings or pipeline spec are invalid
    │   └── SpecError               the pipeline spec (names the key path)
    ├── BackendError                a backend failed or is unknown
    │   ├── UnknownBackendError     no backend of that name (lists the known ones)
    │   ├── MissingExtraError       the backend's driver is not installed (install hint)
    │   └── BackendUnavailableError the service cannot be reached
    ├── EnvelopeVersionError        an event envelope is newer than this gristmill knows
    ├── NotFoundError               a `get_*` found nothing (names the id): permanent
    ├── ConflictError               the object exists and differs, or changed since read
    ├── DataError                   input data is bad (names file, row, column)
    │   ├── EmptyInputError         a source produced no rows
    │   └── SchemaChangedError      a source's schema differs from its previous batch
    ├── StageError                  a stage handler failed on an event
    ├── LeaseLostError              work's lease was taken over; its write was refused
    └── ExecutorError               a task's worker died (killed, crashed) before it finished

Driver exceptions are translated at the adapter boundary and chained with ``raise … from``.
``PERMANENT_ERRORS`` are those that retrying cannot heal; every other error is retried with
back-off.
"""

from __future__ import annotations


class GristmillError(Exception):
    """Base of every error gristmill raises on purpose."""


class ConfigError(GristmillError):
    """Settings or a pipeline spec are invalid; the message says which key and how to fix it."""


class SpecError(ConfigError):
    """The pipeline spec is invalid; ``problems`` lists ``(key path, message)`` pairs."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class BackendError(GristmillError):
    """A backend failed; the cause is chained."""


class UnknownBackendError(BackendError, ConfigError):
    """No backend of the requested name exists for a role."""


class MissingExtraError(BackendError):
    """A backend's optional driver is not installed; the message gives the pip command."""


class BackendUnavailableError(BackendError):
    """The service behind a backend cannot be reached."""


class EnvelopeVersionError(GristmillError, ValueError):
    """An envelope's ``schema_version`` is newer than this gristmill knows; it is refused.

    ``Event.from_bytes`` raises it as is; ``Event.model_validate`` raises a pydantic
    ``ValidationError`` whose error on ``schema_version`` carries it (``ctx["error"]``).
    """

    def __init__(self, seen: int, known: int) -> None:
        super().__init__(
            f"event envelope schema_version {seen} is newer than {known}, the newest "
            "this gristmill knows; upgrade gristmill to consume it"
        )
        self.seen = seen
        self.known = known


class NotFoundError(GristmillError, LookupError):
    """A ``get_*`` call found nothing for the id it was given."""


class ConflictError(GristmillError):
    """An object with that id exists already and differs from the one being written, or it
    changed since it was read (a traffic policy set with an ``expected_revision``)."""


class DataError(GristmillError):
    """Input data is bad. ``location`` names file, row and column where they are known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.row = row
        self.column = column


class EmptyInputError(DataError):
    """A source produced no rows."""


class SchemaChangedError(DataError):
    """A source's schema differs from the schema of its previous batch."""


class EvaluatorError(DataError):
    """A custom evaluator (a function named by import path in the spec) raised while
    measuring a model. ``path`` is its import path, ``error`` what it raised."""

    def __init__(self, path: str, error: str) -> None:
        super().__init__(f"evaluator {path!r} raised {error}")
        self.path = path
        self.error = error

    def __reduce__(self) -> tuple[type[EvaluatorError], tuple[str, str]]:
        return (type(self), (self.path, self.error))  # crosses process boundaries whole


class StageError(GristmillError):
    """A stage handler failed on an event; the cause is chained."""


class LeaseLostError(GristmillError):
    """Work lost its lease to another holder: a write made for it was refused (ADR 14)."""


class ExecutorError(GristmillError):
    """A task could not finish because its worker died; the executor stays usable."""


# Errors that retrying cannot heal: bad data, bad configuration, an input that does not exist
# (a batch, feature set, split or candidate an event names), a driver not installed. A stage
# that meets one fails at once (recorded failed, ``stage.failed`` announced), without retries.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    DataError,
    ConfigError,
    NotFoundError,
    MissingExtraError,
    ImportError,
)
