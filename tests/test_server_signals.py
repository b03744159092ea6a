"""OTLP logs and metrics through a real server into the real Neo4j (issue 14).

The OpenTelemetry SDK's own exporters (gRPC and HTTP) send logs with trace context and
metrics with a pod resource; ``read_window`` then shows the evidence. Plus: OTLP/JSON
with hex ids, partial success, a retried request counted once, unknown metric names
ignored (not rejected), the miner's snapshot restored.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from rootgraph.graph.records import SEVERITIES, Window
from rootgraph.graph.reader import WindowReader
from rootgraph.ingest.templates import Templates

pytestmark = pytest.mark.neo4j


def _window() -> tuple[Window, Window]:
    now = int(time.time())
    return Window(now - 600, now + 120), Window(now - 1200, now - 600)


def _send_logs(exporter, service: str) -> tuple[str, str]:  # noqa: ANN001
    """3 INFO records of one template, 2 ERRORs inside one span, 1 WARN; returns the span's ids."""
    provider = LoggerProvider(resource=Resource.create({"service.name": service, "service.namespace": "shop",
                                                        "k8s.pod.name": f"{service}-1"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    log = logging.getLogger(f"test.{service}.{id(exporter)}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
    tracer = TracerProvider().get_tracer("t")
    for user in (1, 2, 3):
        log.info("user %d logged in from 10.0.0.%d", user, user)
    with tracer.start_as_current_span("checkout") as span:
        log.error("payment gateway timeout after 3000 ms")
        log.error("payment gateway timeout after 3100 ms")
        ctx = span.get_span_context()
    log.warning("cache miss ratio high")
    provider.shutdown()
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_log_exporter_fills_log_buckets(app, reader: WindowReader, transport: str) -> None:  # noqa: ANN001
    exporter = (GrpcLogExporter(endpoint=f"127.0.0.1:{app.ports['otlp_grpc']}", insecure=True)
                if transport == "grpc" else
                HttpLogExporter(endpoint=f"http://127.0.0.1:{app.ports['otlp_http']}/v1/logs"))
    _send_logs(exporter, "cart")
    w = reader.read_window(*_window(), 60)
    rows = w.log_buckets["shop/cart"]
    total = [sum(r.severity[i] for r in rows) for i in range(len(SEVERITIES))]
    assert dict(zip(SEVERITIES, total)) == {"unspecified": 0, "trace": 0, "debug": 0, "info": 3, "warn": 1,
                                            "error": 2, "fatal": 0}
    assert sum(r.records for r in rows) == 6 and sum(r.error_records for r in rows) == 2
    assert sum(r.error_spans for r in rows) == 1  # two error records, one span
    counts: dict[str, int] = {}
    for r in rows:
        for tid, n in r.templates:
            counts[w.log_templates["shop/cart"][tid]] = counts.get(w.log_templates["shop/cart"][tid], 0) + n
    # drain3 generalised the variable parts: one template per message shape
    assert counts == {"user <*> logged in from <*>": 3, "payment gateway timeout after <*> ms": 2,
                      "cache miss ratio high": 1}
    stats = app.stats()
    assert stats["log_records_accepted"] == 6 and stats["log_records_rejected"] == 0


def _metrics(exporter, pod: str) -> tuple[MeterProvider, Callable[[int], None]]:  # noqa: ANN001
    provider = MeterProvider(
        resource=Resource.create({"service.name": "cart", "k8s.pod.name": pod, "k8s.node.name": "n1"}),
        metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)])
    meter = provider.get_meter("test")
    cpu = iter([0.42, 0.58, 0.9])

    def observe(_: CallbackOptions):  # noqa: ANN202
        yield Observation(next(cpu))

    meter.create_observable_gauge("k8s.pod.cpu.utilization", [observe], unit="1")
    rx = meter.create_counter("k8s.pod.network.io", unit="By")
    meter.create_counter("my.custom.requests").add(5)  # not in the vocabulary: ignored
    return provider, lambda n: rx.add(n, {"direction": "receive"})


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_metric_exporter_fills_metric_buckets(app, reader: WindowReader, transport: str) -> None:  # noqa: ANN001
    exporter = (GrpcMetricExporter(endpoint=f"127.0.0.1:{app.ports['otlp_grpc']}", insecure=True)
                if transport == "grpc" else
                HttpMetricExporter(endpoint=f"http://127.0.0.1:{app.ports['otlp_http']}/v1/metrics"))
    provider, receive = _metrics(exporter, "cart-7")
    receive(1000)
    assert provider.force_flush()
    receive(500)  # cumulative 1500: the second export adds the difference only
    assert provider.force_flush()
    provider.shutdown()
    w = reader.read_window(*_window(), 60)
    m = w.metric_buckets["pod:cart-7"]
    cpu = m["cpu_utilization"]
    assert sum(r.count for r in cpu) == 3 and round(sum(r.sum for r in cpu), 6) == 1.9  # 3 collections
    assert min(r.min for r in cpu) == 0.42 and max(r.max for r in cpu) == 0.9
    assert sum(r.sum for r in m["network_rx_bytes"]) == 1500  # 1000 (series just started) + 500
    assert set(m) == {"cpu_utilization", "network_rx_bytes"}
    stats = app.stats()
    assert stats["metric_points_ignored"] >= 2 and stats["ignored:unknown metric"] >= 2
    assert stats["metric_points_rejected"] == 0


def _post(app, path: str, body: bytes, ctype: str) -> tuple[int, bytes]:  # noqa: ANN001
    req = urllib.request.Request(f"http://127.0.0.1:{app.ports['otlp_http']}{path}", data=body,
                                 headers={"Content-Type": ctype}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read()


def _json_logs(t_ns: int) -> bytes:
    return json.dumps({"resourceLogs": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "pay"}}]},
         "scopeLogs": [{"logRecords": [
             {"timeUnixNano": str(t_ns), "severityNumber": 17, "body": {"stringValue": "card 4242 declined"},
              "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"},
             {"timeUnixNano": str(t_ns), "severityText": "Fatal", "body": {"stringValue": "disk full"},
              "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b175"},
             {"severityNumber": 9, "body": {"stringValue": "no time"}},
         ]}]},
        {"resource": {"attributes": []}, "scopeLogs": [{"logRecords": [{"timeUnixNano": str(t_ns)}]}]},
    ]}).encode()


def test_http_json_logs_partial_success_and_retry_counted_once(app, reader: WindowReader) -> None:  # noqa: ANN001
    body = _json_logs(time.time_ns())
    for _ in range(2):  # the second is a client's retry of the same request
        status, raw = _post(app, "/v1/logs", body, "application/json")
        assert status == 200
        partial = json.loads(raw)["partialSuccess"]
        assert partial["rejectedLogRecords"] == "2"  # int64 is a JSON string
        assert "1 log record(s): missing service.name" in partial["errorMessage"]
        assert "1 log record(s): missing time" in partial["errorMessage"]
    (row,) = reader.read_window(*_window(), 60).log_buckets["pay"]
    assert (row.records, row.severity[5], row.severity[6], row.error_spans) == (2, 1, 1, 2)
    assert app.stats()["batches_duplicate"] >= 1


def test_grpc_metrics_partial_success_and_retry_counted_once(app, reader: WindowReader) -> None:  # noqa: ANN001
    from google.protobuf import json_format
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
    now = time.time_ns()
    req = json_format.ParseDict({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "prometheus"}}]},
        "scopeMetrics": [{"metrics": [
            {"name": "container_memory_working_set_bytes", "gauge": {"dataPoints": [
                {"timeUnixNano": str(now), "asDouble": 2.5e8, "attributes": [
                    {"key": "pod", "value": {"stringValue": "web-1"}},
                    {"key": "container", "value": {"stringValue": "app"}}]},
                {"timeUnixNano": str(now), "asDouble": 9e9, "attributes": [  # pod cgroup total: skipped
                    {"key": "pod", "value": {"stringValue": "web-1"}},
                    {"key": "container", "value": {"stringValue": ""}}]},
                {"asDouble": 1.0},  # no time: rejected
            ]}}]}]}]}, metrics_service_pb2.ExportMetricsServiceRequest())
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['otlp_grpc']}") as ch:
        stub = metrics_service_pb2_grpc.MetricsServiceStub(ch)
        for _ in range(2):
            resp = stub.Export(req, timeout=10)
            assert resp.partial_success.rejected_data_points == 1
            assert "missing time" in resp.partial_success.error_message
    (row,) = reader.read_window(*_window(), 60).metric_buckets["pod:web-1"]["memory_bytes"]
    assert (row.count, row.sum, row.min, row.max) == (1, 2.5e8, 2.5e8, 2.5e8)


def test_junk_logs_and_metrics_bodies_are_400_and_invalid_argument(app) -> None:  # noqa: ANN001
    import urllib.error
    for path in ("/v1/logs", "/v1/metrics"):
        with pytest.raises(urllib.error.HTTPError) as err:
            _post(app, path, b"\xff" * 16, "application/x-protobuf")
        assert err.value.code == 400
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['otlp_grpc']}") as ch:
        for service in ("logs.v1.LogsService", "metrics.v1.MetricsService"):
            call = ch.unary_unary(f"/opentelemetry.proto.collector.{service}/Export")
            with pytest.raises(grpc.RpcError) as rpc:
                call(b"\xff" * 16, timeout=10)
            assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_template_miner_state_survives_a_restart(app) -> None:  # noqa: ANN001
    """The snapshot stored with the counts gives a new process the same template ids."""
    exporter = HttpLogExporter(endpoint=f"http://127.0.0.1:{app.ports['otlp_http']}/v1/logs")
    _send_logs(exporter, "auth")
    before = app.ingestor.templates.mine("payment gateway timeout after 77 ms")
    # a crash: the last snapshot (throttled) may miss the newest templates, whose ids
    # must then not be handed out again for other text
    state, top = app.writer.load_miner_state()
    assert state and top >= 3
    crashed = Templates(state, top)
    assert int(crashed.mine("a message never seen before")[0]) > top
    # a graceful stop stores the snapshot: the next process has every id
    app.ingestor.save_templates()
    restored = Templates(*app.writer.load_miner_state())
    assert restored.mine("payment gateway timeout after 77 ms") == before
    assert restored.mine("user 9 logged in from 10.0.0.9") == app.ingestor.templates.mine("user 9 logged in from 1.2.3.4")


def test_api_role_does_not_serve_logs_or_metrics(neo4j_driver, neo4j_settings) -> None:  # noqa: ANN001
    from dataclasses import replace

    from rootgraph.server.app import App
    settings = replace(neo4j_settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                       otlp_http_address="127.0.0.1:0")
    api = App(settings, neo4j_driver, role="api").start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{api.ports['api']}") as ch:
            call = ch.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
            with pytest.raises(grpc.RpcError) as rpc:
                call(logs_service_pb2.ExportLogsServiceRequest().SerializeToString(), timeout=10)
            assert rpc.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "otlp_http" not in api.ports
    finally:
        api.stop(grace_s=1.0)
