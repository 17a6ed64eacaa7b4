"""MariaDB binlog values as the text the snapshot's SELECT gives, so both go through one conversion."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from dataclasses import dataclass
from typing import Any

from syncline.schema import Column
from syncline.sources.mysql.types import SPATIAL_TYPES, TEXT_TYPES, native_base

_EPOCH = dt.datetime(1970, 1, 1)  # the binlog's zero TIMESTAMP
_ZERO_DATES = ("out of date range", "out of datetime range", "out of datetime2 range")
_WIDTH = {"inet6": 16, "uuid": 16, "inet4": 4}  # fixed-width types whose binlog image drops trailing zeros


@dataclass(frozen=True)
class BinlogColumn:
    """What turns a binlog value of a column into the text the snapshot's SELECT gives."""

    name: str
    base: str
    kind: str
    fsp: int  # TIME's fractional digits
    width: int  # bytes of a fixed-width binary type (0: not one)
    server: str | None  # SQL that turns the binlog bytes into the snapshot's text


def binlog_column(col: Column) -> BinlogColumn:
    """How a stream column's binlog values become the snapshot's text."""
    base, kind = native_base(col.native_type), col.type.kind
    name = re.match(r"\w*", (col.native_type or "").lower())
    word = name.group(0) if name else base  # 'inet6', where native_base gives 'inet'
    m = re.search(r"\((\d+)\)", col.native_type or "")
    size = int(m.group(1)) if m else 0
    server = None
    if kind == "string" and base not in TEXT_TYPES | {"time", "decimal", "numeric"}:
        server = "ST_AsText(%s)" if base in SPATIAL_TYPES else f"CAST(CAST(%s AS {word}) AS CHAR)"
    return BinlogColumn(col.name, base, kind, size if base == "time" else 0,
                size if base == "binary" else _WIDTH.get(word, 0), server)


def binlog_text(col: BinlogColumn, value: Any, why: str | None, lib: Any) -> Any:
    """A binlog value as the text (bytes for binary) the snapshot reads: one conversion for both."""
    if value is None:
        if why in _ZERO_DATES:  # the same zero-date rules as the snapshot (see `types`)
            return "0000-00-00" if col.base == "date" else "0000-00-00 00:00:00"
        return "" if why == "empty set" else None
    if isinstance(value, set):  # SET members in definition order, as the server writes them
        return ",".join(v for v in lib.set_values if v in value)
    if col.base == "bit":
        return str(int(value, 2))
    if col.kind == "boolean" and isinstance(value, bool):
        return "1" if value else "0"  # an integer stays itself: 2 is no boolean (quarantined)
    if col.base == "year":
        return "0" if value == 1900 else str(value)  # YEAR 0000 is logged as byte 0
    if col.base == "float":
        return f"{value:.6g}"  # the server prints FLOAT with 6 significant digits
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.timedelta):
        return _time_text(value, col.fsp)
    if isinstance(value, dt.datetime):
        if col.base == "timestamp" and value == _EPOCH:
            return "0000-00-00 00:00:00"
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if col.kind == "binary" or col.width:
        data = value if isinstance(value, bytes) else str(value).encode()
        return data.ljust(col.width, b"\x00")  # BINARY(n) and INET6 lose trailing zero bytes
    return str(value) if isinstance(value, int) else value


def _time_text(value: dt.timedelta, fsp: int) -> str:
    us = value // dt.timedelta(microseconds=1)
    sign, us = "-" if us < 0 else "", abs(us)
    seconds, fraction = divmod(us, 1_000_000)
    text = f"{sign}{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{text}.{fraction:06d}"[: len(text) + 1 + fsp] if fsp else text
