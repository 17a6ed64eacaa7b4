"""The one error tree of Syncline, organised by what the caller should do.

    SynclineError                 base; carries connection, stream and a fix
    ├── ConfigurationError        the user must act; never retried        (exit 2)
    │   └── TableShapeChanged     the stream's write, key or cursor no longer fits its table
    ├── TransientError            retried with backoff and jitter
    │   └── RetriesSpent          its client already retried it as far as its budget goes
    ├── SourceError               the source failed or misbehaved; not retried
    ├── DestinationError          the destination refused or failed; not retried
    ├── DataError                 a record is invalid; it goes to quarantine
    │   ├── ShrinkRefused         a full refresh would empty or shrink a table; it is kept
    │   └── RepeatedKeys          a declared key repeats in one read; the stream fails
    ├── ContractError             a schema change the policy does not allow
    ├── ConcurrencyError          another run holds the connection; wait, do not retry
    ├── Interrupted               stopped by a signal; the next run resumes from the last commit
    └── InternalError             a bug or a broken invariant in Syncline
        └── IntegrityError        rows read and rows committed disagree

Every message says what happened, to which connection and stream, and what the
user can do about it. ``failure_class`` is what the metadata store records.
"""

from __future__ import annotations

from typing import ClassVar

from syncline.redact import redact


class SynclineError(Exception):
    """Base of every error Syncline raises on purpose."""

    failure_class: ClassVar[str] = "internal"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        connection: str | None = None,
        stream: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.connection = connection
        self.stream = stream
        self.fix = fix
        super().__init__(self.__str__())

    def where(self) -> str:
        parts = []
        if self.connection:
            parts.append(f"connection '{self.connection}'")
        if self.stream:
            parts.append(f"stream '{self.stream}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        text = f"{where}: {self.message}" if where else self.message
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return redact(text)  # no secret, no row value, wherever it is shown or stored

    def at(self, *, connection: str | None = None, stream: str | None = None) -> SynclineError:
        """Fill in where the error happened, if the raiser did not know."""
        self.connection = self.connection or connection
        self.stream = self.stream or stream
        self.args = (self.__str__(),)
        return self


class ConfigurationError(SynclineError):
    """The workspace, a credential or a referenced object is wrong: the user must act."""

    failure_class = "configuration"


class TableShapeChanged(ConfigurationError):
    """The table was built under another write, key or cursor and cannot continue as is."""


class TransientError(SynclineError):
    """A failure expected to go away by itself: network, timeout, a busy database."""

    failure_class = "transient"
    retryable = True


class RetriesSpent(TransientError):
    """A transient failure that a source's own client already retried as far as its budget
    goes (a REST source's `retry.max_attempts`): the run does not start another attempt for it,
    so one outage costs one budget of requests; `run_retry` may run the connection again."""


class SourceError(SynclineError):
    """The source failed in a way a retry will not fix."""

    failure_class = "source"


class DestinationError(SynclineError):
    """The destination failed in a way a retry will not fix."""

    failure_class = "destination"


class DataError(SynclineError):
    """A record cannot be represented in its stream's schema."""

    failure_class = "data"


class ShrinkRefused(DataError):
    """A full refresh would replace a table with none, or far fewer, of its rows."""


class RepeatedKeys(DataError):
    """A declared primary key repeats within one read of the source: merged, rows would be lost.

    ``samples`` holds a few repeated key values for the command to print; they are never
    part of the message, which the metadata store keeps (no row values there).
    """

    def __init__(self, keys: tuple[str, ...], values: int, rows: int,
                 samples: list[tuple[object, ...]], *, stream: str | None = None) -> None:
        self.samples = samples
        super().__init__(
            f"the primary key ({', '.join(keys)}) is not unique: {values:,} key value"
            f"{'s' if values != 1 else ''} come{'s' if values == 1 else ''} {rows:,} times in this "
            "read, and nothing of it was committed",
            stream=stream,
            fix="set `primary_key:` to columns unique per row (or a unique key of the table), or "
            "remove the repeats at the source")


class ContractError(SynclineError):
    """The source schema changed in a way the destination cannot follow."""

    failure_class = "contract"


class ConcurrencyError(SynclineError):
    """Another run holds this connection's lease, or took it over from this one."""

    failure_class = "concurrency"


class Interrupted(SynclineError):
    """The run was asked to stop (SIGTERM, Ctrl-C); uncommitted work was rolled back."""

    failure_class = "interrupted"


class InternalError(SynclineError):
    """Syncline broke one of its own invariants; please report it."""

    failure_class = "internal"


class IntegrityError(InternalError):
    """Rows read and rows committed disagree: the run must not report success."""

    failure_class = "integrity"


__all__ = [
    "ConcurrencyError",
    "ConfigurationError",
    "ContractError",
    "DataError",
    "DestinationError",
    "IntegrityError",
    "InternalError",
    "Interrupted",
    "SourceError",
    "SynclineError",
    "TransientError",
]
