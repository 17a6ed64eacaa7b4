"""What a run came to: its streams that committed, the ones that failed alone, its status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from syncline.engine.observer import StreamProgress
from syncline.engine.plan import Orphan
from syncline.errors import (
    ConcurrencyError,
    ConfigurationError,
    ContractError,
    DataError,
    DestinationError,
    InternalError,
    Interrupted,
    SourceError,
    SynclineError,
    TransientError,
)

#: the kinds a run's error can be when several streams failed, by what the user does about it
_KINDS: tuple[type[SynclineError], ...] = (
    TransientError, SourceError, DestinationError, DataError, ContractError, ConcurrencyError,
    InternalError, ConfigurationError)


@dataclass
class RunResult:
    run_id: int
    connection: str
    status: str
    attempts: int
    #: the streams that finished, in this run's attempts
    streams: list[StreamProgress] = field(default_factory=list)
    error: SynclineError | None = None
    #: the streams that failed on their own (the others ran), with why
    failed: dict[str, SynclineError] = field(default_factory=dict)
    #: `--full-refresh`: every stream was read from its start into a table built beside
    full_refresh: bool = False
    #: streams with a loaded table the source or the connection no longer has, with why
    orphaned: dict[str, Orphan] = field(default_factory=dict)

    @property
    def rows_read(self) -> int:
        return sum(s.rows_read for s in self.streams)

    @property
    def rows_committed(self) -> int:
        return sum(s.rows_committed for s in self.streams)

    @property
    def rows_quarantined(self) -> int:
        return sum(s.rows_quarantined for s in self.streams)


def run_status(result: RunResult) -> str:
    """The run's outcome in the one vocabulary of ``store.records.RUN_STATUSES``: `partial`
    when some streams finished and others failed."""
    if isinstance(result.error, Interrupted):
        return "interrupted"
    if result.error is not None or result.failed:
        return "partial" if result.streams else "failed"
    return "warning" if result.orphaned or any(st.notices for st in result.streams) else "succeeded"


def streams_failed(failed: Mapping[str, SynclineError]) -> SynclineError:
    """One error for the streams that failed alone: the error itself for one stream; for
    several, each stream's message and fix, as a configuration error when all are."""
    if len(failed) == 1:
        return next(iter(failed.values()))
    names = sorted(failed)
    errors = [failed[n] for n in names]
    kind = next((k for e in errors for k in _KINDS[:-1] if isinstance(e, k)), ConfigurationError)
    fixes = dict.fromkeys(f"{n}: {failed[n].fix}" for n in names if failed[n].fix)
    return kind(f"{len(names)} streams failed: " + "; ".join(f"{n}: {failed[n].message}" for n in names),
                connection=errors[0].connection, fix="; ".join(fixes) or None)
