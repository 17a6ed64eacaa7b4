"""The Python SDK: a custom source is one small class; Syncline does batching, types, state and loading.

A connector author writes::

    from pydantic import BaseModel, ConfigDict, Field
    from syncline.sdk import SimpleSource, State, Stream

    class Weather(SimpleSource):
        class Config(BaseModel):
            model_config = ConfigDict(extra="forbid")
            city: str = Field(description="City to report on.")

        def streams(self) -> list[Stream]:
            return [Stream("readings", primary_key=["id"], cursor="taken_at")]

        def read(self, stream: str, state: dict[str, Any] | None) -> Iterator[Item]:
            after = (state or {}).get("after")
            for page in fetch_pages(self.config.city, after):
                yield from page.records          # dicts (or pyarrow RecordBatch / Table)
                yield State({"after": page.last_taken_at})

and registers it in ``syncline.yaml``::

    sources:
      w: {type: python, class: "weather:Weather", path: connectors, config: {city: Lisbon}}

or, once packaged, under the ``syncline.sources`` entry point group (``weather =
"my_pkg.weather:Weather"``) and then as ``{type: weather, config: {city: Lisbon}}``.

The contract of ``read``:

- yield records as dicts (values: JSON types, or ``datetime``, ``date``, ``time``,
  ``Decimal``, ``bytes``), or whole ``pyarrow.RecordBatch`` / ``pyarrow.Table`` objects;
- yield ``State({...})`` (JSON values only) after records: it promises that every
  record before it is covered. The state is committed with those records in one
  destination transaction, and the next incremental run (or a resumed, crashed
  one) calls ``read(stream, state)`` with the last committed state. End every read
  with a ``State`` so its last records are not read again;
- ``state`` is None on a first run and at the start of every full refresh;
- a record that does not fit the stream's columns is quarantined, never dropped;
- raise ``TransientError`` for failures a retry fixes (timeouts, 429, 5xx),
  ``ConfigurationError`` for ones the user must fix; any other exception fails the
  stream as a ``SourceError`` naming the class, the stream and the exception.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from syncline.errors import ConfigurationError, SourceError, TransientError
from syncline.stream import Notice

Record: TypeAlias = dict[str, Any]


@dataclass(frozen=True)
class Stream:
    """One stream a custom source offers.

    ``columns`` maps column names to canonical types (``int64``, ``string``,
    ``decimal(12,2)``, ``timestamptz``, ``json``, ...) and is then the whole schema;
    left out, the types are inferred from the first records ``read`` yields (or the
    first Arrow batch's schema). A record with a field outside the columns is
    quarantined with the reason, so declare optional fields that come late. Name
    ``cursor`` for streams whose ``read`` resumes from ``state``: it makes the stream
    incremental by default and lets ``merge`` keep the latest version of a row.
    """

    name: str
    primary_key: Sequence[str] = ()
    cursor: str | None = None
    columns: Mapping[str, str] | None = None
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        # a list passed by the author would make the dataclass unhashable and mutable
        object.__setattr__(self, "primary_key", tuple(self.primary_key))
        if self.columns is not None:
            object.__setattr__(self, "columns", dict(self.columns))


@dataclass(frozen=True)
class State:
    """A position mark: every record yielded before it is covered by ``value`` (JSON values only)."""

    value: dict[str, Any]


Item: TypeAlias = Record | pa.RecordBatch | pa.Table | State | Notice


class NoConfig(BaseModel):
    """The settings of a source that takes none."""

    model_config = ConfigDict(extra="forbid")


class SimpleSource(ABC):
    """Base class of a custom source: define ``Config``, ``streams()`` and ``read()``.

    Syncline validates the workspace's ``config:`` mapping with ``Config`` and passes
    the model as ``self.config``; ``self.name`` is the source's name in the workspace
    and ``self.root`` the workspace folder (where relative paths start).
    """

    #: The pydantic model of ``config:`` in the workspace (use ``extra="forbid"``).
    Config: ClassVar[type[BaseModel]] = NoConfig

    # Any, so an author reads ``self.config.city`` without a cast; annotate
    # ``config: Config`` in the subclass for precise typing.
    config: Any

    def __init__(self, config: BaseModel, *, name: str = "", root: str | Path = ".") -> None:
        self.config = config
        self.name = name
        self.root = Path(root)

    def check(self) -> None:
        """Raise when the source cannot be read (bad credentials, unreachable host)."""
        self.streams()

    @abstractmethod
    def streams(self) -> list[Stream]:
        """Every stream this source offers."""

    @abstractmethod
    def read(self, stream: str, state: dict[str, Any] | None) -> Iterable[Item]:
        """Records of ``stream`` after ``state`` (None: from the beginning), with ``State`` marks."""

    def close(self) -> None:
        """Release connections and files."""


__all__ = [
    "ConfigurationError",
    "Item",
    "NoConfig",
    "Notice",
    "Record",
    "SimpleSource",
    "SourceError",
    "State",
    "Stream",
    "TransientError",
]
