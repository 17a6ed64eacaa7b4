"""With an OpenTelemetry provider, each run is a trace: run → attempt → stream → read / stage /
commit spans with rows and bytes; without one, nothing is traced."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from syncline.engine import tracing

from syncfixtures import make_items, run_sync, write_ws


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_provider(None)


def test_a_run_is_a_trace_of_its_attempts_streams_reads_stages_and_commits(
        tmp_path: Path, spans: InMemorySpanExporter) -> None:
    make_items(tmp_path / "src.db", 2500)
    write_ws(tmp_path, {"items": {"mode": "incremental", "cursor": "updated_at", "write": "merge"}},
             batch_size=1000)
    result = run_sync(tmp_path)
    assert result.status == "succeeded"
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}

    def parent(s: object) -> str | None:
        p = getattr(s, "parent", None)
        return by_id[p.span_id].name if p is not None and p.span_id in by_id else None

    [run] = [s for s in finished if s.name == "run"]
    assert run.attributes is not None and run.attributes["rows_committed"] == 2500
    assert run.attributes["connection"] == "c" and run.attributes["status"] == "succeeded"
    [attempt] = [s for s in finished if s.name == "attempt"]
    [stream] = [s for s in finished if s.name == "stream"]
    assert (parent(attempt), parent(stream)) == ("run", "attempt")
    assert stream.attributes is not None and stream.attributes["rows_read"] == 2500
    assert stream.attributes["bytes"] > 0
    reads = [s for s in finished if s.name == "read" and s.attributes and "rows" in s.attributes]
    stages = [s for s in finished if s.name == "stage"]
    commits = [s for s in finished if s.name == "commit"]
    assert sum(s.attributes["rows"] for s in reads) == 2500  # type: ignore[index]
    assert sum(s.attributes["rows"] for s in stages) == 2500  # type: ignore[index]
    assert len(commits) >= 3 and {parent(s) for s in [*reads, *stages, *commits]} == {"stream"}
    assert len({s.context.trace_id for s in finished}) == 1  # one trace


def test_without_a_provider_nothing_is_traced(tmp_path: Path) -> None:
    tracing.use_provider(None)
    assert not tracing.enabled()
    with tracing.span("run") as current:
        assert current is None
