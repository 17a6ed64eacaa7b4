"""The workspace file ``syncline.yaml``: its model, loading, ``${env:NAME}`` references.

Errors name the file, the key path and what was expected, e.g.::

    syncline.yaml: connections.shop_to_warehouse.streams.orders.mode:
      got 'incremantal'; expected one of 'full_refresh', 'incremental', 'cdc'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from syncline import redact, regions
from syncline.alerting_config import (
    AlertRule,
    DigestConfig,
    IncidentsConfig,
    MaintenanceWindow,
    Rule,
    channel_config_model,
    effective_rules,
    known_channels,
)
from syncline.config_errors import validation_error
from syncline.config_streams import Model as _Model
from syncline.config_streams import StreamConfig as StreamConfig  # read here by the planners
from syncline.connector_files import resolve_connector
from syncline.env_refs import UnsetRef, interpolate, unset_error
from syncline.errors import ConfigurationError
from syncline.schedule import Schedule, duration_text, parse_duration, zone
from syncline.stream import lookback_seconds
from syncline.teams import Team, check_teams, connection_owners

WORKSPACE_FILE = "syncline.yaml"
#: How a stream without `table:` names its destination table.
TableNames = Literal["last_part", "schema_table"]


class RunRetry(_Model):
    """Runs again a run that ended on a transient failure, after its attempts."""

    max_runs: int = Field(1, ge=1, le=100, description="Runs in all, the first included (1: none "
                          "again). Worst case: max_runs × max_attempts attempts.")
    backoff: str = Field("5m", description="<N>s|m|h|d between a failed run and the next, doubling "
                         "each time.")

    @field_validator("backoff")
    @classmethod
    def _backoff(cls, value: str) -> str:
        parse_duration(value)
        return value


class ConnectionConfig(_Model):
    """A source replicated into a destination."""

    source: str = Field(description="Name of a source in `sources:`.")
    destination: str = Field(description="Name of a destination in `destinations:`.")
    destination_schema: str | None = Field(
        None, description="Schema of the connection's tables, normalized to snake_case as stream "
        "names are (`Sales-EU` → sales_eu; a schema already loaded under its written name keeps "
        "it). Default: the connection's name.")
    table_names: TableNames = Field(
        "last_part", description="Tables of streams without `table:`: last_part (`public.orders` → "
        "orders) or schema_table (`public.orders` → public_orders); two streams may never share one.")
    schedule: str = Field("manual", description="manual | every <N>s|m|h|d | a cron expression.")
    schedule_jitter: str | None = Field(
        None, description="<N>s|m|h|d: each scheduled run starts up to this much after its due "
        "time (the same offset for the same tick), so many connections on one schedule spread out.")
    schedule_timezone: str = Field(
        "UTC", description="The IANA time zone a cron schedule is read in, e.g. Europe/Paris "
        "(`0 9 * * *` is 9:00 there, across daylight-saving changes).")
    freshness_sla: str | None = Field(
        None, description="<N>s|m|h|d: `status` calls the connection late (and exits 1) when its "
        "last successful run is older. Default: two schedule intervals; none for manual.")
    streams: dict[str, StreamConfig] | None = Field(
        None, description="Omitted: every discovered stream, with defaults."
    )
    batch_size: int | None = Field(
        None, ge=1, le=10_000_000, description="Rows per Arrow batch and per checkpoint (default: "
        "chosen by the source: 50,000 rows, or about 24 MiB of rows for PostgreSQL tables).")
    maintenance: list[MaintenanceWindow] = Field(
        default_factory=list, description="Recurring windows when its source is expected to be "
        "down: [{cron: \"0 2 * * SUN\", for: 2h}]; nothing is notified of it then.")
    max_attempts: int = Field(3, ge=1, le=100, description="Attempts per run for transient failures.")
    source_timeout_s: float = Field(
        600, gt=0, description="A source silent for this long fails the attempt as transient."
    )
    zero_rows: Literal["auto", "warn", "fail", "ignore"] = Field(
        "auto", description="A stream reading 0 rows where recent runs read many: auto fails a full "
        "refresh (the old table is kept) and warns for incremental streams."
    )
    zero_rows_threshold: int = Field(
        1000, ge=0, description="Recent runs must have read at least this many rows for 0 to be an anomaly."
    )
    max_shrink: float = Field(
        0.9, ge=0, le=1, description="A full refresh that would leave a non-empty table with no rows, "
        "or remove more than this share of its rows, fails and keeps the table (`sync --allow-empty` "
        "lets it replace the table)."
    )

    region: str | None = Field(
        None, description="Where its runs may run: only workers of this region take them. Default: "
        "the region its source and destination name, else `default`.")
    owner: str | None = Field(
        None, description="The team of `teams:` that owns it (paged for it; docs/incidents.md). "
        "Default: its source's `owner:` (e.g. from its connector file).")
    max_run_duration: str | None = Field(
        None, description="<N>s|m|h|d: under `up`, a run still running after this is stopped "
        "(cleanly at its next batch, killed 30 s later) and fails. Default: no limit.")
    run_retry: RunRetry = Field(default_factory=RunRetry, description="Under `up`: run again a "
                                "run that ended on a transient failure.")

    anomaly_k: float = Field(
        3.0, gt=0, description="Learned baselines: a stream's rows read, or the gap between "
        "successful runs, outside median ± anomaly_k·MAD of the last 30 runs (at least 10) is an "
        "anomaly (an event; `status` shows it).")
    max_cursor_skew: str = Field(
        "1d", description="incremental: a checkpoint never goes further than this (s, m, h or d) "
        "past the source's clock; rows dated beyond it are loaded on every run under merge (and "
        "wait under append), and the run is a warning that counts them.")

    @field_validator("max_cursor_skew")
    @classmethod
    def _skew(cls, value: str) -> str:
        lookback_seconds(value)
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not regions.valid(value):
            raise ValueError(regions.RULE)
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        Schedule.parse(value)
        return value

    _durations = field_validator("schedule_jitter", "max_run_duration", "freshness_sla")(duration_text)

    @field_validator("schedule_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("streams", mode="before")
    @classmethod
    def _streams(cls, value: Any) -> Any:
        if isinstance(value, list):  # a plain list of names selects them with defaults
            return {str(v): {} for v in value}
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value


BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")


class WorkspaceModel(_Model):
    version: Literal[1] = Field(description="Format version of the workspace file.")
    metadata: str | None = Field(None, description="SQLAlchemy URL of the metadata store.")
    retention: str = Field(
        "90d", description="<N>s|m|h|d: events, runs (with attempts and stream stats) and ended "
        "queue entries older than this are deleted (hourly under `up`; `syncline store vacuum` at "
        "once). Each connection's newest run and newest successful run are kept.")
    broker: str | None = Field(
        None, description="Distributed mode: the Celery broker (redis://HOST:6379/0 or "
        "amqp://USER:PASSWORD@HOST:5672//); `up` then sends runs to Celery workers and starts none.")
    sources: dict[str, dict[str, Any]] = Field(default_factory=dict)
    destinations: dict[str, dict[str, Any]] = Field(default_factory=dict)
    connections: dict[str, ConnectionConfig] = Field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Where notifications go: `type: webhook | slack | "
        "email` each (docs/alerts.md).")
    digest: DigestConfig | None = Field(
        None, description="The Wall of Shame: failing connections by root cause, at fixed "
        "times of day, to channels (docs/alerts.md).")
    teams: dict[str, Team] = Field(
        default_factory=dict, description="Teams: members, time zone, working hours, a pair team "
        "and an on-call rotation; `managers` is the managers' (docs/incidents.md).")
    incidents: IncidentsConfig = Field(
        default_factory=IncidentsConfig, description="Incidents: `due` (21d) after opening, "
        "`mitigate_after` successful runs (docs/incidents.md).")
    alerts: dict[str, AlertRule] = Field(
        default_factory=dict, description="Alert rules: a condition over a signal or an event "
        "kind, how long it must hold, its severity and the channels told (docs/alerts.md).")

    _retention = field_validator("retention")(duration_text)

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(BROKER_SCHEMES):
            raise ValueError("expected a Redis or RabbitMQ URL: redis://HOST:6379/0 or "
                             "amqp://USER:PASSWORD@HOST:5672//")
        return value


@dataclass(frozen=True)
class Workspace:
    """A loaded, validated workspace: the folder, the file and every typed section."""

    root: Path
    file: Path
    model: WorkspaceModel
    sources: dict[str, BaseModel]
    destinations: dict[str, BaseModel]
    #: ("sources" | "destinations", name) -> the unset `${env:NAME}` references of that
    #: section, as (key path, variable): only the commands that open it fail on them
    unset_env: Mapping[tuple[str, str], tuple[UnsetRef, ...]] = field(default_factory=dict)
    #: ("sources" | "destinations", name) -> its `max_concurrent_runs:` (absent: no limit)
    limits: Mapping[tuple[str, str], int] = field(default_factory=dict)
    #: connection -> the region its runs run in (regions.py)
    regions: Mapping[str, str] = field(default_factory=dict)
    #: notification channels by name (alerting_config.py)
    channels: Mapping[str, BaseModel] = field(default_factory=dict)
    #: the alert rules that apply: built-in ones with `alerts:` merged in, and the user's own
    rules: Mapping[str, Rule] = field(default_factory=dict)
    #: connection -> the team that owns it (its `owner:`, else its source's)
    owners: Mapping[str, str] = field(default_factory=dict)

    @property
    def connections(self) -> dict[str, ConnectionConfig]:
        return self.model.connections

    @property
    def state_dir(self) -> Path:
        return self.root / ".syncline"

    def broker_url(self) -> str | None:
        """The Celery broker of distributed mode (SYNCLINE_BROKER_URL, else `broker:`), or None."""
        return os.environ.get("SYNCLINE_BROKER_URL") or self.model.broker

    def metadata_url(self) -> str:
        url = os.environ.get("SYNCLINE_METADATA_URL") or self.model.metadata
        if url:
            return url
        return f"sqlite:///{self.state_dir / 'metadata.db'}"

    def resolve_path(self, value: str | Path) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    def connection(self, name: str) -> ConnectionConfig:
        try:
            return self.connections[name]
        except KeyError:
            raise ConfigurationError(
                f"no connection named '{name}' in {self.file.name}",
                fix=f"use one of: {', '.join(sorted(self.connections)) or '(none defined)'}",
            ) from None

    def region(self, connection: str) -> str:
        return self.regions.get(connection, regions.DEFAULT)

    def source(self, name: str) -> BaseModel:
        """The typed configuration of a source, to open it: its `${env:...}` must be set."""
        if name not in self.sources:
            raise ConfigurationError(
                f"no source named '{name}' in {self.file.name}",
                fix=f"use one of: {', '.join(sorted(self.sources)) or '(none defined)'}",
            )
        self.require_env("sources", name)
        return self.sources[name]

    def destination(self, name: str) -> BaseModel:
        """The typed configuration of a destination, to open it: its `${env:...}` must be set."""
        self.require_env("destinations", name)
        return self.destinations[name]

    def require_env(self, section: str, name: str) -> None:
        refs = self.unset_env.get((section, name))
        if refs:
            raise unset_error(self.file.name, refs)


def find_workspace(path: str | Path | None = None) -> Path:
    """The workspace folder: the argument, else SYNCLINE_WORKSPACE, else the current folder."""
    chosen = path or os.environ.get("SYNCLINE_WORKSPACE") or "."
    return Path(chosen).expanduser().resolve()


def workspace_file(path: str | Path | None = None) -> Path:
    """The workspace file that `path` (or SYNCLINE_WORKSPACE, or the current folder) names."""
    root = find_workspace(path)
    file = root / WORKSPACE_FILE if root.is_dir() or not root.suffix else root
    if not file.is_file():
        raise ConfigurationError(
            f"no {WORKSPACE_FILE} in {root}",
            fix="run `syncline init` (or `syncline init --demo`) there, or pass --workspace DIR",
        )
    return file


def load_workspace(path: str | Path | None = None) -> Workspace:
    file = workspace_file(path)
    return workspace_from_document(read_document(file), root=file.parent, file=file)


def read_document(file: Path) -> dict[str, Any]:
    """The workspace file as written (`${env:...}` unresolved), its sources' connector files
    merged in: what a config revision stores."""
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigurationError(
            f"{file.name}{where}: not valid YAML ({getattr(exc, 'problem', exc)})",
            fix="fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{file.name}: expected a mapping with `version: 1` at the top")
    sources = raw.get("sources")
    if isinstance(sources, dict):
        raw["sources"] = {
            name: resolve_connector(cfg, file.parent, file.name, f"sources.{name}", _as_written)
            if isinstance(cfg, dict) else cfg
            for name, cfg in sources.items()
        }
    return raw


def workspace_from_document(document: dict[str, Any], *, root: Path, file: Path) -> Workspace:
    """A workspace from a document (read from its file or from a config revision): its
    `${env:...}` references resolved now, in this process."""
    unset: list[UnsetRef] = []
    raw = interpolate(document, (), file.name, unset)
    return parse_workspace(raw, root=root, file=file, unset=unset)


def _as_written(value: Any, *_where: Any) -> Any:
    return value


def parse_workspace(raw: dict[str, Any], *, root: Path, file: Path,
                    unset: list[UnsetRef] | None = None) -> Workspace:
    """Validate a raw workspace; `unset` are the `${env:...}` references inside sources and
    destinations left as written because their variable is not set."""
    by_section: dict[tuple[str, str], tuple[UnsetRef, ...]] = {}
    for ref in unset or []:
        section = (ref[0][0], ref[0][1])
        by_section[section] = (*by_section.get(section, ()), ref)
    from syncline.destinations.registry import destination_config_model
    from syncline.sources.registry import source_config_model

    try:
        model = WorkspaceModel.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(file.name, exc, ()) from None
    limits: dict[tuple[str, str], int] = {}
    owners: dict[str, str] = {}
    sources = {
        name: _typed(
            file.name, ("sources", name),
            _limited(file.name, ("sources", name), resolve_connector(
                cfg, root, file.name, f"sources.{name}", interpolate), limits, owners),
            source_config_model, by_section.get(("sources", name), ()),
        )
        for name, cfg in model.sources.items()
    }
    destinations = {
        name: _typed(file.name, ("destinations", name),
                     _limited(file.name, ("destinations", name), cfg, limits),
                     destination_config_model, by_section.get(("destinations", name), ()))
        for name, cfg in model.destinations.items()
    }
    channels = {name: _typed(file.name, ("channels", name), cfg, channel_config_model,
                             by_section.get(("channels", name), ()))
                for name, cfg in model.channels.items()}
    if model.digest is not None:
        known_channels(model.digest.notify, set(channels), f"{file.name}: digest.notify")
    check_teams(model.teams, set(channels), file.name)
    for name, conn in model.connections.items():
        for key, known, label in (
            ("source", sources, "sources"),
            ("destination", destinations, "destinations"),
        ):
            ref = getattr(conn, key)
            if ref not in known:
                raise ConfigurationError(
                    f"{file.name}: connections.{name}.{key}: '{ref}' is not defined",
                    connection=None,
                    fix=f"define it under `{label}:` or use one of: {', '.join(sorted(known)) or '(none)'}",
                )
    for typed in (*sources.values(), *destinations.values(), *channels.values()):
        redact.remember_config(typed)
    return Workspace(root=root, file=file, model=model, sources=sources, destinations=destinations,
                     unset_env=by_section, limits=limits, channels=channels,
                     rules=effective_rules(model.alerts, set(channels), file.name, bool(model.teams)),
                     owners=connection_owners(model.connections, owners, model.teams, file.name),
                     regions=regions.connection_regions(raw, file.name))


def _limited(file: str, path: tuple[str, str], cfg: dict[str, Any],
             limits: dict[tuple[str, str], int], owners: dict[str, str] | None = None) -> dict[str, Any]:
    """`max_concurrent_runs:`, `region:` and (a source's) `owner:`, keys of every type: taken
    out of the connector's own keys (into `limits` and `owners`; regions are read from the
    document by regions.connection_regions)."""
    if owners is not None and cfg.get("owner") is not None:
        owners[path[1]] = str(cfg["owner"])
    taken = ("region", "owner") if owners is not None else ("region",)
    cfg = {k: v for k, v in cfg.items() if k not in taken}
    if "max_concurrent_runs" not in cfg:
        return cfg
    value = cfg.pop("max_concurrent_runs")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{file}: {'.'.join(path)}.max_concurrent_runs: got {value!r}; expected a whole "
            "number of runs, at least 1", fix="set it to e.g. 2, or remove it for no limit")
    limits[path] = value
    return cfg


def _typed(
    file: str, path: tuple[str, ...], cfg: dict[str, Any], lookup: Any,
    unset: tuple[UnsetRef, ...] = (),
) -> BaseModel:
    kind = cfg.get("type")
    where = ".".join(path)
    try:
        model_cls = lookup(kind)
    except KeyError as exc:
        raise ConfigurationError(
            f"{file}: {where}.type: got {kind!r}; expected one of {exc.args[0]}",
            fix=f"set `type:` of {where} to a supported type",
        ) from None
    try:
        return model_cls.model_validate(cfg)  # type: ignore[no-any-return]
    except ValidationError as exc:
        if unset:  # `${env:PORT}` left as written is no port: opening it names the variable
            return model_cls.model_construct(**cfg)  # type: ignore[no-any-return]
        raise validation_error(file, exc, path) from None
