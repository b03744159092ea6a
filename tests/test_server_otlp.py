"""OTLP into a real rootgraph server, with the real OpenTelemetry SDK exporters as clients.

The graph is then read back from the real Neo4j: edges, counts and virtual nodes.
"""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request

import pytest
from google.rpc import status_pb2
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.reader import WindowReader
from test_ingest_helpers import CLIENT, SERVER, payload, resource_spans, span

T0 = 1_800_000_000 * 10**9  # a fixed minute-aligned instant (ns)


def _provider(exporter, service: str, version: str = "1.0") -> TracerProvider:  # noqa: ANN001
    p = TracerProvider(resource=Resource.create({"service.name": service, "service.version": version,
                                                 "host.name": f"{service}-host"}))
    p.add_span_processor(SimpleSpanProcessor(exporter))
    return p


def _traffic(make_exporter, requests: int = 5, fail_db_on: int = 2) -> None:  # noqa: ANN001
    """frontend -> checkout -> postgres (uninstrumented), with explicit timestamps."""
    front = _provider(make_exporter(), "frontend")
    checkout = _provider(make_exporter(), "checkout")
    ft, ct = front.get_tracer("sim"), checkout.get_tracer("sim")
    for i in range(requests):
        t = T0 + i * 10**9
        root = ft.start_span("GET /", kind=SpanKind.SERVER, start_time=t)
        ctx = trace.set_span_in_context(root)
        call = ft.start_span("POST checkout", kind=SpanKind.CLIENT, context=ctx, start_time=t + 1_000_000,
                             attributes={"server.address": "checkout"})
        srv = ct.start_span("POST /checkout", kind=SpanKind.SERVER, context=trace.set_span_in_context(call),
                            start_time=t + 2_000_000)
        db = ct.start_span("SELECT orders", kind=SpanKind.CLIENT, context=trace.set_span_in_context(srv),
                           start_time=t + 3_000_000,
                           attributes={"db.system": "postgresql", "db.name": "orders",
                                       "server.address": "pg-1"})
        failed = i < fail_db_on
        for span, end in ((db, 8), (srv, 9), (call, 10), (root, 11)):
            if failed:
                span.set_status(Status(StatusCode.ERROR))
            span.end(end_time=t + end * 1_000_000)
    front.shutdown()
    checkout.shutdown()


def _edges(reader: WindowReader) -> dict[tuple[str, str], tuple[int, int]]:
    _, calls, _ = reader.service_graph()
    return {(a, b): (c, e) for a, b, c, e, _ in calls}


def _expect_graph(reader: WindowReader, app) -> None:  # noqa: ANN001
    app.ingestor.flush_all()  # halves whose partner never comes (the user root) degrade now
    edges = _edges(reader)
    assert edges[("frontend", "checkout")] == (5, 2)
    assert edges[("checkout", "db:postgresql/orders")] == (5, 2)
    assert edges[("user", "frontend")] == (5, 2)
    entities = {e.id: e.kind.value for e in reader.service_graph()[0]}
    assert entities["db:postgresql/orders"] == "database"
    assert entities["host:checkout-host"] == "host"


def test_sdk_grpc_exporter_fills_the_graph(app, reader: WindowReader) -> None:  # noqa: ANN001
    port = app.ports["otlp_grpc"]
    _traffic(lambda: GrpcExporter(endpoint=f"127.0.0.1:{port}", insecure=True))
    _expect_graph(reader, app)


def test_sdk_http_exporter_fills_the_graph(app, reader: WindowReader) -> None:  # noqa: ANN001
    port = app.ports["otlp_http"]
    _traffic(lambda: HttpExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"))
    _expect_graph(reader, app)


def _post(app, body: bytes, ctype: str, encoding: str | None = None):  # noqa: ANN001,ANN202
    req = urllib.request.Request(f"http://127.0.0.1:{app.ports['otlp_http']}/v1/traces", data=body,
                                 method="POST", headers={"Content-Type": ctype})
    if encoding:
        req.add_header("Content-Encoding", encoding)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers


def _json_request(service: str | None, trace_hex: str = "0af7651916cd43dd8448eb211c80319c") -> bytes:
    attrs = [{"key": "service.name", "value": {"stringValue": service}}] if service else []
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": attrs},
        "scopeSpans": [{"spans": [{
            "traceId": trace_hex, "spanId": "b7ad6b7169203331", "name": "GET /", "kind": 2,
            "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 5_000_000),
            "unknownFieldIsIgnored": True,
        }]}],
    }]}).encode()


def test_http_json_gzip_and_partial_success(app) -> None:  # noqa: ANN001
    status, body, headers = _post(app, gzip.compress(_json_request("api")), "application/json", "gzip")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {}  # everything accepted: no partial_success
    status, body, _ = _post(app, _json_request(None), "application/json")
    assert status == 200
    partial = json.loads(body)["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "service.name" in partial["errorMessage"]


def test_http_rejects_bad_bodies_with_the_right_status(app) -> None:  # noqa: ANN001
    status, body, _ = _post(app, b"\xff\x00garbage", "application/x-protobuf")
    assert status == 400
    assert status_pb2.Status.FromString(body).message
    status, _, _ = _post(app, b"{not json", "application/json")
    assert status == 400
    status, _, _ = _post(app, b"x", "text/plain")
    assert status == 415
    status, _, _ = _post(app, b"\x1f\x8bnot-gzip", "application/json", "gzip")
    assert status == 400


def test_http_size_limit_is_413_even_through_gzip(app) -> None:  # noqa: ANN001
    limit = app.settings.max_request_bytes
    bomb = gzip.compress(b"\x00" * (limit + 1))
    status, _, _ = _post(app, bomb, "application/x-protobuf", "gzip")
    assert status == 413


def test_grpc_export_reports_partial_success(app) -> None:  # noqa: ANN001
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
    from google.protobuf import json_format

    req = trace_service_pb2.ExportTraceServiceRequest()
    doc = json.loads(_json_request(None))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "CvdlGRbNQ92ESOshHIAxnA=="
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["spanId"] = "t61rcWkgMzE="
    del doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["unknownFieldIsIgnored"]
    json_format.ParseDict(doc, req)
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['otlp_grpc']}") as ch:
        resp = trace_service_pb2_grpc.TraceServiceStub(ch).Export(req, timeout=10)
    assert resp.partial_success.rejected_spans == 1
    assert "service.name" in resp.partial_success.error_message


def test_metrics_endpoint_exposes_ingest_counters(app) -> None:  # noqa: ANN001
    _post(app, _json_request("api"), "application/json")
    with urllib.request.urlopen(f"http://127.0.0.1:{app.ports['otlp_http']}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert "rootgraph_ingest_spans_received 1" in text
    assert "rootgraph_ingest_neo4j_writes" in text


def _metric(app, name: str) -> float:  # noqa: ANN001
    with urllib.request.urlopen(f"http://127.0.0.1:{app.ports['otlp_http']}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            key, _, value = line.partition(" ")
            if key == f"rootgraph_ingest_{name}":
                return float(value)
    raise AssertionError(f"{name} not in /metrics")


def _wait_for(condition, deadline_s: float = 20.0) -> None:  # noqa: ANN001
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, "condition not met before the deadline"
        time.sleep(0.05)


@pytest.fixture()
def short_wait_app(neo4j_driver, neo4j_settings, store: GraphAdmin):  # noqa: ANN001,ANN201
    from dataclasses import replace

    from rootgraph.server.app import App

    settings = replace(neo4j_settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                       otlp_http_address="127.0.0.1:0", pairing_wait_seconds=1.0).validate()
    server = App(settings, neo4j_driver).start()
    yield server
    server.stop(grace_s=1.0)


def test_pairing_wait_is_configurable_and_a_late_half_is_counted_in_metrics(short_wait_app, store: GraphAdmin) -> None:  # noqa: ANN001,E501
    """A Collector draining its retry queue: the server half arrives after the client half's wait."""
    app = short_wait_app
    assert app.ingestor.config.pending_ttl_s == 1.0
    status, _, _ = _post(app, payload(resource_spans("front", span(1, 2, 1, CLIENT))), "application/x-protobuf")
    assert status == 200
    _wait_for(lambda: _metric(app, "expired") >= 1)  # the 1 s wait ran out (server's expiry tick)
    assert _metric(app, "late_after_expiry") == 0
    status, _, _ = _post(app, payload(resource_spans("back", span(1, 3, 2, SERVER))), "application/x-protobuf")
    assert status == 200
    assert _metric(app, "late_after_expiry") == 1 and _metric(app, "paired") == 0
