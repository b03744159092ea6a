"""OTLP ingestion at the edge: gRPC ``TraceService``, ``LogsService``, ``MetricsService``
and the consumer they share with OTLP/HTTP.

All three signals behave the same (issue 14): acknowledged only after commit, in the
same group-commit transactions, idempotent by batch id, partial success naming the
rejected items (``rejected_spans`` / ``rejected_log_records`` / ``rejected_data_points``).

Both transports end in :class:`IngestConsumer.export`, which calls the ingest stage
and turns its result into an ``ExportTraceServiceResponse``: accepted spans need no
mention, rejected ones are reported in ``partial_success`` with the reasons (OTLP
spec: the client must not retry those). A batch is acknowledged only after its
delta is committed in Neo4j; while Neo4j is down the call fails with UNAVAILABLE
(HTTP 503), which OTLP exporters retry with back-off; retryable errors carry a
``google.rpc.RetryInfo`` trailer, which the OpenTelemetry exporters honour.

Requests go through :class:`~rootgraph.ingest.group.GroupCommitter`, so concurrent
exports share one Neo4j transaction; a call's gRPC deadline bounds its wait.
"""

from __future__ import annotations

from typing import Protocol

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from rootgraph.ingest.pipeline import IngestResult
from rootgraph.server.errors import classify

#: Back-off suggested to clients on retryable errors (Neo4j down, overloaded, deadline).
RETRY_DELAY_S = 1
_RETRY_INFO = RetryInfo(retry_delay=Duration(seconds=RETRY_DELAY_S)).SerializeToString()

__all__ = ["IngestConsumer", "LogsServiceServicer", "MetricsServiceServicer", "RESPONSES", "RequestIngest",
           "TraceServiceServicer"]

#: signal -> (response type, its partial_success field counting rejected items)
RESPONSES: dict[str, tuple[type[Message], str]] = {
    "traces": (trace_service_pb2.ExportTraceServiceResponse, "rejected_spans"),
    "logs": (logs_service_pb2.ExportLogsServiceResponse, "rejected_log_records"),
    "metrics": (metrics_service_pb2.ExportMetricsServiceResponse, "rejected_data_points"),
}
_ITEMS = {"traces": "span(s)", "logs": "log record(s)", "metrics": "data point(s)"}


class RequestIngest(Protocol):
    """What the receivers need of the ingest stage (``ingest.group.GroupCommitter``)."""

    def submit(self, payload: bytes | Message,
               content_type: str = "application/x-protobuf", timeout_s: float | None = None,
               signal: str = "traces") -> IngestResult:
        """Ingest one request; return once it is committed. ``timeout_s`` (None: the
        ingest default) bounds the wait; raises ``MalformedPayload`` for bad input and
        retryable errors while storage is unavailable."""
        ...


class IngestConsumer:
    """Adapter from the ingest stage to the OTLP response message."""

    def __init__(self, ingest: RequestIngest) -> None:
        self._ingest = ingest

    def export(self, payload: bytes | Message, content_type: str = "application/x-protobuf",
               timeout_s: float | None = None, signal: str = "traces") -> Message:
        """Ingest one request of ``signal``; the signal's Export response."""
        result = self._ingest.submit(payload, content_type, timeout_s, signal)
        response_type, rejected_field = RESPONSES[signal]
        response = response_type()
        if result.rejected_spans:
            setattr(response.partial_success, rejected_field, result.rejected_spans)
            response.partial_success.error_message = "; ".join(
                f"{count} {_ITEMS[signal]}: {reason}" for reason, count in sorted(result.reasons.items())
            )
        return response


class TraceServiceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    """``opentelemetry.proto.collector.trace.v1.TraceService/Export`` (and, as subclasses,
    the logs and metrics services: one Export behaviour for every signal)."""

    signal = "traces"

    def __init__(self, consumer: IngestConsumer) -> None:
        self._consumer = consumer

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:  # noqa: N802
        try:
            return self._consumer.export(request, timeout_s=context.time_remaining(), signal=self.signal)
        except Exception as exc:  # noqa: BLE001 - mapped to a status
            c = classify(exc)
            if c.retryable:
                context.set_trailing_metadata((("google.rpc.retryinfo-bin", _RETRY_INFO),))
            context.abort(c.code, c.message)
            raise  # unreachable: abort raises


class LogsServiceServicer(TraceServiceServicer):
    """``opentelemetry.proto.collector.logs.v1.LogsService/Export``."""

    signal = "logs"


class MetricsServiceServicer(TraceServiceServicer):
    """``opentelemetry.proto.collector.metrics.v1.MetricsService/Export``."""

    signal = "metrics"
