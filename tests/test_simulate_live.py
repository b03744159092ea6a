"""Live export reaches a real OTLP receiver through the real OTLP exporters."""

from __future__ import annotations

import gzip
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from rootgraph.simulate import Fault, FaultKind, ScenarioSpec, run_live

SPEC = ScenarioSpec("live", "tiny", (Fault("catalog", FaultKind.LATENCY, 50.0),), seed=5,
                    baseline_s=30, incident_s=30, rate_rps=4)


def _count(req: trace_service_pb2.ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


class _Recorder(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self._lock = threading.Lock()

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        with self._lock:
            self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def grpc_receiver():
    recorder = _Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", recorder
    server.stop(grace=None)


def test_live_grpc_export_delivers_every_span(grpc_receiver):
    endpoint, recorder = grpc_receiver
    labels = run_live(SPEC, endpoint, protocol="grpc")
    assert labels.extra["export_failed"] == 0
    assert sum(_count(r) for r in recorder.requests) == labels.spans > 100
    names = {kv.value.string_value for r in recorder.requests for rs in r.resource_spans
             for kv in rs.resource.attributes if kv.key == "service.name"}
    assert {"gateway", "orders", "catalog"} <= names


@pytest.fixture
def http_receiver():
    received: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            req = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            received.append(_count(req) if self.path == "/v1/traces" else -1)
            payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_live_http_export_delivers_every_span(http_receiver):
    endpoint, received = http_receiver
    labels = run_live(SPEC, endpoint, protocol="http")
    assert labels.extra["export_failed"] == 0
    assert -1 not in received and sum(received) == labels.spans > 100
