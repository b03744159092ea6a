"""End to end with the real OpenTelemetry SDK: spans → OTLP protobuf → Ingestor."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from rootgraph.ingest.pipeline import Ingestor
from rootgraph.ingest.sink import InMemorySink


class ListExporter(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _provider(service: str) -> tuple[TracerProvider, ListExporter]:
    exporter = ListExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.version": "3.1"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_sdk_spans_from_two_services_pair_into_edges() -> None:
    front, front_out = _provider("frontend")
    back, back_out = _provider("backend")
    tracer_f, tracer_b = front.get_tracer("t"), back.get_tracer("t")
    with tracer_f.start_as_current_span("GET /", kind=SpanKind.SERVER):
        with tracer_f.start_as_current_span("GET /items", kind=SpanKind.CLIENT) as client:
            # propagation by hand: backend's server span is a child of the client span
            from opentelemetry import trace
            ctx = trace.set_span_in_context(client)
            with tracer_b.start_as_current_span("GET /items", context=ctx, kind=SpanKind.SERVER) as srv:
                with tracer_b.start_as_current_span(
                    "SELECT", kind=SpanKind.CLIENT,
                    attributes={"db.system.name": "postgresql", "db.namespace": "items"},
                ) as db:
                    db.set_status(Status(StatusCode.ERROR))
                srv.set_status(Status(StatusCode.ERROR))
    sink = InMemorySink()
    ingestor = Ingestor(sink)
    for exported in (back_out.spans, front_out.spans):  # callee exports first
        ingestor.ingest_request(encode_spans(exported).SerializeToString())
    assert {k: (v.requests, v.errors) for k, v in sink.edges.items()} == {
        ("user", "frontend"): (1, 0), ("frontend", "backend"): (1, 1), ("backend", "db:postgresql/items"): (1, 1),
    }
    backend = sink.service_total("backend")
    assert (backend.requests, backend.errors, backend.exclusive_errors) == (1, 1, 0)
    assert ("backend", "3.1") in sink.versions
