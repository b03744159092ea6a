"""Decode OTLP metric requests into per-(entity, bucket, canonical metric) evidence (issue 14).

Only the names of :data:`RULES` are kept, mapped onto the small canonical vocabulary of
:data:`rootgraph.graph.records.METRICS`: storing every user metric in Neo4j would be a
cardinality bomb. Other names are valid OTLP, so they are *ignored*, not rejected:
counted in the server stats (``metric_points_ignored``, ``ignored:<reason>``), never in
``partial_success``. The table is in README.md ("Metrics").

Kinds (``METRICS``): a gauge's points are sampled values; a counter's are increases —
delta sums as sent, monotonic cumulative sums (and the gauges the table marks
``counter``, e.g. ``k8s.container.restarts``) differenced against the previous point of
the same series (:class:`CounterState`, in memory; a reset, i.e. a new start time or a
lower value, counts the new value as the increase, the Prometheus convention); a
histogram's points give observation count/sum (differenced the same way when
cumulative). Non-monotonic cumulative sums (UpDownCounters) are read as gauges.

Entity of a point (:func:`entity_of`): Prometheus labels first (``pod`` → ``pod:<pod>``,
``node`` → ``node:<node>``), then the resource through ``spans.resource_identity``
(the same ids spans get), in the rule's preference order (pod-level names prefer the
pod, node-level the node, host-level the host, service-level the service). The
``namespace`` and ``container`` labels do not change the entity: container series add
up into their pod; cAdvisor's pod-level cgroup series (``container=""`` / ``"POD"``)
are skipped so they are not counted twice.

The OpenTelemetry Collector's servicegraph and spanmetrics connector metrics are span
statistics, not evidence rows: ``ingest/connectors.py`` maps them onto the edge and
service buckets the span path fills (issue 16, part 3); they are decoded and differenced
here like every other point (``_Cumulative.conn``).

Rejected points (``partial_success.rejected_data_points``): ``missing time``
(time_unix_nano 0); of connector metrics also a missing ``client``/``server``/``span.kind``
label, a negative count or duration sum, bucket counts that do not match the bounds, an
unspecified temporality. Ignored: unknown names, a filtered attribute value (idle CPU
state), no entity, no value / NaN (Prometheus staleness markers), the first point of a
cumulative series whose start is long past (its increase is unknown).
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from rootgraph.graph.records import GraphDelta, MetricAgg
from rootgraph.ingest import connectors
from rootgraph.ingest.connectors import ConnectorPoint
from rootgraph.ingest.spans import (
    hex_field, infra_id, items, parse_request, request_digest, resource_identity, value_text,
)

__all__ = ["CounterState", "MetricBatch", "RULES", "Rule", "decode_metrics", "entity_of", "resource_entities"]

_DELTA, _CUMULATIVE = 1, 2
_NO_RECORDED_VALUE = 1


@dataclass(frozen=True, slots=True)
class Rule:
    """How one source metric name becomes a canonical one."""

    #: canonical name, or "" when ``split`` decides by an attribute
    canonical: str
    #: preferred entity kinds, in order: "pod", "node", "host", "service"
    prefer: tuple[str, ...] = ("pod", "node", "host", "service")
    #: (attribute keys, {value: canonical}): e.g. network direction → rx / tx
    split: tuple[tuple[str, ...], dict[str, str]] | None = None
    #: (attribute key, values): points with another value of that key are ignored
    only: tuple[str, frozenset[str]] | None = None
    #: (attribute key, values): points with one of these values are ignored
    skip: tuple[str, frozenset[str]] | None = None
    #: a gauge that is really a running count (differenced like a cumulative sum)
    counter: bool = False
    #: cAdvisor series: skip the pod-level ``container="" | "POD"`` series
    containers_only: bool = False


_POD, _NODE, _HOST, _SVC = ("pod", "node", "host", "service"), ("node", "host", "service"), \
    ("host", "node", "service"), ("service", "pod", "node", "host")
_DIR = (("direction", "network.io.direction"), {"receive": "network_rx_bytes", "transmit": "network_tx_bytes"})
_BUSY = ("state", frozenset({"idle"}))
_BUSY_MODE = ("mode", frozenset({"idle", "iowait", "steal"}))

#: source metric name -> rule. OpenTelemetry names (semantic conventions, the
#: Collector's kubeletstats / k8s_cluster / hostmetrics / docker_stats receivers) and
#: Prometheus / cAdvisor / kube-state-metrics / node-exporter names as the Collector's
#: prometheus receiver passes them on. README.md "Metrics" has this table.
RULES: dict[str, Rule] = {
    # CPU
    "k8s.pod.cpu.usage": Rule("cpu_utilization", _POD),
    "k8s.pod.cpu.utilization": Rule("cpu_utilization", _POD),  # deprecated name of .usage
    "container.cpu.usage": Rule("cpu_utilization", _POD),
    "container.cpu.utilization": Rule("cpu_utilization", _POD),
    "k8s.node.cpu.usage": Rule("cpu_utilization", _NODE),
    "k8s.node.cpu.utilization": Rule("cpu_utilization", _NODE),
    "system.cpu.utilization": Rule("cpu_utilization", _HOST, skip=_BUSY),
    "process.cpu.utilization": Rule("cpu_utilization", _SVC),
    "k8s.pod.cpu.time": Rule("cpu_seconds", _POD),
    "container.cpu.time": Rule("cpu_seconds", _POD),
    "k8s.node.cpu.time": Rule("cpu_seconds", _NODE),
    "system.cpu.time": Rule("cpu_seconds", _HOST, skip=_BUSY),
    "process.cpu.time": Rule("cpu_seconds", _SVC),
    "container_cpu_usage_seconds_total": Rule("cpu_seconds", _POD, containers_only=True),
    "node_cpu_seconds_total": Rule("cpu_seconds", _HOST, skip=_BUSY_MODE),
    "container.cpu.throttling_data.throttled_periods": Rule("cpu_throttled_periods", _POD),
    "container_cpu_cfs_throttled_periods_total": Rule("cpu_throttled_periods", _POD, containers_only=True),
    "container.cpu.throttling_data.periods": Rule("cpu_periods", _POD),
    "container_cpu_cfs_periods_total": Rule("cpu_periods", _POD, containers_only=True),
    # memory
    "k8s.pod.memory.working_set": Rule("memory_bytes", _POD),
    "container.memory.working_set": Rule("memory_bytes", _POD),
    "k8s.node.memory.working_set": Rule("memory_bytes", _NODE),
    "container_memory_working_set_bytes": Rule("memory_bytes", _POD, containers_only=True),
    "system.memory.usage": Rule("memory_bytes", _HOST, only=("state", frozenset({"used"}))),
    "process.memory.usage": Rule("memory_bytes", _SVC),
    "k8s.pod.memory_limit_utilization": Rule("memory_utilization", _POD),
    "k8s.container.memory_limit_utilization": Rule("memory_utilization", _POD),
    "system.memory.utilization": Rule("memory_utilization", _HOST, only=("state", frozenset({"used"}))),
    # restarts, OOM
    "k8s.container.restarts": Rule("restarts", _POD, counter=True),
    "kube_pod_container_status_restarts_total": Rule("restarts", _POD),
    "container_oom_events_total": Rule("oom_kills", _POD, containers_only=True),
    # network
    "k8s.pod.network.io": Rule("", _POD, split=_DIR),
    "k8s.node.network.io": Rule("", _NODE, split=_DIR),
    "system.network.io": Rule("", _HOST, split=_DIR),
    "container_network_receive_bytes_total": Rule("network_rx_bytes", _POD),
    "container_network_transmit_bytes_total": Rule("network_tx_bytes", _POD),
    "node_network_receive_bytes_total": Rule("network_rx_bytes", _HOST),
    "node_network_transmit_bytes_total": Rule("network_tx_bytes", _HOST),
    "k8s.pod.network.errors": Rule("network_errors", _POD),
    "system.network.errors": Rule("network_errors", _HOST),
    "container_network_receive_errors_total": Rule("network_errors", _POD),
    "container_network_transmit_errors_total": Rule("network_errors", _POD),
    # service latency (histogram)
    "http.server.request.duration": Rule("http_server_duration_s", _SVC),
}
#: Prometheus labels that name an entity, and the resource key whose id rule they share.
_PROM_LABELS = (("pod", "k8s.pod.name"), ("node", "k8s.node.name"))
_PREFIX = {"pod": "pod:", "node": "node:", "host": "host:"}


def resource_entities(service: str, infra: tuple[str, ...]) -> dict[str, str]:
    """Entity kind -> id of one resource (computed once per resource, not per point)."""
    found = {kind: i for kind, prefix in _PREFIX.items() for i in infra if i.startswith(prefix)}
    if service:
        found["service"] = service
    return found


def entity_of(rule: Rule, found: dict[str, str], attrs: dict[str, str]) -> str:
    """The entity id a point of ``rule`` is evidence about ("" when none); ``found`` is
    :func:`resource_entities` of its resource, ``attrs`` the point's attributes."""
    if attrs and ("pod" in attrs or "node" in attrs):
        found = dict(found)
        for label, key in _PROM_LABELS:
            if attrs.get(label):
                found[label] = infra_id(key, attrs[label])
    for kind in rule.prefer:
        if kind in found:
            return found[kind]
    return ""


@dataclass(slots=True)
class _Cumulative:
    """One point of a cumulative series, to be differenced under the ingest lock."""

    series: tuple
    entity: str
    canonical: str
    start_ns: int
    time_ns: int
    value: float
    #: histogram: the point's count (``value`` is then its sum); -1 for number points
    count: int = -1
    #: a connector point (``ingest/connectors.py``): its meaning, bucket counts, ms per unit
    conn: ConnectorPoint | None = None
    buckets: tuple[int, ...] = ()
    scale_ms: float = 1.0


@dataclass(slots=True)
class MetricBatch:
    """One decoded request: gauge/delta evidence aggregated, cumulative points pending."""

    batch_id: str
    buckets: dict[tuple[str, int, str], MetricAgg]
    cumulative: list[_Cumulative]
    accepted: int
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)
    #: delta-temporality connector points, already in span-statistics form
    graph: GraphDelta | None = None


class CounterState:
    """The previous point of every cumulative series (bounded LRU), for differencing.

    Lives in the ingest process only (one ingest process per deployment, like span
    pairing): after a restart each series' first point sets the baseline, so one
    interval's increase is lost per series, never counted twice. ``to_delta`` stages its
    updates; ``commit`` applies them once the delta is written, so a failed write
    changes nothing and the retry differences against the same points.
    """

    def __init__(self, max_series: int = 200_000) -> None:
        #: series -> (start_ns, time_ns, value, count, bucket counts) of its last point
        self._last: OrderedDict[tuple, tuple] = OrderedDict()
        self._max = max_series

    def to_delta(self, batch: MetricBatch, bucket_seconds: int,
                 staged: dict[tuple, tuple], ignored: Counter[str],
                 noted: Counter[str] | None = None) -> GraphDelta:
        """The batch's delta; ``ignored`` counts skipped points by reason, ``noted``
        (``metric_series_resets``) the series that restarted and were counted from zero."""
        buckets = {k: v.copy() for k, v in batch.buckets.items()}
        width_ns = bucket_seconds * 1_000_000_000
        graph = GraphDelta(batch_id="")
        if batch.graph is not None:
            graph = connectors.copy_stats(batch.graph)
        for p in sorted(batch.cumulative, key=lambda p: p.time_ns):
            prev = staged.get(p.series) or self._last.get(p.series)
            staged[p.series] = (p.start_ns, p.time_ns, p.value, p.count, p.buckets)
            since = p.start_ns
            source = ("source", p.conn.rule.connector, p.start_ns) if p.conn is not None else None
            if source is not None:
                # (start, latest flush time, the flush before it) of this connector instance
                seen = staged.get(source) or self._last.get(source)
                if seen is None:
                    seen = (p.start_ns, p.time_ns, 0.0, 0, ())
                elif p.time_ns > seen[1]:
                    seen = (p.start_ns, p.time_ns, float(seen[1]), 0, ())
                staged[source] = seen
            if prev is None:
                # An unseen series: its whole value is the increase only if it began
                # recently -- or, for a connector, if that connector instance (same start
                # time) already sent an earlier flush without it: then the series is new
                # since that flush (e.g. the first failed requests of an edge), not one
                # whose past this process missed.
                earlier = int(seen[2]) if source is not None else 0
                if p.start_ns and p.time_ns - p.start_ns <= width_ns:
                    pass
                elif earlier:
                    since = earlier
                else:
                    ignored["first point of a cumulative series"] += 1
                    continue
                inc, n, counts = p.value, p.count, p.buckets
            elif p.time_ns <= prev[1]:
                ignored["out-of-order or repeated point"] += 1
                staged[p.series] = prev
                continue
            elif ((p.start_ns and p.start_ns != prev[0]) or p.value < prev[2] or p.count < prev[3]
                  or any(a < b for a, b in zip(p.buckets, prev[4]))):
                # reset (a restart of the sender): counted from zero again, since its new
                # start time -- or since the last point when only the value went down
                inc, n, counts = p.value, p.count, p.buckets
                if not p.start_ns or p.start_ns == prev[0]:
                    since = prev[1]
                if noted is not None:
                    noted["metric_series_resets"] += 1
            else:
                inc, n, counts = p.value - prev[2], p.count - prev[3], tuple(
                    a - b for a, b in zip(p.buckets, prev[4])) if p.buckets else ()
                since = prev[1]
            if p.conn is not None:
                # the increase happened over (since, time]: its midpoint's bucket, so a
                # flush on the minute boundary does not push a minute into the next
                mid = (max(since, 0) + p.time_ns) // 2 if since else p.time_ns
                connectors.apply(p.conn, graph, mid // width_ns * bucket_seconds,
                                 round(inc) if p.count < 0 else n, inc, counts, p.scale_ms)
                continue
            if p.count >= 0 and n <= 0:
                continue  # a histogram without new observations says nothing
            key = (p.entity, p.time_ns // width_ns * bucket_seconds, p.canonical)
            agg = buckets.get(key)
            if agg is None:
                agg = buckets[key] = MetricAgg()
            if p.count < 0:
                agg.observe(inc)
            else:
                agg.observe(inc / n, n, inc)
        connectors.finish(graph)
        return GraphDelta(batch_id=batch.batch_id, metric_buckets=buckets, records=batch.accepted,
                          entities=graph.entities, edges=graph.edges, service_buckets=graph.service_buckets,
                          edge_buckets=graph.edge_buckets, runs_on=graph.runs_on, async_edges=graph.async_edges)

    def commit(self, staged: dict[tuple, tuple]) -> None:
        for k, v in staged.items():
            self._last[k] = v
            self._last.move_to_end(k)
        while len(self._last) > self._max:
            self._last.popitem(last=False)

    def __len__(self) -> int:
        return len(self._last)


def _fix_ids(doc: dict[str, Any]) -> None:
    """Exemplars carry hex trace/span ids in OTLP/JSON."""
    for rm in items(doc, "resourceMetrics", "resource_metrics"):
        for sm in items(rm, "scopeMetrics", "scope_metrics"):
            for m in items(sm, "metrics"):
                for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "exponential_histogram",
                             "summary"):
                    data = m.get(kind) if isinstance(m, dict) else None
                    for dp in items(data, "dataPoints", "data_points"):
                        for ex in items(dp, "exemplars"):
                            if isinstance(ex, dict):
                                hex_field(ex, ("traceId", "trace_id"), 16)
                                hex_field(ex, ("spanId", "span_id"), 8)


def _attrs(point: Any, max_value_len: int) -> dict[str, str]:
    if not point.attributes:
        return {}
    out = {}
    for kv in point.attributes:
        v = value_text(kv.value, max_value_len)
        if v is not None:
            out[kv.key] = v
    return out


def decode_metrics(payload: bytes | ExportMetricsServiceRequest, content_type: str, *, bucket_seconds: int,
                   max_name_len: int = 256, max_value_len: int = 1024,
                   connector_service_stats: str = "servicegraph") -> MetricBatch:
    """Decode one OTLP metrics request; raises ``MalformedPayload``."""
    request = payload if isinstance(payload, ExportMetricsServiceRequest) else parse_request(
        payload, content_type, ExportMetricsServiceRequest(), _fix_ids, "resourceMetrics")
    batch_id = "metrics:" + request_digest(payload, request)
    width_ns = bucket_seconds * 1_000_000_000
    buckets: dict[tuple[str, int, str], MetricAgg] = {}
    cumulative: list[_Cumulative] = []
    reasons: Counter[str] = Counter()
    ignored: Counter[str] = Counter()
    accepted = 0
    graph: GraphDelta | None = None
    for rm in request.resource_metrics:
        res = resource_identity(rm.resource, max_name_len, max_value_len, require_service=False)
        service, infra = ("", ()) if isinstance(res, str) else (res[0], res[4])
        found = resource_entities(service, infra)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                data = getattr(metric, kind) if kind else None
                points = data.data_points if data is not None else ()
                rule = RULES.get(metric.name)
                conn = connectors.connector_rule(metric.name) if rule is None else None
                if conn is not None:
                    if graph is None:
                        graph = GraphDelta(batch_id="")
                    resource = None if isinstance(res, str) or not res[0] else (res[0], res[1], res[2], res[4])
                    accepted += _connector_points(metric, kind, data, points, conn, resource, graph,
                                                  cumulative, reasons, ignored, width_ns, bucket_seconds,
                                                  max_value_len, connector_service_stats)
                    continue
                if rule is None or kind not in ("gauge", "sum", "histogram"):
                    if points:
                        ignored["unknown metric" if rule is None else f"unsupported type {kind}"] += len(points)
                    continue
                as_counter = rule.counter or (kind == "sum" and data.is_monotonic) or kind == "histogram"
                temporality = getattr(data, "aggregation_temporality", _CUMULATIVE if rule.counter else 0)
                for p in points:
                    if not p.time_unix_nano:
                        reasons["missing time"] += 1
                        continue
                    attrs = _attrs(p, max_value_len)
                    canonical = rule.canonical
                    if rule.split is not None:
                        keys, table = rule.split
                        canonical = next((table[attrs[k]] for k in keys if attrs.get(k) in table), "")
                    if (not canonical or (rule.only and attrs.get(rule.only[0]) not in rule.only[1])
                            or (rule.skip and attrs.get(rule.skip[0]) in rule.skip[1])
                            or (rule.containers_only and attrs.get("container", "") in ("", "POD"))):
                        ignored["filtered attribute"] += 1
                        continue
                    entity = entity_of(rule, found, attrs)
                    if not entity:
                        ignored["no entity"] += 1
                        continue
                    if p.flags & _NO_RECORDED_VALUE:
                        ignored["no value"] += 1
                        continue
                    if kind == "histogram":
                        value, count = (p.sum if p.HasField("sum") else math.nan), int(p.count)
                    else:
                        which = p.WhichOneof("value")
                        value, count = (p.as_double if which == "as_double" else float(p.as_int)
                                        if which == "as_int" else math.nan), -1
                    if not math.isfinite(value):
                        ignored["no value"] += 1
                        continue
                    accepted += 1
                    if as_counter and (temporality == _CUMULATIVE or rule.counter):
                        series = (entity, metric.name, tuple(sorted(attrs.items())), tuple(sorted(infra)), service)
                        cumulative.append(_Cumulative(series, entity, canonical, p.start_time_unix_nano,
                                                      p.time_unix_nano, value, count))
                        continue
                    if count == 0:
                        continue  # a delta histogram without observations
                    key = (entity, p.time_unix_nano // width_ns * bucket_seconds, canonical)
                    agg = buckets.get(key)
                    if agg is None:
                        agg = buckets[key] = MetricAgg()
                    if count > 0:
                        agg.observe(value / count, count, value)
                    else:
                        agg.observe(value)
    if graph is not None:
        connectors.finish(graph)
    return MetricBatch(batch_id, buckets, cumulative, accepted, sum(reasons.values()), reasons, ignored, graph)


def _connector_points(metric: Any, kind: str | None, data: Any, points: Any, conn: connectors.ConnectorRule,
                      resource: tuple[str, str, str, tuple[str, ...]] | None, graph: GraphDelta,
                      cumulative: list[_Cumulative], reasons: Counter[str], ignored: Counter[str], width_ns: int,
                      bucket_seconds: int, max_value_len: int, service_stats: str) -> int:
    """Decode one connector metric's points (``ingest/connectors.py``); returns accepted."""
    name = metric.name
    want = "histogram" if conn.measure in ("client", "server", "duration") else "sum"
    if kind != want:
        if points:
            what = ("exponential histogram (configure the connector with explicit buckets)"
                    if kind == "exponential_histogram" else f"unsupported type {kind}")
            ignored[f"{conn.connector}: {what}"] += len(points)
        return 0
    temporality = data.aggregation_temporality
    scale = connectors.unit_ms(conn, metric.unit, name) if want == "histogram" else 1.0
    accepted = 0
    for p in points:
        if temporality not in (_DELTA, _CUMULATIVE):
            reasons[f"{name}: aggregation temporality unspecified"] += 1
            continue
        if not p.time_unix_nano:
            reasons["missing time"] += 1
            continue
        if p.flags & _NO_RECORDED_VALUE:
            ignored["no value"] += 1
            continue
        attrs = _attrs(p, max_value_len)
        meaning = connectors.interpret(conn, attrs, resource, service_stats, max_value_len)
        if isinstance(meaning, str):
            if meaning.startswith("rejected: "):
                reasons[f"{name}: {meaning[len('rejected: '):]}"] += 1
            else:
                ignored[meaning] += 1
            continue
        counts: tuple[int, ...] = ()
        if want == "histogram":
            value, count = (p.sum if p.HasField("sum") else math.nan), int(p.count)
            bounds = tuple(b * scale for b in p.explicit_bounds)
            counts = tuple(int(c) for c in p.bucket_counts)
            if counts and len(counts) != len(bounds) + 1:
                reasons[f"{name}: {len(counts)} bucket counts for {len(bounds)} bounds"] += 1
                continue
            if count and not math.isfinite(value):
                reasons[f"{name}: histogram without a sum"] += 1
                continue
            if value < 0:
                reasons[f"{name}: negative duration sum"] += 1
                continue
            meaning = replace(meaning, bounds_ms=bounds)
        else:
            which = p.WhichOneof("value")
            value = p.as_double if which == "as_double" else float(p.as_int) if which == "as_int" else math.nan
            count = -1
            if not math.isfinite(value):
                ignored["no value"] += 1
                continue
            if value < 0:
                reasons[f"{name}: negative count"] += 1
                continue
        accepted += 1
        if temporality == _CUMULATIVE:
            series = ("connector", name, tuple(sorted(attrs.items())), resource)
            cumulative.append(_Cumulative(series, "", "", p.start_time_unix_nano, p.time_unix_nano, value, count,
                                          meaning, counts, scale))
            continue
        start = p.start_time_unix_nano or p.time_unix_nano
        mid = (start + p.time_unix_nano) // 2
        connectors.apply(meaning, graph, mid // width_ns * bucket_seconds,
                         round(value) if count < 0 else count, value, counts, scale)
    return accepted
