"""Pure logic of ``ingest/connectors.py``: names, units, re-binning (no Neo4j needed)."""

from __future__ import annotations

import pytest

from rootgraph.graph.records import bucket_upper_bound_ms, latency_bucket
from rootgraph.ingest.connectors import connector_rule, log_histogram, unit_ms


@pytest.mark.parametrize(("name", "connector", "measure"), [
    ("traces_service_graph_request_total", "servicegraph", "requests"),
    ("traces_service_graph_request", "servicegraph", "requests"),  # a prometheus receiver trimmed _total
    ("servicegraph_traces_service_graph_request_failed_total", "servicegraph", "failed"),  # exporter namespace
    ("traces_service_graph_request_server", "servicegraph", "server"),  # OTLP
    ("traces_service_graph_request_server_seconds", "servicegraph", "server"),  # through Prometheus
    ("traces_service_graph_request_client_seconds", "servicegraph", "client"),
    ("traces_service_graph_request_duration_seconds", "servicegraph", "server"),  # legacy name gate
    ("traces.span.metrics.calls", "spanmetrics", "calls"),
    ("calls", "spanmetrics", "calls"),
    ("calls_total", "spanmetrics", "calls"),
    ("traces_span_metrics_duration_milliseconds", "spanmetrics", "duration"),
    ("latency", "spanmetrics", "duration"),  # the older spanmetrics processor
])
def test_connector_names_in_every_documented_spelling(name: str, connector: str, measure: str) -> None:
    rule = connector_rule(name)
    assert rule is not None and (rule.connector, rule.measure) == (connector, measure)


@pytest.mark.parametrize("name", ["traces_service_graph_unpaired_spans_total", "traces_service_graph_dropped_spans_total",
                                  "myapp.calls", "xtraces_service_graph_request_total", "http.server.request.duration"])
def test_other_names_are_not_connector_metrics(name: str) -> None:
    assert connector_rule(name) is None


def test_histogram_unit_from_the_metric_then_the_name_then_the_connector_default() -> None:
    sg, sm = connector_rule("traces_service_graph_request_server"), connector_rule("traces.span.metrics.duration")
    assert sg is not None and sm is not None
    assert unit_ms(sg, "s", "x") == 1000.0 and unit_ms(sg, "ms", "x") == 1.0  # legacyLatencyUnitMs
    assert unit_ms(sg, "", "traces_service_graph_request_server_seconds") == 1000.0
    assert unit_ms(sg, "", "x") == 1000.0 and unit_ms(sm, "", "x") == 1.0


def test_rebinning_keeps_every_count_inside_its_explicit_bucket() -> None:
    bounds = (2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0)
    counts = (3, 0, 7, 0, 0, 101, 0, 0, 0, 0, 0, 0, 0, 0, 5)
    out = log_histogram(bounds, counts)
    assert sum(out) == sum(counts)
    # 101 observations in (10, 50] ms land in log buckets whose upper bounds are in (10, 50*sqrt2]
    mid = [i for i, c in enumerate(out) if c and 10.0 < bucket_upper_bound_ms(i) <= 50.0 * 2 ** 0.5]
    assert sum(out[i] for i in mid) == 101 and len(mid) > 1  # spread, not piled on one bound
    assert out[latency_bucket(5000.0 * 1.2)] == 5  # the overflow bucket: just above its bound
    assert sum(out[: latency_bucket(2.0) + 1]) == 3  # (0, 2] ms stays at or below 2 ms
