"""The Collector's servicegraph / spanmetrics connector metrics through the real server (issue 16, part 3).

Real OTLP protobuf shaped as ``connector/servicegraphconnector/connector.go`` builds it
(an empty resource, cumulative int sums and explicit-bucket histograms in seconds), sent
over OTLP gRPC and OTLP/HTTP to a real ``App``; the spanmetrics side through the real
OpenTelemetry SDK metrics exporter. What lands in Neo4j is read back with Cypher and the
window reader; expected values are computed by hand in each test.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import replace

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from rootgraph.graph.records import Window
from rootgraph.graph.reader import WindowReader

pytestmark = pytest.mark.neo4j

_CUM = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
_BOUNDS_S = (0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.4, 2, 5, 10, 15)
#: a minute-aligned time base well inside the read windows below
T0 = (int(time.time()) // 60 - 8) * 60 * 10**9
S = 10**9


def _attrs(**kv: object) -> list[KeyValue]:
    out = []
    for k, v in kv.items():
        a = KeyValue(key=k.replace("__", "."))
        if isinstance(v, bool):
            a.value.bool_value = v
        else:
            a.value.string_value = str(v)
        out.append(a)
    return out


def _counts(*pairs: tuple[int, int]) -> list[int]:
    """Bucket counts (17 for the 16 default bounds) from (index, count) pairs."""
    c = [0] * (len(_BOUNDS_S) + 1)
    for i, n in pairs:
        c[i] += n
    return c


def _flush(t_ns: int, start_ns: int, series: list[dict]) -> metrics_service_pb2.ExportMetricsServiceRequest:
    """One servicegraph connector flush: every series' cumulative totals at ``t_ns``."""
    req = metrics_service_pb2.ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    sm.scope.name = "traces_service_graph"
    total = sm.metrics.add(name="traces_service_graph_request_total")
    total.sum.is_monotonic, total.sum.aggregation_temporality = True, _CUM
    failed = sm.metrics.add(name="traces_service_graph_request_failed_total")
    failed.sum.is_monotonic, failed.sum.aggregation_temporality = True, _CUM
    server = sm.metrics.add(name="traces_service_graph_request_server", unit="s")
    server.histogram.aggregation_temporality = _CUM
    client = sm.metrics.add(name="traces_service_graph_request_client", unit="s")
    client.histogram.aggregation_temporality = _CUM
    for s in series:
        a = _attrs(**s["labels"])
        total.sum.data_points.add(attributes=a, start_time_unix_nano=start_ns, time_unix_nano=t_ns, as_int=s["n"])
        if s.get("failed"):
            failed.sum.data_points.add(attributes=a, start_time_unix_nano=start_ns, time_unix_nano=t_ns,
                                       as_int=s["failed"])
        for metric, key in ((server, "server"), (client, "client")):
            if key in s:
                count, total_s, buckets = s[key]
                metric.histogram.data_points.add(attributes=a, start_time_unix_nano=start_ns, time_unix_nano=t_ns,
                                                 count=count, sum=total_s, bucket_counts=buckets,
                                                 explicit_bounds=_BOUNDS_S)
    return req


def _labels(client: str, server: str, ctype: str = "", failed: bool = False, **dims: str) -> dict:
    return {"client": client, "server": server, "connection_type": ctype, "failed": failed, **dims}


def _window() -> tuple[Window, Window]:
    t0 = T0 // S
    return Window(t0, t0 + 600), Window(t0 - 1800, t0)


def _cypher(driver, q: str, **params: object) -> list[dict]:  # noqa: ANN001
    with driver.session() as s:
        return s.run(q, **params).data()


def _export_grpc(app, req) -> metrics_service_pb2.ExportMetricsServiceResponse:  # noqa: ANN001
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['otlp_grpc']}") as ch:
        return metrics_service_pb2_grpc.MetricsServiceStub(ch).Export(req, timeout=60)


def _export_http(app, req) -> metrics_service_pb2.ExportMetricsServiceResponse:  # noqa: ANN001
    r = urllib.request.Request(f"http://127.0.0.1:{app.ports['otlp_http']}/v1/metrics", data=req.SerializeToString(),
                               headers={"Content-Type": "application/x-protobuf"}, method="POST")
    with urllib.request.urlopen(r, timeout=60) as resp:
        assert resp.status == 200
        return metrics_service_pb2.ExportMetricsServiceResponse.FromString(resp.read())


def _series_at(k: int) -> list[dict]:
    """The connector's series after flush ``k`` (1, 2): hand-chosen cumulative values."""
    front_cart = _labels("front", "cart", **{"client_service__namespace": "shop", "server_service__namespace": "shop",
                                             "server_host__name": "h1"})
    front_cart_failed = dict(front_cart, failed=True)
    db = _labels("cart", "carts", "database", **{"client_service__namespace": "shop", "client_db__system": "redis"})
    root = _labels("user", "front", "virtual_node", **{"server_service__namespace": "shop"})
    if k == 1:
        return [
            # 10 calls: client 10 x 20 ms (0.2 s), server 10 x 15 ms (0.15 s)
            {"labels": front_cart, "n": 10, "client": (10, 0.2, _counts((5, 10))), "server": (10, 0.15, _counts((5, 10)))},
            {"labels": db, "n": 4, "client": (4, 0.008, _counts((1, 4))), "server": (4, 0.008, _counts((1, 4)))},
            # root spans: the connector never measured a client side (0 s)
            {"labels": root, "n": 10, "client": (10, 0.0, _counts((0, 10))), "server": (10, 0.3, _counts((5, 10)))},
        ]
    return [  # flush 2: +5 ok calls, and a failed series that is new since flush 1
        {"labels": front_cart, "n": 15, "client": (15, 0.3, _counts((5, 15))), "server": (15, 0.225, _counts((5, 15)))},
        {"labels": front_cart_failed, "n": 2, "failed": 2, "client": (2, 2.0, _counts((11, 2))),
         "server": (2, 1.9, _counts((11, 2)))},
        {"labels": db, "n": 4, "client": (4, 0.008, _counts((1, 4))), "server": (4, 0.008, _counts((1, 4)))},
        {"labels": root, "n": 17, "client": (17, 0.0, _counts((0, 17))), "server": (17, 2.4, _counts((5, 15), (11, 2)))},
    ]


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_servicegraph_connector_metrics_become_edges_and_service_statistics(
        neo4j_driver, app, reader: WindowReader, transport: str) -> None:  # noqa: ANN001
    export = _export_grpc if transport == "grpc" else _export_http
    start = T0 + 20 * S  # the Collector started 40 s before its first flush: a fresh series
    for k, t in ((1, T0 + 60 * S), (2, T0 + 120 * S)):
        resp = export(app, _flush(t, start, _series_at(k)))
        assert resp.partial_success.rejected_data_points == 0, resp.partial_success.error_message
    resp = export(app, _flush(T0 + 120 * S, start, _series_at(2)))  # the exporter retries: counted once
    calls = {(r["a"], r["b"]): r for r in _cypher(
        neo4j_driver, "MATCH (a:Entity)-[c:CALLS]->(b:Entity) RETURN a.id AS a, b.id AS b, c.calls AS n, "
             "c.errors AS err, c.duration_ms AS dur, c.async AS async")}
    assert set(calls) == {("shop/front", "shop/cart"), ("shop/cart", "db:redis/carts"), ("user", "shop/front")}
    fc = calls[("shop/front", "shop/cart")]
    assert (fc["n"], fc["err"]) == (17, 2)
    assert fc["dur"] == pytest.approx(300.0 + 2000.0)  # client side: 15 x 20 ms + 2 x 1 s
    assert calls[("user", "shop/front")]["dur"] == pytest.approx(2400.0)  # root edges: the server side
    kinds = {r["id"]: r["l"] for r in _cypher(neo4j_driver, "MATCH (e:Entity) RETURN e.id AS id, labels(e) AS l")}
    assert "Database" in kinds["db:redis/carts"] and "User" in kinds["user"] and "Service" in kinds["shop/cart"]
    assert _cypher(neo4j_driver, "MATCH (s:Entity {id: 'shop/cart'})-[:RUNS_ON]->(h) RETURN h.id AS h") == [{"h": "host:h1"}]
    # per bucket: flush 1 (interval T0+20 s .. T0+60 s) -> bucket T0; flush 2 -> T0+60 s
    w = reader.read_window(*_window(), 60)
    t0 = T0 // S
    cart = {r.start_s: r for r in w.service_buckets["shop/cart"]}
    assert (cart[t0].requests, cart[t0].errors, cart[t0].duration_ms_sum) == (10, 0, pytest.approx(150.0))
    assert (cart[t0 + 60].requests, cart[t0 + 60].errors) == (7, 2)
    assert cart[t0 + 60].duration_ms_sum == pytest.approx(75.0 + 1900.0)
    assert sum(cart[t0 + 60].histogram) == 7 and cart[t0].self_ms_sum == 0.0  # no self time in metrics
    (edge,) = [e for e in w.edges if (e.caller, e.callee) == ("shop/front", "shop/cart")]
    rows = {r.start_s: r for r in edge.buckets}
    assert (rows[t0].requests, rows[t0].paired) == (10, 10)
    assert rows[t0].gap_ms_sum == pytest.approx(200.0 - 150.0)  # client minus server time
    assert rows[t0 + 60].gap_ms_sum == pytest.approx((100.0 + 2000.0) - (75.0 + 1900.0))
    assert "db:redis/carts" not in w.service_buckets  # a database has no server side
    stats = app.stats()
    assert stats["metric_points_rejected"] == 0 and stats.get("ignored:first point of a cumulative series", 0) == 0
    assert stats["batches_duplicate"] >= 1


def test_collector_restart_counts_from_zero_and_is_counted(neo4j_driver, app, reader: WindowReader) -> None:  # noqa: ANN001
    labels = _labels("front", "cart")
    one = {"labels": labels, "n": 0}
    start = T0 + 30 * S
    for t, n in ((T0 + 60 * S, 10), (T0 + 120 * S, 25)):
        _export_grpc(app, _flush(t, start, [dict(one, n=n)]))
    # the Collector restarts at T0+150 s: a new start time, the count from zero again
    _export_grpc(app, _flush(T0 + 180 * S, T0 + 150 * S, [dict(one, n=4)]))
    # and a sender whose counter went DOWN without a new start time: also a reset
    _export_grpc(app, _flush(T0 + 240 * S, T0 + 150 * S, [dict(one, n=1)]))
    (r,) = _cypher(neo4j_driver, "MATCH (:Entity {id: 'front'})-[c:CALLS]->(:Entity {id: 'cart'}) RETURN c.calls AS n")
    assert r["n"] == 10 + 15 + 4 + 1
    assert app.stats()["metric_series_resets"] == 2
    rows = {x.start_s: x.requests for x in reader.read_window(*_window(), 60).service_buckets["cart"]}
    t0 = T0 // S
    assert rows == {t0: 10, t0 + 60: 15, t0 + 120: 4, t0 + 180: 1}  # midpoint of each interval


def test_a_long_running_collector_first_heard_sets_the_baseline(neo4j_driver, app) -> None:  # noqa: ANN001
    start = T0 - 3600 * S  # started an hour before rootgraph heard of it: the past is unknown
    old = {"labels": _labels("front", "cart"), "n": 500}
    _export_grpc(app, _flush(T0 + 60 * S, start, [old]))
    _export_grpc(app, _flush(T0 + 120 * S, start, [dict(old, n=503),
                                                  {"labels": _labels("front", "pay"), "n": 2}]))  # new since
    got = {r["b"]: r["n"] for r in _cypher(neo4j_driver, "MATCH (:Entity {id: 'front'})-[c:CALLS]->(b) RETURN b.id AS b, "
                                                "c.calls AS n")}
    assert got == {"cart": 3, "pay": 2}
    assert app.stats()["ignored:first point of a cumulative series"] == 1


def test_bad_connector_points_are_rejected_by_name_and_the_rest_stored(neo4j_driver, app) -> None:  # noqa: ANN001
    start = T0 + 30 * S
    req = _flush(T0 + 60 * S, start, [
        {"labels": _labels("front", "cart"), "n": 3},
        {"labels": {"server": "cart", "connection_type": "", "failed": False}, "n": 5},  # no client
        {"labels": {"client": "front", "connection_type": "", "failed": False}, "n": 5},  # no server
    ])
    sm = req.resource_metrics[0].scope_metrics[0]
    neg = sm.metrics.add(name="traces_service_graph_request_total")
    neg.sum.is_monotonic, neg.sum.aggregation_temporality = True, _CUM
    neg.sum.data_points.add(attributes=_attrs(client="a", server="b", connection_type=""), start_time_unix_nano=start,
                            time_unix_nano=T0 + 60 * S, as_int=-4)
    bad = sm.metrics.add(name="traces_service_graph_request_server", unit="s")
    bad.histogram.aggregation_temporality = _CUM
    bad.histogram.data_points.add(attributes=_attrs(client="a", server="b", connection_type=""),
                                  start_time_unix_nano=start, time_unix_nano=T0 + 60 * S, count=1, sum=0.1,
                                  bucket_counts=[1, 0], explicit_bounds=_BOUNDS_S)
    unspecified = sm.metrics.add(name="traces_service_graph_request_failed_total")
    unspecified.sum.is_monotonic = True  # temporality left UNSPECIFIED
    unspecified.sum.data_points.add(attributes=_attrs(client="a", server="b"), time_unix_nano=T0 + 60 * S, as_int=1)
    resp = _export_grpc(app, req)
    assert resp.partial_success.rejected_data_points == 5
    msg = resp.partial_success.error_message
    for part in ("requests point without a 'client' attribute", "requests point without a 'server' attribute",
                 "traces_service_graph_request_total: negative count",
                 "traces_service_graph_request_server: 2 bucket counts for 16 bounds",
                 "traces_service_graph_request_failed_total: aggregation temporality unspecified"):
        assert part in msg, msg
    got = _cypher(neo4j_driver, "MATCH (a)-[c:CALLS]->(b) RETURN a.id AS a, b.id AS b, c.calls AS n")
    assert got == [{"a": "front", "b": "cart", "n": 3}]
    stats = app.stats()
    assert stats["metric_points_rejected"] == 5 and stats["metric_points_accepted"] == 1


def _spanmetrics_provider(exporter) -> tuple[MeterProvider, Counter, Histogram]:  # noqa: ANN001
    provider = MeterProvider(
        resource=Resource.create({"service.name": "cart", "service.namespace": "shop", "host.name": "h1"}),
        metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)],
        views=[View(instrument_name="traces.span.metrics.duration",
                    aggregation=ExplicitBucketHistogramAggregation([2, 4, 6, 8, 10, 50, 100, 200, 400, 800]))])
    meter = provider.get_meter("spanmetricsconnector")
    return (provider, meter.create_counter("traces.span.metrics.calls"),
            meter.create_histogram("traces.span.metrics.duration", unit="ms"))


@pytest.mark.parametrize("temporality", ["cumulative", "delta"])
def test_spanmetrics_through_the_sdk_exporter_give_service_statistics(
        neo4j_driver, neo4j_settings, store, temporality: str) -> None:  # noqa: ANN001
    from rootgraph.server.app import App

    settings = replace(neo4j_settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                       otlp_http_address="127.0.0.1:0", connector_service_stats="spanmetrics")
    app = App(settings, neo4j_driver).start()
    try:
        kw = {} if temporality == "cumulative" else {
            "preferred_temporality": {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}}
        exporter = (GrpcMetricExporter(endpoint=f"127.0.0.1:{app.ports['otlp_grpc']}", insecure=True, **kw)
                    if temporality == "cumulative" else
                    HttpMetricExporter(endpoint=f"http://127.0.0.1:{app.ports['otlp_http']}/v1/metrics", **kw))
        provider, calls, duration = _spanmetrics_provider(exporter)
        server = {"span.name": "GET /cart", "span.kind": "SPAN_KIND_SERVER", "status.code": "STATUS_CODE_UNSET",
                  "service.name": "cart"}
        failed = dict(server, **{"status.code": "STATUS_CODE_ERROR"})
        client = dict(server, **{"span.kind": "SPAN_KIND_CLIENT"})
        calls.add(7, server)
        calls.add(3, failed)
        calls.add(5, client)  # outbound calls: not the service's requests
        for ms in (5.0, 5.0, 30.0):
            duration.record(ms, server)
        assert provider.force_flush()
        calls.add(2, server)  # the second export adds the difference (cumulative) / is the delta
        duration.record(300.0, server)
        assert provider.force_flush()
        provider.shutdown()
        now = int(time.time())
        w = WindowReader(neo4j_driver, settings.neo4j_database).read_window(
            Window(now - 600, now + 120), Window(now - 1200, now - 600), 60)
        rows = w.service_buckets["shop/cart"]
        assert (sum(r.requests for r in rows), sum(r.errors for r in rows)) == (12, 3)
        assert sum(r.duration_ms_sum for r in rows) == pytest.approx(340.0)
        assert sum(sum(r.histogram) for r in rows) == 4
        assert w.runs_on["shop/cart"] == ("host:h1",)
        stats = app.stats()
        # the CLIENT series, once per export that carries it (a delta export may omit it)
        assert stats["ignored:spanmetrics point of a non-entry span kind"] >= 1
        assert stats["metric_points_rejected"] == 0
    finally:
        app.stop(grace_s=1.0)


def test_spanmetrics_are_ignored_and_counted_when_servicegraph_gives_service_statistics(
        neo4j_driver, app) -> None:  # noqa: ANN001
    exporter = HttpMetricExporter(endpoint=f"http://127.0.0.1:{app.ports['otlp_http']}/v1/metrics")
    provider, calls, _ = _spanmetrics_provider(exporter)
    calls.add(4, {"span.kind": "SPAN_KIND_SERVER", "status.code": "STATUS_CODE_UNSET", "span.name": "x"})
    assert provider.force_flush()
    assert _cypher(neo4j_driver, "MATCH (b:ServiceBucket) RETURN count(b) AS n") == [{"n": 0}]
    assert app.stats()["ignored:spanmetrics point (service statistics from servicegraph)"] == 1
    provider.shutdown()


def test_connector_service_stats_setting_names_itself_when_invalid() -> None:
    from rootgraph.config import ConfigError, Settings, load_settings
    from rootgraph.ingest.config import IngestConfig, IngestConfigError

    assert Settings().connector_service_stats == IngestConfig().connector_service_stats  # one default
    assert load_settings(env={"ROOTGRAPH_CONNECTOR_SERVICE_STATS": "spanmetrics"}).connector_service_stats == "spanmetrics"
    with pytest.raises(ConfigError, match="^connector_service_stats"):
        load_settings(env={"ROOTGRAPH_CONNECTOR_SERVICE_STATS": "both"})
    with pytest.raises(IngestConfigError, match="^connector_service_stats"):
        IngestConfig(connector_service_stats="both").validate()


def test_metrics_http_json_of_the_connector_is_accepted(neo4j_driver, app) -> None:  # noqa: ANN001
    from google.protobuf import json_format
    body = json.dumps(json_format.MessageToDict(_flush(T0 + 60 * S, T0 + 30 * S, [
        {"labels": _labels("front", "cart"), "n": 6}]))).encode()
    r = urllib.request.Request(f"http://127.0.0.1:{app.ports['otlp_http']}/v1/metrics", data=body,
                               headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(r, timeout=60) as resp:
        assert resp.status == 200
    assert _cypher(neo4j_driver, "MATCH ()-[c:CALLS]->() RETURN c.calls AS n") == [{"n": 6}]
