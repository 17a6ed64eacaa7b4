"""Syncline: replicate databases, APIs and files into a warehouse, complete, correct and fresh."""

from __future__ import annotations

from syncline.config import Workspace, load_workspace
from syncline.destinations.base import Destination, LoadTarget, StreamLoader
from syncline.errors import (
    ConcurrencyError,
    ConfigurationError,
    ContractError,
    DataError,
    DestinationError,
    IntegrityError,
    InternalError,
    Interrupted,
    SourceError,
    SynclineError,
    TransientError,
)
from syncline.schema import Column, DataType, StreamSchema
from syncline.sources.base import Source, SourceContext
from syncline.stream import BadRecord, Checkpoint, ReadRequest

__version__ = "0.1.0"

__all__ = [
    "BadRecord",
    "Checkpoint",
    "Column",
    "ConcurrencyError",
    "ConfigurationError",
    "ContractError",
    "DataError",
    "DataType",
    "Destination",
    "DestinationError",
    "IntegrityError",
    "InternalError",
    "Interrupted",
    "LoadTarget",
    "ReadRequest",
    "Source",
    "SourceContext",
    "SourceError",
    "StreamLoader",
    "StreamSchema",
    "SynclineError",
    "TransientError",
    "Workspace",
    "__version__",
    "load_workspace",
]
