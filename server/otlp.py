"""OTLP trace ingestion at the edge: gRPC ``TraceService`` and the shared consumer.

Both transports end in :class:`IngestConsumer.export`, which calls the ingest stage
and turns its result into an ``ExportTraceServiceResponse``: accepted spans need no
mention, rejected ones are reported in ``partial_success`` with the reasons (OTLP
spec: the client must not retry those). A batch is acknowledged only after its
delta is committed in Neo4j; while Neo4j is down the call fails with UNAVAILABLE
(HTTP 503), which OTLP exporters retry with back-off.
"""

from __future__ import annotations

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from rootgraph.ingest.pipeline import Ingestor
from rootgraph.server.errors import classify

__all__ = ["IngestConsumer", "TraceServiceServicer"]


class IngestConsumer:
    """Adapter from the ingest stage to the OTLP response message."""

    def __init__(self, ingestor: Ingestor) -> None:
        self._ingestor = ingestor

    def export(self, payload: bytes | trace_service_pb2.ExportTraceServiceRequest,
               content_type: str = "application/x-protobuf") -> trace_service_pb2.ExportTraceServiceResponse:
        result = self._ingestor.ingest_request(payload, content_type)
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
            return self._consumer.export(request)
        except Exception as exc:  # noqa: BLE001 - mapped to a status
            c = classify(exc)
            context.abort(c.code, c.message)
            raise  # unreachable: abort raises
