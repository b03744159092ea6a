"""The Collector's servicegraph and spanmetrics connector metrics as span statistics (issue 16, part 3).

A large fleet can let its Collectors do the per-span work: the ``servicegraph``
connector pairs client and server spans into per-edge counters and latency histograms,
the ``spanmetrics`` connector counts every span per (service, name, kind, status). This
module maps their OTLP metric points onto the records the span path fills
(``graph.records.StatsBucket`` in ``GraphDelta.edge_buckets`` / ``service_buckets``,
``Entity``, ``async_edges``, ``runs_on``), so the graph, the stored statistics and
inference are the same for both inputs; ``ingest/metrics.py`` decodes the points and
differences cumulative series (``CounterState``), this module says what a point means.

What the connectors emit over OTLP (read in opentelemetry-collector-contrib
``connector/servicegraphconnector/connector.go`` and ``connector/spanmetricsconnector/
connector.go``, ``factory.go``, README):

* servicegraph: ``traces_service_graph_request_total`` and ``…_request_failed_total``
  (monotonic int sums), ``traces_service_graph_request_server`` and ``…_client``
  (explicit-bucket histograms, unit ``s``; ``ms`` with the deprecated
  ``legacyLatencyUnitMs`` gate; ``traces_service_graph_request_duration`` for the server
  side with the deprecated ``legacyLatencyMetricNames`` gate), always CUMULATIVE, start
  time = the connector's start (so a Collector restart shows as a new start time), one
  series per (client, server, connection_type, failed, dimensions), an empty resource.
  Through the ``prometheus`` exporter (and a ``prometheus`` receiver back into OTLP) the
  histograms gain the unit suffix (``…_server_seconds``) and names may carry a
  namespace prefix; both spellings are accepted, with or without ``_total``.
  ``connection_type``: "" (client/server pair), ``messaging_system`` (producer/consumer),
  ``database`` (client span with ``db.name``; server = the db name, latency = the
  client's), ``virtual_node`` (an expired half: client ``user`` for a root server span,
  or server = the first peer attribute, ``unknown`` when none).
  ``…_unpaired_spans_total`` / ``…_dropped_spans_total`` say nothing about traffic and
  are ignored like any unknown name.
* spanmetrics: ``traces.span.metrics.calls`` (sum) and ``traces.span.metrics.duration``
  (histogram, unit ``ms`` by default, or ``s``) -- ``calls`` / ``duration`` without the
  default namespace (legacy gate or ``namespace: ""``), ``calls_total`` / ``latency`` from
  the older processor, ``traces_span_metrics_calls_total`` /
  ``…_duration_milliseconds`` after Prometheus normalisation; attributes ``service.name``,
  ``span.name``, ``span.kind`` (``SPAN_KIND_SERVER`` …), ``status.code``
  (``STATUS_CODE_ERROR`` …), the spans' resource copied onto the metrics' resource;
  CUMULATIVE (start = when the series was created) or DELTA (``aggregation_temporality``).

Identity: the connectors label services by ``service.name`` only. A service's id is
``namespace/name`` when its spans carry ``service.namespace`` (``graph/records.py``), so
configure ``dimensions: [service.namespace]`` on the servicegraph connector (its labels
``client_service.namespace`` / ``server_service.namespace``) and keep the resource of the
spanmetrics connector (it does by default); likewise ``client_db.system`` names a
database the way spans do (``db:<system>/<name>``), and ``server_host.name`` /
``server_k8s.node.name`` / ``server_k8s.pod.name`` give RUNS_ON. Without them the ids are
bare names, which is right only when the spans carry no namespace.

Which connector gives per-service statistics (``IngestConfig.connector_service_stats``):
both describe a service's entry spans, so taking both would count every request twice.
``servicegraph`` (default: the input the issue is about, and the only one that gives the
graph): a service's requests, errors and latency are the server side of its incoming
edges; spanmetrics points are then ignored (counted). ``spanmetrics``: from its SERVER
and CONSUMER spans, which also counts entry spans the servicegraph connector could not
pair; servicegraph then gives the edges only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rootgraph.graph.records import HISTOGRAM_BUCKETS, Entity, EntityKind, GraphDelta, StatsBucket, latency_bucket
from rootgraph.ingest.pairing import USER
from rootgraph.ingest.spans import infra_id

__all__ = ["CONNECTOR_SERVICE_STATS", "ConnectorPoint", "ConnectorRule", "connector_rule", "interpret",
           "log_histogram"]

#: values of ``IngestConfig.connector_service_stats`` (module doc)
CONNECTOR_SERVICE_STATS = ("servicegraph", "spanmetrics")


@dataclass(frozen=True, slots=True)
class ConnectorRule:
    """What a connector metric name measures."""

    connector: str  # "servicegraph" | "spanmetrics"
    #: servicegraph: requests | failed | client | server; spanmetrics: calls | duration
    measure: str
    #: milliseconds per unit when the metric states no unit (the connector's default)
    default_ms: float


_SG = "traces_service_graph_request"
_SG_SUFFIX = {
    "_total": "requests", "": "requests", "_failed_total": "failed", "_failed": "failed",
    "_server_seconds": "server", "_server": "server", "_server_milliseconds": "server",
    "_client_seconds": "client", "_client": "client", "_client_milliseconds": "client",
    "_duration_seconds": "server", "_duration": "server", "_duration_milliseconds": "server",
}
_SM_NAMES = {"calls": "calls", "calls_total": "calls", "duration": "duration", "latency": "duration",
             "duration_milliseconds": "duration", "duration_seconds": "duration",
             "latency_milliseconds": "duration"}
#: spanmetrics namespaces accepted in front of its names: the default, the README's
#: example, none, and their Prometheus forms. Arbitrary prefixes are not: ``x.calls`` is
#: too common a name to claim.
_SM_PREFIXES = ("traces.span.metrics.", "span.metrics.", "traces_span_metrics_", "span_metrics_", "")


def connector_rule(name: str) -> ConnectorRule | None:
    """The rule of a connector metric name, or None when it is not one."""
    at = name.find(_SG)
    if at >= 0 and (at == 0 or name[at - 1] in "_."):
        measure = _SG_SUFFIX.get(name[at + len(_SG):])
        return ConnectorRule("servicegraph", measure, 1000.0) if measure else None
    for prefix in _SM_PREFIXES:
        if name.startswith(prefix):
            measure = _SM_NAMES.get(name[len(prefix):])
            if measure:
                return ConnectorRule("spanmetrics", measure, 1.0)
    return None


def unit_ms(rule: ConnectorRule, unit: str, name: str) -> float:
    """Milliseconds per histogram unit: the stated unit, else the name's suffix, else the
    connector's default (servicegraph: seconds; spanmetrics: milliseconds)."""
    if unit == "s" or (not unit and name.endswith("_seconds")):
        return 1000.0
    if unit == "ms" or (not unit and name.endswith("_milliseconds")):
        return 1.0
    if unit == "us":
        return 0.001
    return rule.default_ms


def log_histogram(bounds_ms: tuple[float, ...], counts: tuple[int, ...]) -> list[int]:
    """An explicit-bucket histogram (bounds in ms, ``len(bounds) + 1`` counts) re-binned
    onto rootgraph's 40 log-scale buckets (``graph.records.latency_bucket``).

    Each explicit bucket's count is spread over the log buckets it overlaps in proportion
    to the overlap in log space (observations assumed log-uniform within it), whole
    counts by largest remainder so the total is exact. The first bucket's lower edge is
    taken as a quarter of its bound and the overflow bucket as one sqrt(2) step above its
    lower bound: a percentile read back is then an estimate within the connector's own
    bucket, which is all the connector kept.
    """
    out = [0] * HISTOGRAM_BUCKETS
    edges = (0.0, *bounds_ms, math.inf)
    for i, c in enumerate(counts):
        if c <= 0:
            continue
        lo, hi = edges[i], edges[i + 1]
        if hi == math.inf:
            out[latency_bucket(lo * 1.2 if lo > 0 else 0.1)] += c
            continue
        lo = max(lo, hi / 4.0, 1e-6)
        first, last = latency_bucket(lo * 1.000001), latency_bucket(hi)
        if first >= last:
            out[last] += c
            continue
        span = math.log(hi / lo)
        shares = []
        for j in range(first, last + 1):
            b_lo = 0.0 if j == 0 else 0.1 * 2.0 ** ((j - 1) / 2.0)
            b_hi = math.inf if j == HISTOGRAM_BUCKETS - 1 else 0.1 * 2.0 ** (j / 2.0)
            part = math.log(min(hi, b_hi) / max(lo, b_lo)) / span if min(hi, b_hi) > max(lo, b_lo) else 0.0
            shares.append((j, part * c))
        whole = [(j, int(s)) for j, s in shares]
        left = c - sum(n for _, n in whole)
        order = sorted(range(len(shares)), key=lambda k: shares[k][1] - whole[k][1], reverse=True)
        for k in order[:left]:
            whole[k] = (whole[k][0], whole[k][1] + 1)
        for j, n in whole:
            out[j] += n
    return out


@dataclass(frozen=True, slots=True)
class ConnectorPoint:
    """One accepted connector data point: where its increase goes (see :func:`apply`)."""

    rule: ConnectorRule
    #: (caller, callee) for servicegraph, ("", service) for spanmetrics
    caller: Entity | None
    callee: Entity
    connection_type: str
    #: failed (servicegraph ``failed`` label) / error status (spanmetrics)
    failed: bool
    #: the callee is an instrumented service whose entry spans these are
    server_is_service: bool
    #: infra ids the callee runs on (spanmetrics resource, servicegraph server_ labels)
    infra: tuple[str, ...]
    #: histogram bounds in ms (empty for sums)
    bounds_ms: tuple[float, ...] = ()


def _service(name: str, namespace: str) -> Entity:
    return Entity(f"{namespace}/{name}" if namespace else name, name, EntityKind.SERVICE, namespace)


def _label(attrs: dict[str, str], *keys: str) -> str:
    for k in keys:
        v = attrs.get(k)
        if v:
            return v
    return ""


_SERVER_INFRA = (("host.name", ("server_host.name", "server_host_name")),
                 ("k8s.node.name", ("server_k8s.node.name", "server_k8s_node_name")),
                 ("k8s.pod.name", ("server_k8s.pod.name", "server_k8s_pod_name")))
_ENTRY_KINDS = {"SPAN_KIND_SERVER", "SERVER", "SPAN_KIND_CONSUMER", "CONSUMER"}
_ERROR = {"STATUS_CODE_ERROR", "ERROR", "Error"}


def interpret(rule: ConnectorRule, attrs: dict[str, str], resource: tuple[str, str, str, tuple[str, ...]] | None,
              service_stats: str, max_value_len: int = 1024) -> ConnectorPoint | str:
    """A point's meaning, or why it cannot have one.

    A returned string starting with ``"rejected: "`` is malformed input of a known
    connector name (a missing label): ``partial_success`` counts it. Any other string is
    a reason to ignore a well-formed point (counted in ``/metrics``, never stored).
    ``resource`` is ``(service id, name, namespace, infra ids)`` of the point's resource
    when it names a service (spanmetrics), else None.
    """
    if rule.connector == "servicegraph":
        client, server = attrs.get("client", ""), attrs.get("server", "")
        if not client or not server:
            return f"rejected: {rule.measure} point without a '{'client' if not client else 'server'}' attribute"
        ctype = attrs.get("connection_type", "")
        failed = attrs.get("failed", "false") == "true"
        client_ns = _label(attrs, "client_service.namespace", "client_service_namespace")
        # "user" is the connector's caller of root spans (an expired server half, always
        # virtual_node); a service may be called "user" too (Sock Shop has one)
        is_user = client == "user" and ctype == "virtual_node" and not client_ns
        caller = USER if is_user else _service(client, client_ns)
        infra: tuple[str, ...] = ()
        if ctype == "database":
            system = _label(attrs, "client_db.system", "client_db_system", "client_db.system.name")
            name = f"{system}/{server}" if system else server
            callee = Entity(f"db:{name}", name, EntityKind.DATABASE)
            is_service = False
        elif ctype == "virtual_node" and not is_user:
            if server == "unknown":
                return "servicegraph edge to an unknown virtual node"
            # the first of the connector's virtual_node_peer_attributes the client span
            # had; the label does not say which, so it is an uninstrumented external
            # peer, named like the span path's ``server.address`` rule (``ext:<name>``)
            callee, is_service = Entity(f"ext:{server}", server, EntityKind.EXTERNAL), False
        else:
            callee = _service(server, _label(attrs, "server_service.namespace", "server_service_namespace"))
            is_service = True
            infra = tuple(infra_id(key, v, max_value_len) for key, labels in _SERVER_INFRA
                          if (v := _label(attrs, *labels)))
        if service_stats != "servicegraph":
            is_service = False  # spanmetrics gives the service side (module doc)
        return ConnectorPoint(rule, caller, callee, ctype, failed, is_service, infra)
    # spanmetrics
    if service_stats != "spanmetrics":
        return "spanmetrics point (service statistics from servicegraph)"
    kind = _label(attrs, "span.kind", "span_kind")
    if not kind:
        return f"rejected: {rule.measure} point without a 'span.kind' attribute"
    if kind not in _ENTRY_KINDS:
        return "spanmetrics point of a non-entry span kind"
    if resource is not None:
        sid, name, namespace, infra = resource
        callee = Entity(sid, name, EntityKind.SERVICE, namespace)
    else:
        name = _label(attrs, "service.name", "service_name")
        if not name:
            return f"rejected: {rule.measure} point without a 'service.name' attribute"
        callee, infra = _service(name, _label(attrs, "service.namespace", "service_namespace")), ()
    failed = _label(attrs, "status.code", "status_code") in _ERROR
    return ConnectorPoint(rule, None, callee, "", failed, True, infra)


def apply(p: ConnectorPoint, delta: GraphDelta, bucket_s: int, n: int, total: float, counts: tuple[int, ...],
          scale_ms: float) -> None:
    """Add one point's increase to ``delta``: ``n`` requests (sums), or ``n`` observations
    summing to ``total`` (in the metric's unit) with per-bucket ``counts`` (histograms).

    Mapping onto ``StatsBucket`` (``ingest/aggregate.py`` fills the same fields from spans):
    an edge's requests/errors from the request counters, its duration and histogram from
    the client side (for ``user`` edges, whose client side the connector never measured,
    the server side, as the span path measures them); a paired synchronous edge
    (connection_type "") counts its server observations in ``paired`` and client minus
    server time in ``gap_ms_sum``; the server's service bucket gets the requests, errors
    and server-side latency. Self time and exclusive errors stay 0: the metrics do not
    carry them (README "Pre-aggregated input").
    """
    if n <= 0:
        return
    m = p.rule.measure
    callee = p.callee
    delta.entities.setdefault(callee.id, callee)
    for i in p.infra:
        prefix, _, name = i.partition(":")
        delta.entities.setdefault(i, Entity(i, name, {"host": EntityKind.HOST, "node": EntityKind.NODE,
                                                       "pod": EntityKind.POD}[prefix]))
        delta.runs_on.add((callee.id, i))
    hist = log_histogram(p.bounds_ms, counts) if counts else None
    ms = total * scale_ms
    service = None
    if p.server_is_service and m in ("requests", "failed", "server", "calls", "duration"):
        service = _bucket(delta.service_buckets, (callee.id, bucket_s))
    edge = None
    if p.caller is not None:
        delta.entities.setdefault(p.caller.id, p.caller)
        if p.connection_type == "messaging_system":
            delta.async_edges.add((p.caller.id, callee.id))
        user_edge = p.caller is USER
        if m in ("requests", "failed") or (m == "client" and not user_edge) or (m == "server" and (
                user_edge or p.connection_type == "")):
            edge = _bucket(delta.edge_buckets, (p.caller.id, callee.id, bucket_s))
    if m in ("requests", "calls"):
        for b in (edge, service):
            if b is not None:
                b.requests += n
                if m == "calls" and p.failed:
                    b.errors += n
    elif m == "failed":
        for b in (edge, service):
            if b is not None:
                b.errors += n
    elif m == "client":
        if edge is not None:
            edge.duration_ms_sum += ms
            _add_hist(edge, hist)
            if p.connection_type == "":
                edge.gap_ms_sum += ms
    else:  # server / duration
        if service is not None:
            service.duration_ms_sum += ms
            _add_hist(service, hist)
        if edge is not None:
            if p.caller is USER:
                edge.duration_ms_sum += ms
                _add_hist(edge, hist)
            else:
                edge.paired += n
                edge.gap_ms_sum -= ms


def _bucket(into: dict, key: tuple) -> StatsBucket:  # type: ignore[type-arg]
    b = into.get(key)
    if b is None:
        b = into[key] = StatsBucket()
    return b


def _add_hist(b: StatsBucket, hist: list[int] | None) -> None:
    if hist is not None:
        for i, c in enumerate(hist):
            b.histogram[i] += c


def copy_stats(d: GraphDelta) -> GraphDelta:
    """An independent copy of the span-statistics parts of ``d`` (a retried write must
    find the decoded batch unchanged)."""
    return GraphDelta(batch_id=d.batch_id, entities=dict(d.entities),
                      edges={k: v.copy() for k, v in d.edges.items()},
                      service_buckets={k: v.copy() for k, v in d.service_buckets.items()},
                      edge_buckets={k: v.copy() for k, v in d.edge_buckets.items()},
                      runs_on=set(d.runs_on), async_edges=set(d.async_edges))


def finish(delta: GraphDelta) -> None:
    """``edges`` totals from ``edge_buckets`` (as ``aggregate._add_calls`` does)."""
    for (caller, callee, _), b in delta.edge_buckets.items():
        total = delta.edges.get((caller, callee))
        if total is None:
            delta.edges[(caller, callee)] = StatsBucket(b.requests, b.errors, b.duration_ms_sum, 0.0, 0,
                                                        list(b.histogram))
        else:
            total.requests += b.requests
            total.errors += b.errors
            total.duration_ms_sum += b.duration_ms_sum
            total.histogram = [x + y for x, y in zip(total.histogram, b.histogram)]
