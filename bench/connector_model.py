"""A MODEL of the OpenTelemetry Collector's servicegraph and spanmetrics connectors (issue 16, part 3).

There is no Collector binary on this machine, so ``bench/servicegraph.py`` turns the
simulator's spans into the metrics these connectors would emit, following their code in
opentelemetry-collector-contrib (``connector/servicegraphconnector/connector.go``,
``connector/spanmetricsconnector/connector.go``; read for this file, not copied). It is a
model, not the connector: what it reproduces and where it idealises is listed here.

servicegraph (reproduced):

* a CLIENT/PRODUCER span waits under ``(trace, span id)``, a SERVER/CONSUMER span under
  ``(trace, parent span id)``; when both halves are there the edge completes (client =
  client's ``service.name``, server = server's; ``connection_type`` "" or
  ``messaging_system`` for PRODUCER/CONSUMER; ``failed`` = either half has status ERROR;
  client latency = client span duration, server latency = server span duration);
* a CLIENT span with ``db.name`` (``database_name_attributes`` default) completes at once
  as a ``database`` edge: server = the db name, server latency = client latency;
* expiry (``virtualNode`` gate, stable): a server half whose parent span id is empty
  becomes an edge from ``user`` (client latency never set: 0); a client half becomes an
  edge to the first ``virtual_node_peer_attributes`` value, else ``unknown``; other
  halves (a server whose client never came) are dropped; all ``virtual_node``;
* one series per (client, server, connection_type, failed, dimensions), CUMULATIVE from
  the connector's start time, ``traces_service_graph_request_total`` /
  ``…_request_failed_total`` (int sums) and ``…_request_server`` / ``…_client``
  (explicit histograms, seconds, default bounds 2 ms … 15 s), flushed every
  ``metrics_flush_interval`` (default 60 s); series not updated for 15 minutes are
  deleted (``cleanCache``), so a series that comes back restarts from zero.

servicegraph (configured as a deployment that wants rootgraph's ids would):
``dimensions: [service.namespace, db.system, host.name, k8s.node.name, k8s.pod.name]``
(labels ``client_<dim>`` / ``server_<dim>``, looked up on the resource then the span),
``virtual_node_peer_attributes: [peer.service, db.name, db.system, server.address]``.

Idealised: the clock is the spans' end time (a span "arrives" when it ends, no export
delay); ``store.ttl`` is 10 s on that clock and ``max_items`` unbounded, i.e. the
Collector fleet routes by trace id (``loadbalancing`` exporter) and pairs everything a
correctly sized store would. The connector's flush phase is not aligned to the minute:
the first flush is ``flush_s`` after ``start = first span end - 7 s``.

spanmetrics: per resource, one series per (service.name, span.name, span.kind,
status.code); ``traces.span.metrics.calls`` (sum) and ``traces.span.metrics.duration``
(explicit histogram, ms, default bounds 2 ms … 15 s), CUMULATIVE with start = the
series' creation, flushed every 15 s (``metrics_flush_interval`` default), the span's
resource on the metrics' resource.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

#: the connectors' default explicit bounds (servicegraph in seconds; spanmetrics in ms)
SG_BOUNDS_S = (0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1, 1.4, 2, 5, 10, 15)
SM_BOUNDS_MS = (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000)
SG_DIMENSIONS = ("service.namespace", "db.system", "host.name", "k8s.node.name", "k8s.pod.name")
SG_PEER_ATTRIBUTES = ("peer.service", "db.name", "db.system", "server.address")
_CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
_KINDS = {1: "SPAN_KIND_INTERNAL", 2: "SPAN_KIND_SERVER", 3: "SPAN_KIND_CLIENT", 4: "SPAN_KIND_PRODUCER",
          5: "SPAN_KIND_CONSUMER"}
_STATUS = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}


@dataclass(slots=True)
class SpanRow:
    """What the connectors read of one span."""

    trace: str
    span: str
    parent: str
    kind: int
    name: str
    start_ns: int
    end_ns: int
    error: bool
    status: int
    resource: dict[str, str]
    attrs: dict[str, str]


def _kv(items: list) -> dict[str, str]:
    out = {}
    for kv in items or ():
        v = kv.get("value") or {}
        for k in ("stringValue", "intValue", "boolValue", "doubleValue"):
            if k in v:
                out[kv["key"]] = str(v[k]).lower() if k == "boolValue" else str(v[k])
                break
    return out


def read_spans(traces: Path) -> list[SpanRow]:
    """Every span of a simulator case's OTLP JSON lines (Collector file exporter format)."""
    rows: list[SpanRow] = []
    with open(traces, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            for rs in json.loads(line).get("resourceSpans", ()):
                res = _kv(rs.get("resource", {}).get("attributes", ()))
                for ss in rs.get("scopeSpans", ()):
                    for s in ss.get("spans", ()):
                        code = int((s.get("status") or {}).get("code", 0) or 0)
                        rows.append(SpanRow(s["traceId"], s["spanId"], s.get("parentSpanId", ""),
                                            int(s.get("kind", 0)), s.get("name", ""),
                                            int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"]),
                                            code == 2, code, res, _kv(s.get("attributes", ()))))
    rows.sort(key=lambda r: r.end_ns)
    return rows


@dataclass(slots=True)
class _Hist:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def observe(self, x: float) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)
        self.counts[bisect.bisect_left(self.bounds, x)] += 1  # Go's sort.SearchFloat64s
        self.total += x
        self.n += 1


@dataclass(slots=True)
class _Series:
    attrs: tuple[tuple[str, str | bool], ...]
    start_ns: int
    requests: int = 0
    failed: int = 0
    client: _Hist = field(default_factory=lambda: _Hist(SG_BOUNDS_S))
    server: _Hist = field(default_factory=lambda: _Hist(SG_BOUNDS_S))
    updated_ns: int = 0


def _attrs(pairs: tuple[tuple[str, str | bool], ...]) -> list[KeyValue]:
    out = []
    for k, v in pairs:
        kv = KeyValue(key=k)
        if isinstance(v, bool):
            kv.value.bool_value = v
        else:
            kv.value.string_value = v
        out.append(kv)
    return out


def _hist_point(h: _Hist, attrs: list[KeyValue], start_ns: int, t_ns: int) -> metrics_pb2.HistogramDataPoint:
    return metrics_pb2.HistogramDataPoint(attributes=attrs, start_time_unix_nano=start_ns, time_unix_nano=t_ns,
                                          count=h.n, sum=h.total, bucket_counts=h.counts or [0] * (len(h.bounds) + 1),
                                          explicit_bounds=h.bounds)


class ServiceGraphModel:
    """The servicegraph connector over a time-ordered span stream (module doc)."""

    def __init__(self, start_ns: int, flush_s: float = 60.0, ttl_s: float = 10.0) -> None:
        self.start_ns = start_ns
        self.flush_ns = int(flush_s * 1e9)
        self.ttl_ns = int(ttl_s * 1e9)
        self.store: dict[tuple[str, str], dict] = {}
        self.series: dict[tuple, _Series] = {}
        self._expired_at = start_ns

    def _dims(self, prefix: str, res: dict[str, str], attrs: dict[str, str]) -> dict[str, str]:
        out = {}
        for d in SG_DIMENSIONS:
            v = res.get(d) or attrs.get(d)
            if v:
                out[f"{prefix}_{d}"] = v
        return out

    def _complete(self, e: dict, now_ns: int) -> None:
        dims = tuple(sorted(e.get("dims", {}).items()))
        key = (e["client"], e["server"], e["ctype"], e["failed"], dims)
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = _Series((("client", e["client"]), ("server", e["server"]),
                                            ("connection_type", e["ctype"]), ("failed", e["failed"]), *dims),
                                           self.start_ns)
        s.requests += 1
        if e["failed"]:
            s.failed += 1
        s.server.observe(e.get("server_s", 0.0))
        s.client.observe(e.get("client_s", 0.0))
        s.updated_ns = now_ns

    def _expire(self, now_ns: int, everything: bool = False) -> None:
        dead = [k for k, e in self.store.items() if everything or e["at"] < now_ns - self.ttl_ns]
        for k in dead:
            e = self.store.pop(k)
            if not e.get("client") and not k[1]:
                e["client"], e["ctype"] = "user", "virtual_node"
                self._complete(e, now_ns)
            if not e.get("server") and e.get("client"):
                e["server"] = next((v for a in SG_PEER_ATTRIBUTES if (v := e["peer"].get(a))), "unknown")
                e["ctype"] = "virtual_node"
                self._complete(e, now_ns)

    def span(self, r: SpanRow) -> None:
        if r.end_ns - self._expired_at >= 2 * 10**9:  # store_expiration_loop: every 2 s
            self._expired_at = r.end_ns
            self._expire(r.end_ns)
        svc = r.resource.get("service.name")
        if not svc:
            return
        if r.kind in (3, 4):  # CLIENT, PRODUCER
            key = (r.trace, r.span)
            e = self.store.setdefault(key, {"at": r.end_ns, "failed": False, "dims": {}, "ctype": ""})
            e["client"], e["client_s"] = svc, (r.end_ns - r.start_ns) / 1e9
            e["ctype"] = "messaging_system" if r.kind == 4 else e.get("ctype", "")
            e["failed"] = e["failed"] or r.error
            e["dims"].update(self._dims("client", r.resource, r.attrs))
            e["peer"] = {a: r.attrs[a] for a in SG_PEER_ATTRIBUTES if r.attrs.get(a)}
            db = r.attrs.get("db.name") or r.resource.get("db.name")
            if db:
                e["ctype"], e["server"], e["server_s"] = "database", db, e["client_s"]
        elif r.kind in (2, 5):  # SERVER, CONSUMER
            key = (r.trace, r.parent)
            e = self.store.setdefault(key, {"at": r.end_ns, "failed": False, "dims": {}, "ctype": ""})
            e["server"], e["server_s"] = svc, (r.end_ns - r.start_ns) / 1e9
            e["ctype"] = "messaging_system" if r.kind == 5 else e["ctype"]
            e["failed"] = e["failed"] or r.error
            e["dims"].update(self._dims("server", r.resource, r.attrs))
        else:
            return
        if e.get("client") and e.get("server"):
            del self.store[key]
            self._complete(e, r.end_ns)

    def flush(self, t_ns: int) -> ExportMetricsServiceRequest:
        """What one flush at ``t_ns`` exports (cumulative), after expiring and cleaning."""
        self._expire(t_ns)
        for k in [k for k, s in self.series.items() if s.updated_ns + 15 * 60 * 10**9 < t_ns]:
            del self.series[k]  # cleanCache: 15 minutes without an update
        req = ExportMetricsServiceRequest()
        sm = req.resource_metrics.add().scope_metrics.add()
        sm.scope.name = "traces_service_graph"
        if not self.series:
            return req
        total = sm.metrics.add(name="traces_service_graph_request_total")
        total.sum.is_monotonic, total.sum.aggregation_temporality = True, _CUMULATIVE
        failed = sm.metrics.add(name="traces_service_graph_request_failed_total")
        failed.sum.is_monotonic, failed.sum.aggregation_temporality = True, _CUMULATIVE
        server = sm.metrics.add(name="traces_service_graph_request_server", unit="s")
        server.histogram.aggregation_temporality = _CUMULATIVE
        client = sm.metrics.add(name="traces_service_graph_request_client", unit="s")
        client.histogram.aggregation_temporality = _CUMULATIVE
        for s in self.series.values():
            attrs = _attrs(s.attrs)
            total.sum.data_points.add(attributes=attrs, start_time_unix_nano=s.start_ns, time_unix_nano=t_ns,
                                      as_int=s.requests)
            if s.failed:
                failed.sum.data_points.add(attributes=attrs, start_time_unix_nano=s.start_ns, time_unix_nano=t_ns,
                                           as_int=s.failed)
            server.histogram.data_points.append(_hist_point(s.server, attrs, s.start_ns, t_ns))
            client.histogram.data_points.append(_hist_point(s.client, attrs, s.start_ns, t_ns))
        if not failed.sum.data_points:
            sm.metrics.remove(failed)
        return req


class SpanMetricsModel:
    """The spanmetrics connector (module doc): per resource, per span identity."""

    def __init__(self) -> None:
        self.series: dict[tuple, list] = {}  # key -> [resource, attrs, start_ns, calls, _Hist]

    def span(self, r: SpanRow) -> None:
        svc = r.resource.get("service.name")
        if not svc:
            return
        res = tuple(sorted(r.resource.items()))
        attrs = (("service.name", svc), ("span.name", r.name), ("span.kind", _KINDS.get(r.kind, "SPAN_KIND_UNSPECIFIED")),
                 ("status.code", _STATUS.get(r.status, "STATUS_CODE_UNSET")))
        s = self.series.get((res, attrs))
        if s is None:
            s = self.series[(res, attrs)] = [res, attrs, r.end_ns, 0, _Hist(SM_BOUNDS_MS)]
        s[3] += 1
        s[4].observe(max(r.end_ns - r.start_ns, 0) / 1e6)

    def flush(self, t_ns: int) -> ExportMetricsServiceRequest:
        req = ExportMetricsServiceRequest()
        by_res: dict[tuple, list] = {}
        for s in self.series.values():
            by_res.setdefault(s[0], []).append(s)
        for res, items in by_res.items():
            rm = req.resource_metrics.add()
            rm.resource.attributes.extend(_attrs(res))
            sm = rm.scope_metrics.add()
            sm.scope.name = "spanmetricsconnector"
            calls = sm.metrics.add(name="traces.span.metrics.calls")
            calls.sum.is_monotonic, calls.sum.aggregation_temporality = True, _CUMULATIVE
            dur = sm.metrics.add(name="traces.span.metrics.duration", unit="ms")
            dur.histogram.aggregation_temporality = _CUMULATIVE
            for _, attrs, start, n, h in items:
                a = _attrs(attrs)
                calls.sum.data_points.add(attributes=a, start_time_unix_nano=start, time_unix_nano=t_ns, as_int=n)
                dur.histogram.data_points.append(_hist_point(h, a, start, t_ns))
        return req


def connector_requests(spans: list[SpanRow], *, spanmetrics: bool = False, sg_flush_s: float = 60.0,
                       sm_flush_s: float = 15.0) -> Iterator[ExportMetricsServiceRequest]:
    """The connectors' exports over ``spans`` (sorted by end time), in time order."""
    if not spans:
        return
    start = spans[0].end_ns - 7 * 10**9
    sg = ServiceGraphModel(start, sg_flush_s)
    sm = SpanMetricsModel() if spanmetrics else None
    step_sg, step_sm = int(sg_flush_s * 1e9), int(sm_flush_s * 1e9)
    next_sg, next_sm = start + step_sg, start + step_sm
    i = 0
    end = spans[-1].end_ns + step_sg + sg.ttl_ns
    while next_sg <= end or (sm is not None and next_sm <= end):
        t = min(next_sg, next_sm) if sm is not None else next_sg
        while i < len(spans) and spans[i].end_ns <= t:
            sg.span(spans[i])
            if sm is not None:
                sm.span(spans[i])
            i += 1
        if t == next_sg:
            req = sg.flush(t)
            if req.resource_metrics[0].scope_metrics[0].metrics:
                yield req
            next_sg += step_sg
        if sm is not None and t == next_sm:
            req = sm.flush(t)
            if req.resource_metrics:
                yield req
            next_sm += step_sm
