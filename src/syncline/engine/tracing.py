"""Traces: with the `syncline[otel]` extra installed and OTEL_EXPORTER_OTLP_ENDPOINT set, each
run is an OpenTelemetry trace: run → attempt → stream → read / stage / commit spans, with
rows and bytes as attributes. Without either, every call here does nothing and costs nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LOCK = threading.Lock()
_TRACER: Any = None
_DECIDED = False


def use_provider(provider: Any) -> None:
    """Trace into `provider` (an SDK TracerProvider: tests use an in-memory exporter)."""
    global _TRACER, _DECIDED
    with _LOCK:
        _TRACER = provider.get_tracer("syncline") if provider is not None else None
        _DECIDED = True


def _tracer() -> Any:
    global _TRACER, _DECIDED
    if _DECIDED:
        return _TRACER
    with _LOCK:
        if not _DECIDED:
            _DECIDED = True
            if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
                _TRACER = _otlp_tracer()
    return _TRACER


def _otlp_tracer() -> Any:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        return None  # the extra is not installed: no traces
    provider = TracerProvider(resource=Resource.create({"service.name": "syncline"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider.get_tracer("syncline")


def enabled() -> bool:
    return _tracer() is not None


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    """A span of the current trace (a child of the current span), or nothing."""
    tracer = _tracer()
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(name, attributes={k: v for k, v in attributes.items()
                                                         if v is not None}) as current:
        yield current


def note(current: Any, **attributes: Any) -> None:
    """Set attributes on a span `span` gave (nothing when tracing is off)."""
    if current is not None:
        for key, value in attributes.items():
            if value is not None:
                current.set_attribute(key, value)
