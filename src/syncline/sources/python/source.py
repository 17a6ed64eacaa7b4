"""The python source: runs a custom ``syncline.sdk.SimpleSource`` class as a Syncline source.

The checkpoint of a stream is ``{"state": <the last State the connector yielded>}``.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from syncline.errors import ConfigurationError, SourceError, SynclineError, TransientError
from syncline.schema import (
    Column,
    DataType,
    StreamSchema,
    from_arrow,
)
from syncline.sdk import SimpleSource, State, Stream
from syncline.sources.base import Source, SourceContext
from syncline.sources.python.records import arrow_to_items, infer_schema, records_to_items
from syncline.sources.registry import plugin_entry_point
from syncline.stream import Checkpoint, Notice, ReadRequest, StreamItem

#: Records ``discover`` reads to infer the types of a stream that declares no columns.

SAMPLE_RECORDS = 1000


class PythonConfig(BaseModel):
    """A custom source class, imported from a module of the workspace or an installed package."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["python"]
    class_: str = Field(
        alias="class", pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
        description="The SimpleSource subclass as `module:Class`, e.g. `my_pkg.weather:Weather`.",
    )
    path: str | None = Field(
        None, description="Folder added to the import path first; relative paths start at the workspace.",
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="The class's own settings, validated by its `Config` model.",
    )


class PluginConfig(BaseModel):
    """A custom source installed under the ``syncline.sources`` entry point group."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str = Field(description="The entry point's name.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="The class's own settings, validated by its `Config` model.",
    )


class PythonSource(Source):
    """Adapts a SimpleSource: records to Arrow batches, State to checkpoints, errors to the tree."""

    config: PythonConfig | PluginConfig

    def __init__(self, name: str, config: BaseModel, context: SourceContext) -> None:
        super().__init__(name, config, context)
        self.where = f"sources.{name}"
        cls = self._load_class()
        self.label = f"{cls.__module__}.{cls.__qualname__}"
        settings = self._settings(cls)
        self.connector: SimpleSource = self._call(
            lambda: cls(settings, name=name, root=context.root), "__init__", None)
        self._streams: dict[str, Stream] | None = None
        self._schemas: dict[str, StreamSchema] = {}

    # -- loading the class -----------------------------------------------------------

    def _load_class(self) -> type[SimpleSource]:
        cfg = self.config
        if isinstance(cfg, PythonConfig):
            key, target = f"{self.where}.class", cfg.class_
            if cfg.path is not None:
                folder = Path(cfg.path).expanduser()
                folder = folder if folder.is_absolute() else Path(self.context.root) / folder
                if not folder.is_dir():
                    raise ConfigurationError(
                        f"{self.where}.path: folder {folder} does not exist",
                        fix="point `path:` at the folder holding the connector's module "
                            "(relative paths start at the workspace)")
                if str(folder) not in sys.path:
                    sys.path.insert(0, str(folder))
        else:
            ep = plugin_entry_point(cfg.type)
            if ep is None:
                raise ConfigurationError(f"{self.where}.type: no installed connector is named {cfg.type!r}",
                                         fix="install its package, or check the spelling of `type:`")
            key, target = f"{self.where}.type ({cfg.type} = {ep.value})", ep.value
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            ours = exc.name is not None and (module_name + ".").startswith(exc.name + ".")
            raise ConfigurationError(
                f"{key}: no module named {module_name!r}" if ours
                else f"{key}: module {module_name!r} imports {exc.name!r}, which is not installed",
                fix=f"set `path:` to the folder holding {module_name.replace('.', '/')}.py, or "
                    "install its package" if ours else f"install the package providing {exc.name!r}",
            ) from None
        except Exception as exc:  # the module's own code failed while importing
            raise ConfigurationError(f"{key}: importing {module_name!r} failed: {_last_line(exc)}",
                                     fix=f"fix the module ({_origin(exc)})") from None
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part, None)
        if obj is None:
            found = sorted(n for n, v in vars(module).items()
                           if isinstance(v, type) and issubclass(v, SimpleSource) and v is not SimpleSource)
            raise ConfigurationError(f"{key}: module {module_name!r} has no {attr!r}",
                                     fix=f"use one of its sources: {', '.join(found) or '(none)'}")
        if not (isinstance(obj, type) and issubclass(obj, SimpleSource)):
            raise ConfigurationError(f"{key}: {target} is not a subclass of syncline.sdk.SimpleSource",
                                     fix="derive the connector class from syncline.sdk.SimpleSource")
        return obj

    def _settings(self, cls: type[SimpleSource]) -> BaseModel:
        """The workspace's ``config:`` validated by the class's Config, errors naming each key."""
        raw = self.config.config
        model = cls.Config
        where = f"{self.where}.config"
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ConfigurationError(f"{where}: {self.label}.Config is not a pydantic model",
                                     fix="declare `class Config(pydantic.BaseModel)` in the connector")
        lines, fix = [], "fix each key listed above"
        if model.model_config.get("extra") in (None, "ignore"):
            # a typo must never silently fall back to a default, whatever the author's model says
            known = set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}
            for key in sorted(set(raw) - known):
                lines.append(f"{where}.{key}: unknown key")
                fix = f"remove it; {cls.__name__} takes: {', '.join(sorted(known)) or '(nothing)'}"
        try:
            settings = model.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                name = str(err["loc"][0]) if err["loc"] else ""
                info = model.model_fields.get(name)
                about = f" ({info.description})" if info is not None and info.description else ""
                if err["type"] == "missing":
                    lines.append(f"{where}.{loc}: required key is missing")
                    fix = f"add `{loc}:` under {where}{about}"
                elif err["type"] == "extra_forbidden":
                    lines.append(f"{where}.{loc}: unknown key")
                    fix = f"remove it; {cls.__name__} takes: {', '.join(model.model_fields) or '(nothing)'}"
                else:
                    lines.append(f"{where}.{loc}: got {err.get('input')!r}; {err['msg']}")
                    fix = f"set {where}.{loc} to a valid value{about}"
        if lines:
            raise ConfigurationError("\n".join(lines), fix=fix if len(lines) == 1 else "fix each key listed above")
        return settings

    # -- errors ----------------------------------------------------------------------

    def _failure(self, exc: Exception, method: str, stream: str | None) -> SynclineError:
        if isinstance(exc, SynclineError):
            return exc.at(stream=stream)
        if isinstance(exc, (ConnectionError, TimeoutError)):  # the network, not the connector
            return TransientError(
                f"source '{self.name}': {self.label}.{method}() raised {_last_line(exc)}",
                stream=stream, fix="retried automatically",
            )
        return SourceError(
            f"source '{self.name}': {self.label}.{method}() raised {_last_line(exc)} ({_origin(exc)})",
            stream=stream,
            fix="fix the connector; raise syncline.sdk.TransientError for failures a retry fixes",
        )

    def _call(self, fn: Callable[[], Any], method: str, stream: str | None) -> Any:
        try:
            return fn()
        except Exception as exc:
            raise self._failure(exc, method, stream) from exc

    def _items(self, stream: str, state: dict[str, Any] | None) -> Iterator[Any]:
        """The connector's items for one read; its exceptions mapped onto the error tree."""
        it = self._call(lambda: iter(self.connector.read(stream, state)), "read", stream)
        try:
            while True:
                try:
                    item = next(it)
                except StopIteration:
                    return
                except Exception as exc:
                    raise self._failure(exc, "read", stream) from exc
                yield item
        finally:
            close = getattr(it, "close", None)
            if close is not None:  # a stopped read runs the connector's finally/with blocks
                close()

    # -- Source interface ------------------------------------------------------------

    def check(self) -> None:
        self._call(self.connector.check, "check", None)
        self._declared()

    def _declared(self) -> dict[str, Stream]:
        if self._streams is None:
            streams = self._call(self.connector.streams, "streams", None)
            if not isinstance(streams, list) or not all(isinstance(s, Stream) for s in streams):
                raise SourceError(f"source '{self.name}': {self.label}.streams() must return a list of "
                                  f"syncline.sdk.Stream, not {streams!r:.80}")
            names = [s.name for s in streams]
            if len(set(names)) != len(names):
                raise SourceError(f"source '{self.name}': {self.label}.streams() names a stream twice: "
                                  f"{', '.join(names)}")
            self._streams = {s.name: s for s in streams}
        return self._streams

    def _stream(self, name: str) -> Stream:
        streams = self._declared()
        if name not in streams:
            raise ConfigurationError(f"source '{self.name}' has no stream '{name}'",
                                     fix=f"use one of: {', '.join(streams)}")
        return streams[name]

    def discover(self) -> list[StreamSchema]:
        return [self._schema(s) for s in self._declared().values()]

    def _schema(self, stream: Stream) -> StreamSchema:
        if stream.name not in self._schemas:
            schema = self._declared_schema(stream) if stream.columns is not None else self._inferred(stream)
            missing = [c for c in (*stream.primary_key, *([stream.cursor] if stream.cursor else []))
                       if schema.column(c) is None]
            if missing:
                raise SourceError(
                    f"source '{self.name}': primary_key/cursor column(s) {', '.join(missing)} of "
                    f"stream '{stream.name}' are not among its columns",
                    stream=stream.name, fix=f"fix {self.label}.streams(); columns: "
                                            f"{', '.join(schema.column_names)}")
            self._schemas[stream.name] = schema
        return self._schemas[stream.name]

    def _declared_schema(self, stream: Stream) -> StreamSchema:
        assert stream.columns is not None
        columns = []
        for name, text in stream.columns.items():
            try:
                t = DataType.parse(text)
            except ValueError as exc:
                raise SourceError(f"source '{self.name}': {self.label}.streams(): column '{name}': {exc}",
                                  stream=stream.name,
                                  fix="use a canonical type: boolean, int32, int64, decimal(p,s), float64, "
                                      "string, binary, date, time, timestamp, timestamptz, json") from None
            columns.append(Column(name, t, nullable=name not in stream.primary_key, native_type=text))
        return StreamSchema(stream.name, tuple(columns), tuple(stream.primary_key),
                            (stream.cursor,) if stream.cursor else ())

    def _inferred(self, stream: Stream) -> StreamSchema:
        records: list[dict[str, Any]] = []
        arrow: pa.Schema | None = None
        for item in self._items(stream.name, None):
            if isinstance(item, dict):
                records.append(item)
            elif isinstance(item, (pa.RecordBatch, pa.Table)) and not records:
                arrow = item.schema
            if arrow is not None or len(records) >= SAMPLE_RECORDS:
                break
        cursors = (stream.cursor,) if stream.cursor else ()
        if arrow is not None:
            columns = tuple(Column(f.name, from_arrow(f.type, f.metadata), f.name not in stream.primary_key,
                                   str(f.type)) for f in arrow)
            return StreamSchema(stream.name, columns, tuple(stream.primary_key), cursors)
        schema = infer_schema(stream, records)
        if not records:
            schema = replace(schema, notes=("no records to infer types from: columns guessed as text; "
                                            "declare them with Stream(columns={...})",))
        return schema

    def read(self, request: ReadRequest) -> Iterator[StreamItem]:
        stream = self._stream(request.stream.name)
        # A fresh full refresh starts over; a resumed one (a checkpoint of its own build) and
        # an incremental read continue after the last committed state.
        state = (request.checkpoint or {}).get("state")
        pending: list[dict[str, Any]] = []
        for item in self._items(stream.name, state):
            if isinstance(item, dict):
                pending.append(item)
                if len(pending) >= request.batch_size:
                    yield from records_to_items(pending, request.stream)
                    pending = []
                continue
            yield from records_to_items(pending, request.stream)
            pending = []
            if isinstance(item, State):
                yield Checkpoint({"state": self._state(item, stream.name)})
            elif isinstance(item, (pa.RecordBatch, pa.Table)):
                yield from arrow_to_items(item, request.stream, request.batch_size)
            elif isinstance(item, Notice):
                yield item
            else:
                raise SourceError(
                    f"source '{self.name}': {self.label}.read() yielded a {type(item).__name__}; "
                    "expected a dict, a pyarrow RecordBatch or Table, a State or a Notice",
                    stream=stream.name, fix="yield records as dicts and positions as State({...})")
        yield from records_to_items(pending, request.stream)

    def _state(self, state: State, stream: str) -> Any:
        # A copy through JSON: the engine commits a mark after later items were read, so a
        # dict the connector keeps mutating must not change the committed position.
        try:
            if not isinstance(state.value, dict):
                raise TypeError(f"State takes a dict, not a {type(state.value).__name__}")
            return json.loads(json.dumps(state.value, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise SourceError(f"source '{self.name}': {self.label}.read() yielded a State that is not "
                              f"JSON: {exc}", stream=stream,
                              fix="keep only str, int, float, bool, None, lists and dicts in State; "
                                  "store timestamps as ISO text") from None

    def close(self) -> None:
        self._call(self.connector.close, "close", None)


# -- records to Arrow ------------------------------------------------------------------


def _last_line(exc: BaseException) -> str:
    return traceback.format_exception_only(exc)[-1].strip()


def _origin(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "no traceback"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} in {last.name}"


__all__ = ["PluginConfig", "PythonConfig", "PythonSource"]
