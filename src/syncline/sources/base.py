"""The Source interface every connector implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from pydantic import BaseModel

from syncline.schema import StreamSchema
from syncline.stream import ReadRequest, StreamItem


class Source(ABC):
    """A configured connector that reads.

    ``read`` yields Arrow record batches in the stream's ``arrow_schema()``,
    interleaved with ``Checkpoint`` marks (everything before a mark is covered
    by it) and ``BadRecord`` items for rows that cannot be represented.
    """

    #: Modes this source can serve.
    modes: frozenset[str] = frozenset({"full_refresh", "incremental"})
    #: False when the source tracks its own position (file offsets, page tokens).
    incremental_needs_cursor: bool = True

    def __init__(self, name: str, config: BaseModel, context: SourceContext) -> None:
        self.name = name
        self.config = config
        self.context = context

    @abstractmethod
    def check(self) -> None:
        """Raise a ConfigurationError or SourceError when the source cannot be read."""

    @abstractmethod
    def discover(self) -> list[StreamSchema]:
        """Every stream the source offers, with columns, primary key and cursor candidates."""

    @abstractmethod
    def read(self, request: ReadRequest) -> Iterator[StreamItem]:
        """Rows of one stream after ``request.checkpoint``, in bounded batches."""

    def count(self, stream: StreamSchema) -> int | None:
        """Rows the stream holds now, when cheap to know (for verification)."""
        return None

    def close(self) -> None:
        """Release connections and files."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SourceContext(BaseModel):
    """What a source may know of its surroundings: where relative paths start."""

    root: str
