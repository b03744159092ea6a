"""OTLP trace ingestion at the edge: gRPC ``TraceService`` and the shared consumer.

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
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from rootgraph.ingest.pipeline import IngestResult
from rootgraph.server.errors import classify

#: Back-off suggested to clients on retryable errors (Neo4j down, overloaded, deadline).
RETRY_DELAY_S = 1
_RETRY_INFO = RetryInfo(retry_delay=Duration(seconds=RETRY_DELAY_S)).SerializeToString()

__all__ = ["IngestConsumer", "RequestIngest", "TraceServiceServicer"]


class RequestIngest(Protocol):
    """What the receivers need of the ingest stage (``ingest.group.GroupCommitter``)."""

    def submit(self, payload: bytes | trace_service_pb2.ExportTraceServiceRequest,
               content_type: str = "application/x-protobuf", timeout_s: float | None = None) -> IngestResult:
        """Ingest one request; return once it is committed. ``timeout_s`` (None: the
        ingest default) bounds the wait; raises ``MalformedPayload`` for bad input and
        retryable errors while storage is unavailable."""
        ...


class IngestConsumer:
    """Adapter from the ingest stage to the OTLP response message."""

    def __init__(self, ingest: RequestIngest) -> None:
        self._ingest = ingest

    def export(self, payload: bytes | trace_service_pb2.ExportTraceServiceRequest,
               content_type: str = "application/x-protobuf",
               timeout_s: float | None = None) -> trace_service_pb2.ExportTraceServiceResponse:
        result = self._ingest.submit(payload, content_type, timeout_s)
        response = trace_service_pb2.ExportTraceServiceResponse()
        if result.rejected_spans:
            response.partial_success.rejected_spans = result.rejected_spans
            response.partial_success.error_message = "; ".join(
                f"{count} span(s): {reason}" for reason, count in sorted(result.reasons.items())
            )
        return response


class TraceServiceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    """``opentelemetry.proto.collector.trace.v1.TraceService/Export``."""

    def __init__(self, consumer: IngestConsumer) -> None:
        self._consumer = consumer

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest,  # noqa: N802
               context: grpc.ServicerContext) -> trace_service_pb2.ExportTraceServiceResponse:
        try:
            return self._consumer.export(request, timeout_s=context.time_remaining())
        except Exception as exc:  # noqa: BLE001 - mapped to a status
            c = classify(exc)
            if c.retryable:
                context.set_trailing_metadata((("google.rpc.retryinfo-bin", _RETRY_INFO),))
            context.abort(c.code, c.message)
            raise  # unreachable: abort raises
