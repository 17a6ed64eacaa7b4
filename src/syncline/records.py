"""Python rows to Arrow batches of a known schema, with bad rows set apart."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from syncline.schema import MAX_DECIMAL_PRECISION, DataType, StreamSchema
from syncline.stream import BadRecord

Converter = Callable[[Any], Any]


def _to_decimal(t: DataType) -> Converter:
    assert t.scale is not None and t.precision is not None
    scale = t.scale
    quantum = decimal.Decimal(1).scaleb(-t.scale)
    limit = decimal.Decimal(10) ** (t.precision - t.scale)
    # quantize in the default context (28 digits) fails on valid decimal(38, s) values
    context = decimal.Context(prec=MAX_DECIMAL_PRECISION + 2)

    def convert(v: Any) -> Any:
        if v is None:
            return None
        if (isinstance(v, decimal.Decimal) and v.is_finite() and v.copy_abs() < limit
                and v.as_tuple().exponent == -scale):
            return v
        if isinstance(v, bool):
            raise ValueError(f"boolean {v!r} is not a decimal")
        d = decimal.Decimal(repr(v)) if isinstance(v, float) else decimal.Decimal(str(v).strip())
        if not d.is_finite():
            raise ValueError(f"{v!r} is not a finite decimal")
        if d.copy_abs() >= limit:
            raise ValueError(f"{v!r} does not fit {t}")
        q = d.quantize(quantum, rounding=decimal.ROUND_HALF_EVEN, context=context)
        if q != d:  # never round silently: 1.234 in a decimal(10,2) is a bad record
            raise ValueError(f"{v!r} has more than {t.scale} decimal places")
        return q

    return convert


def _to_int(v: Any) -> Any:
    if v is None or type(v) is int:
        return v
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        if v.is_integer():
            return int(v)
        raise ValueError(f"{v!r} is not an integer")
    return int(str(v).strip())


def _to_float(v: Any) -> Any:
    if v is None or type(v) is float:
        return v
    return float(v)


_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def _to_bool(v: Any) -> Any:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"{v!r} is not a boolean")


def _to_str(v: Any) -> Any:
    if v is None or type(v) is str:
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8")
    return str(v)


def _to_json(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (bytes, str)):
        json.loads(v)  # must parse; the text itself is kept as the source wrote it
        return v if isinstance(v, str) else v.decode("utf-8")
    return json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)


def _to_bytes(v: Any) -> Any:
    if v is None or isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    return bytes(v)


def bytea_hex(v: str) -> bytes:
    """PostgreSQL's bytea text in hex output format (\\x00ff) to its bytes."""
    if not v.startswith("\\x"):
        raise ValueError("bytea not in hex output format")
    return bytes.fromhex(v[2:])


def parse_timestamp(v: Any, *, aware: bool) -> dt.datetime | None:
    """ISO text, a datetime, or epoch seconds to a datetime; aware ones in UTC."""
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        ts = v
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        ts = dt.datetime.fromtimestamp(v, tz=dt.UTC)
    elif isinstance(v, dt.date):
        ts = dt.datetime(v.year, v.month, v.day)
    else:
        s = str(v).strip()
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        ts = dt.datetime.fromisoformat(s)
    if aware:
        return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)
    return ts if ts.tzinfo is None else ts.astimezone(dt.UTC).replace(tzinfo=None)


def _to_date(v: Any) -> Any:
    if v is None or (isinstance(v, dt.date) and not isinstance(v, dt.datetime)):
        return v
    if isinstance(v, dt.datetime):
        return v.date()
    return dt.date.fromisoformat(str(v).strip()[:10])


def _to_time(v: Any) -> Any:
    if v is None or isinstance(v, dt.time):
        return v
    return dt.time.fromisoformat(str(v).strip())


def _to_uuid(v: Any) -> Any:
    """A uuid in its canonical text: lowercase, hyphenated."""
    if v is None:
        return None
    return str(v if isinstance(v, uuid.UUID) else uuid.UUID(str(v).strip()))


# ISO 8601 with designators, as PostgreSQL writes intervals under IntervalStyle iso_8601:
# every part may carry its own sign (P-1Y2M, PT-1H-2M-3.5S)
_ISO_INTERVAL = re.compile(
    r"P(?:(?P<y>[-+]?\d+)Y)?(?:(?P<mo>[-+]?\d+)M)?(?:(?P<w>[-+]?\d+)W)?(?:(?P<d>[-+]?\d+)D)?"
    r"(?:T(?:(?P<h>[-+]?\d+)H)?(?:(?P<mi>[-+]?\d+)M)?(?:(?P<s>[-+]?\d+(?:\.\d+)?)S)?)?")
_NANOS = 2**63


def parse_interval(text: str) -> pa.MonthDayNano:
    """ISO 8601 duration text to (months, days, nanoseconds), each part kept apart."""
    m = _ISO_INTERVAL.fullmatch(text.strip())
    if m is None or text.strip() in ("P", "PT"):
        raise ValueError(f"{text!r} is not an ISO 8601 interval")
    part = {k: int(v) for k, v in m.groupdict().items() if v is not None and k != "s"}
    seconds = decimal.Decimal(m.group("s") or 0)
    nanos = ((part.get("h", 0) * 60 + part.get("mi", 0)) * 60 + seconds) * 1_000_000_000
    if nanos != nanos.to_integral_value() or not -_NANOS <= nanos < _NANOS:
        raise ValueError(f"{text!r} does not fit an interval of nanoseconds")
    return pa.MonthDayNano([part.get("y", 0) * 12 + part.get("mo", 0),
                            part.get("w", 0) * 7 + part.get("d", 0), int(nanos)])


def _to_interval(v: Any) -> Any:
    if v is None or isinstance(v, pa.MonthDayNano):
        return v
    if isinstance(v, dt.timedelta):  # days and the time of day, never months
        return pa.MonthDayNano([0, v.days, (v.seconds * 1_000_000 + v.microseconds) * 1000])
    return parse_interval(str(v))


_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _to_int_of(t: DataType) -> Converter:
    low, high = _INT_RANGE[t.kind]

    def convert(v: Any) -> Any:
        i = _to_int(v)
        if i is not None and not low <= i <= high:
            raise ValueError(f"{v!r} does not fit {t}")
        return i

    return convert


def list_converter(t: DataType, element: Converter | None = None) -> Converter:
    """A list from a sequence or its JSON text (numbers kept exact), element by element through
    ``element`` (default: the element type's converter). A nested array is refused: a list is
    one-dimensional."""
    assert t.element is not None
    nested_ok = t.element.kind == "json"
    convert = element or converter_for(t.element)

    def one(x: Any) -> Any:
        if isinstance(x, (list, tuple, dict)) and not nested_ok:
            raise ValueError(f"a nested array has no {t} form (declare the column json)")
        return None if x is None else convert(x)

    def to_list(v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, (str, bytes)):
            # exact numbers for the elements; a json element keeps JSON's own numbers
            v = json.loads(v) if nested_ok else json.loads(v, parse_float=decimal.Decimal)
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"{v!r} is not an array")
        return [one(x) for x in v]

    return to_list


def converter_for(t: DataType) -> Converter:
    if t.kind == "list":
        return list_converter(t)
    if t.kind == "decimal":
        return _to_decimal(t)
    if t.kind in _INT_RANGE:
        return _to_int_of(t)
    if t.kind == "timestamp":
        return lambda v: parse_timestamp(v, aware=False)
    if t.kind == "timestamptz":
        return lambda v: parse_timestamp(v, aware=True)
    return _CONVERTERS[t.kind]


_CONVERTERS: dict[str, Converter] = {
    "boolean": _to_bool,
    "int32": _to_int,
    "int64": _to_int,
    "float64": _to_float,
    "string": _to_str,
    "json": _to_json,
    "binary": _to_bytes,
    "date": _to_date,
    "time": _to_time,
    "uuid": _to_uuid,
    "interval": _to_interval,
}


def rows_to_batch(
    rows: Sequence[Sequence[Any]], schema: StreamSchema
) -> tuple[pa.RecordBatch, list[BadRecord]]:
    """Build one Arrow batch from row tuples in schema column order.

    Each column first goes through Arrow's vectorised conversions; a column Arrow
    refuses is converted value by value, and any row holding an unconvertible
    value is set apart as a ``BadRecord`` with the reason, never dropped silently.
    """
    arrow_schema = schema.arrow_schema()
    columns = list(zip(*rows)) if rows else [() for _ in schema.columns]
    arrays: list[pa.Array] = []
    bad_rows: dict[int, str] = {}
    for col, values in zip(schema.columns, columns):
        arrow_type = arrow_schema.field(col.name).type
        try:
            arrays.append(fast_array(col.type, values, arrow_type))
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError,
                ValueError, OverflowError):
            pass
        convert = converter_for(col.type)
        out: list[Any] = []
        for i, v in enumerate(values):
            try:
                out.append(convert(v))
            except (ValueError, TypeError, ArithmeticError, UnicodeDecodeError) as exc:
                bad_rows.setdefault(i, f"column {col.name}: {exc}")
                out.append(None)
        arrays.append(pa.array(out, type=arrow_type))
    bad: list[BadRecord] = []
    if bad_rows:
        keep = pa.array([i for i in range(len(rows)) if i not in bad_rows], type=pa.int64())
        arrays = [a.take(keep) for a in arrays]
        bad = [
            BadRecord(record=dict(zip(schema.column_names, rows[i])), error=reason)
            for i, reason in sorted(bad_rows.items())
        ]
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema), bad


def fast_array(t: DataType, values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array:
    """Arrow's own conversion of a column; raises when any value needs the careful path."""
    if t.kind in ("int32", "int64", "float64", "string", "binary"):
        return pa.array(values, type=arrow_type)
    if t.kind == "boolean":
        ints = pa.array(values, type=pa.int64())
        if pc.all(pc.is_in(ints.drop_null(), value_set=_ZERO_ONE)).as_py() is False:
            raise ValueError("an integer other than 0 or 1")
        return ints.cast(pa.bool_())
    if t.kind == "json":
        text = pa.array(values, type=pa.string())
        if not _json_valid(text):
            raise ValueError("invalid JSON")
        return text
    if t.kind == "list":
        raise ValueError("lists are converted element by element")
    if t.kind == "uuid":
        text = pa.array(values, type=pa.string())
        if pc.all(pc.match_substring_regex(text.drop_null(), UUID_TEXT)).as_py() is False:
            raise ValueError("a uuid not in canonical text")
        return text
    inferred = pa.array(values)
    if pa.types.is_floating(inferred.type) and t.kind == "decimal":
        inferred = inferred.cast(pa.string())
    if pa.types.is_null(inferred.type):
        return pa.nulls(len(values), type=arrow_type)
    return inferred.cast(arrow_type)


UUID_TEXT = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_ZERO_ONE = pa.array([0, 1], type=pa.int64())


def _json_valid(text: pa.Array) -> bool:
    """Vectorised JSON validation (json.loads per value costs more than the whole load)."""
    global _JSON_CHECKER
    if len(text) < 2000:  # below this, a DuckDB round trip costs more than parsing
        try:
            for v in text.to_pylist():
                if v is not None:
                    json.loads(v)
        except ValueError:
            return False
        return True
    if _JSON_CHECKER is None:
        import duckdb

        _JSON_CHECKER = duckdb.connect()
    _JSON_CHECKER.register("_syncline_json", pa.table({"v": text}))
    try:
        row = _JSON_CHECKER.execute(
            "SELECT count(*) FILTER (WHERE v IS NOT NULL AND NOT json_valid(v)) FROM _syncline_json"
        ).fetchall()[0]
    finally:
        _JSON_CHECKER.unregister("_syncline_json")
    return row is not None and row[0] == 0


_JSON_CHECKER: Any = None
