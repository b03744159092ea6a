"""Pure logic of logs and metrics decoding (issue 14): severities, vocabulary, cumulative sums."""

from __future__ import annotations

from collections import Counter

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from rootgraph.ingest.logs import severity_class
from rootgraph.ingest.metrics import CounterState, decode_metrics
from rootgraph.ingest.pipeline import Ingestor
from rootgraph.ingest.sink import InMemorySink

S = 1_000_000_000


@pytest.mark.parametrize(("number", "text", "want"), [
    (1, "", 1), (4, "", 1), (5, "", 2), (9, "INFO", 3), (12, "", 3), (13, "", 4), (16, "", 4),
    (17, "", 5), (20, "", 5), (21, "", 6), (24, "", 6), (0, "Warning", 4), (0, "eRRor", 5),
    (0, "CRITICAL", 6), (0, "verbose", 0), (0, "", 0), (25, "ERROR", 0),
])
def test_severity_classes_follow_the_otlp_ranges_then_the_text(number: int, text: str, want: int) -> None:
    assert severity_class(number, text) == want


def _kv(k: str, v: str) -> dict:
    return {"key": k, "value": {"stringValue": v}}


def _request(metrics: list[dict], resource: list[dict]) -> bytes:
    return json_format.ParseDict({"resourceMetrics": [{"resource": {"attributes": resource},
                                                       "scopeMetrics": [{"metrics": metrics}]}]},
                                 ExportMetricsServiceRequest()).SerializeToString()


def _counter(name: str, t_s: int, value: int, start_s: int, attrs: list[dict] | None = None) -> dict:
    return {"name": name, "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [
        {"startTimeUnixNano": str(start_s * S), "timeUnixNano": str(t_s * S), "asInt": str(value),
         "attributes": attrs or []}]}}


def test_cumulative_counters_become_increases_with_resets() -> None:
    """Baseline, increase, reset (lower value), new start time; a retry is not re-differenced."""
    sink = InMemorySink()
    ing = Ingestor(sink)
    pod = [_kv("k8s.pod.name", "p1")]
    sends = [(_counter("kube_pod_container_status_restarts_total", 6000, 7, 100), None),  # old start: baseline
             (_counter("kube_pod_container_status_restarts_total", 6030, 9, 100), 2.0),
             (_counter("kube_pod_container_status_restarts_total", 6070, 1, 100), 1.0),   # lower: reset
             (_counter("kube_pod_container_status_restarts_total", 6130, 4, 6100), 4.0)]  # new start: reset
    for metric, _ in sends:
        ing.ingest_group([ing.prepare(_request([metric], pod), signal="metrics")])
    got = {t: a.sum for (e, t, m), a in sink.metric_buckets.items() if m == "restarts"}
    assert got == {6000: 2.0, 6060: 1.0, 6120: 4.0}
    assert ing.stats()["ignored:first point of a cumulative series"] == 1
    again = ing.ingest_group([ing.prepare(_request([sends[-1][0]], pod), signal="metrics")])[0]
    assert again.duplicate and {t: a.sum for (e, t, m), a in sink.metric_buckets.items()} == got


def test_prometheus_labels_pick_the_entity_and_pod_level_cgroups_are_skipped() -> None:
    batch = decode_metrics(_request([
        {"name": "container_cpu_cfs_throttled_periods_total", "sum": {
            "aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [
                {"timeUnixNano": str(60 * S), "asInt": "5", "attributes": [_kv("pod", "web-1"), _kv("container", "app")]},
                {"timeUnixNano": str(60 * S), "asInt": "50", "attributes": [_kv("pod", "web-1"), _kv("container", "")]},
            ]}},
        {"name": "system.cpu.utilization", "gauge": {"dataPoints": [
            {"timeUnixNano": str(60 * S), "asDouble": 0.25, "attributes": [_kv("state", "user")]},
            {"timeUnixNano": str(60 * S), "asDouble": 0.7, "attributes": [_kv("state", "idle")]}]}},
        {"name": "k8s.pod.network.io", "sum": {"aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [
            {"timeUnixNano": str(60 * S), "asInt": "10", "attributes": [_kv("direction", "transmit")]}]}},
        {"name": "some.app.metric", "gauge": {"dataPoints": [{"timeUnixNano": str(60 * S), "asDouble": 1}]}},
    ], [_kv("service.name", "web"), _kv("host.name", "h1"), _kv("k8s.pod.name", "web-1")]),
        "application/x-protobuf", bucket_seconds=60)
    got = {k: (a.sum, a.count) for k, a in batch.buckets.items()}
    assert got == {("pod:web-1", 60, "cpu_throttled_periods"): (5.0, 1), ("host:h1", 60, "cpu_utilization"): (0.25, 1),
                   ("pod:web-1", 60, "network_tx_bytes"): (10.0, 1)}
    assert batch.ignored == Counter({"filtered attribute": 2, "unknown metric": 1})
    assert batch.rejected == 0


def test_counter_state_is_bounded_and_staged_until_commit() -> None:
    state = CounterState(max_series=2)
    batch = decode_metrics(_request([_counter(f"k8s.pod.cpu.time", 100, 3, 90, [_kv("x", str(i))])
                                     for i in range(3)], [_kv("k8s.pod.name", "p")]),
                           "application/x-protobuf", bucket_seconds=60)
    staged: dict = {}
    state.to_delta(batch, 60, staged, Counter())
    assert len(state) == 0 and len(staged) == 3  # nothing kept before the write commits
    state.commit(staged)
    assert len(state) == 2
