"""The service's own telemetry, through the OpenTelemetry SDK.

Traces: a ``TracerProvider`` for ``service.name=rootgraph``; spans are exported only
when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set — never to
rootgraph itself by default, which would feed its own ingest with its own traffic.
Metrics: ingest counters (spans received/rejected/unpaired, batches, Neo4j write
latency) as OpenTelemetry observable instruments, and the same numbers in Prometheus
text format at ``GET /metrics`` on the OTLP/HTTP port.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = ["setup_telemetry", "prometheus_text"]


_installed: list[Callable[[], Mapping[str, float]]] = []


def setup_telemetry(stats: Callable[[], Mapping[str, float]], version: str) -> None:
    """Install the SDK providers once per process; later calls re-point the metrics."""
    if _installed:
        _installed[0] = stats  # a second App in the same process (tests): observe the newest
        return
    _installed.append(stats)
    resource = Resource.create({"service.name": "rootgraph", "service.version": version})
    provider = TracerProvider(resource=resource)
    readers = []
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    meter = metrics.get_meter("rootgraph.ingest")

    def observe(name: str) -> Callable[[CallbackOptions], list[Observation]]:
        return lambda _opts: [Observation(_installed[0]().get(name, 0))]

    for name, desc in (
        ("spans_received", "spans received over OTLP or from files"),
        ("spans_rejected", "spans rejected (see partial_success reasons)"),
        ("paired", "client/server halves paired"),
        ("unpaired_client", "client halves that never met a server half"),
        ("unpaired_server", "server halves that never met a client half"),
        ("evicted_when_full", "halves expired early because the pending store was full"),
        ("late_after_expiry", "halves that arrived after their partner's pairing wait had run out"),
        ("log_records_received", "log records received over OTLP"),
        ("log_records_rejected", "log records rejected (see partial_success reasons)"),
        ("metric_points_received", "metric data points received over OTLP"),
        ("metric_points_ignored", "valid metric points not stored (name outside the vocabulary, ...)"),
        ("batches_applied", "batches committed to Neo4j"),
        ("batches_failed", "batches refused because Neo4j was unavailable"),
    ):
        meter.create_observable_counter(f"rootgraph.ingest.{name}", [observe(name)], description=desc)


def prometheus_text(stats: Mapping[str, float]) -> str:
    """Render counters/gauges as Prometheus exposition text (names sanitised)."""
    lines = []
    for key in sorted(stats):
        name = "rootgraph_ingest_" + "".join(ch if ch.isalnum() else "_" for ch in key)
        lines.append(f"{name} {float(stats[key]):g}")
    return "\n".join(lines) + "\n"
