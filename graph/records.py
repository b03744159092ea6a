"""Typed records that cross stage boundaries through the graph.

`graph/` is the hub of the design: ingest produces a :class:`GraphDelta` that the
store writes, and inference reads a :class:`WindowData` that the store assembles. Both
are plain frozen/slotted dataclasses so the stages never see a Neo4j record, and unit
tests of pure logic can build them by hand.

Identity rules (DESIGN.md "Neo4j is the system of record"):

* a service's id is ``"<service.namespace>/<service.name>"`` when the namespace is
  set, else ``service.name``;
* virtual nodes (uninstrumented peers) get a prefixed id, e.g. ``"db:postgresql/orders"``,
  ``"queue:kafka/payments"``, ``"ext:api.stripe.com"``; ``"user"`` is the caller of root
  spans;
* infrastructure entities: ``"host:<host.name>"``, ``"node:<k8s.node.name>"``,
  ``"pod:<k8s.pod.name>"``.

Time is integer epoch milliseconds for instants and integer epoch *minutes* (or the
configured bucket width, in seconds) for buckets, so the store never needs to parse
dates and buckets compare as integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import orjson


class EntityKind(str, Enum):
    """What a node in the dependency graph is; stored as ``Service.kind``."""

    SERVICE = "service"
    DATABASE = "database"
    MESSAGING = "messaging"
    EXTERNAL = "external"
    USER = "user"
    HOST = "host"
    NODE = "node"
    POD = "pod"


#: Number of latency histogram buckets; see :func:`latency_bucket`.
HISTOGRAM_BUCKETS = 40


def latency_bucket(duration_ms: float) -> int:
    """Index of the log-scale histogram bucket for a duration.

    Bucket ``i`` holds durations in ``(B(i-1), B(i)]`` with ``B(i) = 0.1 ms * 2**(i/2)``
    (bounds grow by sqrt(2), so a percentile read back from the histogram is within
    ~19% of the true value). Bucket 0 holds everything up to 0.1 ms, the last bucket
    everything above ~52 s.
    """
    if duration_ms <= 0.1:
        return 0
    i = math.ceil(2.0 * math.log2(duration_ms / 0.1))
    return min(max(i, 0), HISTOGRAM_BUCKETS - 1)


def bucket_upper_bound_ms(index: int) -> float:
    """Upper bound (ms) of histogram bucket ``index`` (see :func:`latency_bucket`)."""
    return 0.1 * 2.0 ** (index / 2.0)


@dataclass(slots=True)
class Entity:
    """A node of the dependency graph (service, virtual node, infra entity or user)."""

    id: str
    name: str
    kind: EntityKind
    namespace: str = ""


@dataclass(slots=True)
class StatsBucket:
    """Additive statistics of one entity (as server) or one edge in one time bucket.

    Every field is a sum, so buckets from different batches merge by addition and a
    store can apply them with ``x = x + $delta``.
    """

    requests: int = 0
    errors: int = 0
    duration_ms_sum: float = 0.0
    #: Exclusive ("self") time: duration minus the union of outbound calls. Service
    #: buckets only; 0 on edges.
    self_ms_sum: float = 0.0
    #: Spans that failed while none of their outbound calls failed. Service only.
    exclusive_errors: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BUCKETS)
    #: Edges only: calls whose SERVER half paired (sync), and the sum over them of
    #: client duration minus server duration (ms): time spent between the two
    #: instrumented ends (network, proxies, queues in front of the server). 0 on
    #: services and on data written before these fields existed.
    paired: int = 0
    gap_ms_sum: float = 0.0

    def copy(self) -> "StatsBucket":
        """An independent copy (the histogram list is not shared)."""
        return StatsBucket(self.requests, self.errors, self.duration_ms_sum, self.self_ms_sum,
                           self.exclusive_errors, list(self.histogram), self.paired, self.gap_ms_sum)

    def add(self, other: "StatsBucket") -> None:
        """Merge ``other`` into this bucket in place."""
        self.requests += other.requests
        self.errors += other.errors
        self.duration_ms_sum += other.duration_ms_sum
        self.self_ms_sum += other.self_ms_sum
        self.exclusive_errors += other.exclusive_errors
        self.paired += other.paired
        self.gap_ms_sum += other.gap_ms_sum
        for i, count in enumerate(other.histogram):
            self.histogram[i] += count


#: Log severity classes, in the order of ``LogCounts.severity`` / ``LogRow.severity``:
#: OTLP SeverityNumber ranges 1-4, 5-8, …, 21-24; "unspecified" for 0 without a known text.
SEVERITIES = ("unspecified", "trace", "debug", "info", "warn", "error", "fatal")
#: index of "error" in :data:`SEVERITIES`; error and fatal records are "error records"
SEVERITY_ERROR = 5

#: At most this many template ids keep their own count per entity-bucket; later ones
#: add to ``other_templates``. Why 16: an incident shows as one to a few new or surging
#: templates of a service per minute, while a healthy service emits a few dozen steady
#: ones; 16 keeps every template that matters in a minute (batches submit theirs by
#: descending count) at ~300 bytes per bucket, instead of one row per template.
LOG_TEMPLATES_PER_BUCKET = 16
#: Distinct error-span keys kept exactly per entity-bucket (Cypher list membership is
#: linear); further error records with a span each count one.
ERROR_SPAN_KEYS = 512

#: The canonical metric vocabulary (``ingest/metrics.py`` maps OTLP and Prometheus names
#: onto it) and what a :class:`MetricRow` of each holds. ``gauge``: sum/count/min/max of
#: the sampled values; ``counter``: of the per-point *increases* (cumulative series are
#: differenced, resets handled), so ``sum / bucket_seconds`` is the rate; ``histogram``:
#: ``sum``/``count`` of the observations, min/max of the per-point means.
METRICS: dict[str, tuple[str, str]] = {
    "cpu_utilization": ("gauge", "fraction of one CPU core (or of the host for system.*) in use"),
    "cpu_seconds": ("counter", "CPU seconds used; sum / bucket_seconds = cores"),
    "cpu_throttled_periods": ("counter", "CFS periods in which the container was throttled"),
    "cpu_periods": ("counter", "CFS enforcement periods (denominator of throttling)"),
    "memory_bytes": ("gauge", "working-set memory, bytes"),
    "memory_utilization": ("gauge", "memory in use as a fraction of the limit or of the host"),
    "restarts": ("counter", "container restarts"),
    "oom_kills": ("counter", "containers killed for running out of memory"),
    "network_rx_bytes": ("counter", "bytes received"),
    "network_tx_bytes": ("counter", "bytes transmitted"),
    "network_errors": ("counter", "receive + transmit errors"),
    "http_server_duration_s": ("histogram", "server request duration, seconds"),
}


@dataclass(slots=True)
class LogCounts:
    """Additive log evidence of one entity in one bucket (a :class:`GraphDelta` part).

    ``error_spans`` holds 64-bit keys of the distinct (trace_id, span_id) that logged an
    error or fatal record; ``templates`` counts records per mined template id (at most
    ``LOG_TEMPLATES_PER_BUCKET`` ids, the rest in ``other_templates``).
    """

    records: int = 0
    severity: list[int] = field(default_factory=lambda: [0] * len(SEVERITIES))
    error_spans: set[int] = field(default_factory=set)
    templates: dict[str, int] = field(default_factory=dict)
    other_templates: int = 0

    def add(self, other: "LogCounts") -> None:
        self.records += other.records
        for i, n in enumerate(other.severity):
            self.severity[i] += n
        self.error_spans |= other.error_spans
        for tid, n in other.templates.items():
            self.templates[tid] = self.templates.get(tid, 0) + n
        self.other_templates += other.other_templates

    def copy(self) -> "LogCounts":
        return LogCounts(self.records, list(self.severity), set(self.error_spans), dict(self.templates),
                         self.other_templates)


@dataclass(slots=True)
class MetricAgg:
    """sum, count, min, max of one canonical metric's points of one entity in one bucket."""

    sum: float = 0.0
    count: int = 0
    min: float = math.inf
    max: float = -math.inf

    def observe(self, value: float, n: int = 1, total: float | None = None) -> None:
        """One point: ``value`` (min/max), ``n`` items summing to ``total`` (default value)."""
        self.sum += value if total is None else total
        self.count += n
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def add(self, other: "MetricAgg") -> None:
        self.sum += other.sum
        self.count += other.count
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def copy(self) -> "MetricAgg":
        return MetricAgg(self.sum, self.count, self.min, self.max)


def add_into(into: dict, key: object, part: "StatsBucket | LogCounts | MetricAgg") -> None:  # type: ignore[type-arg]
    """``into[key] += part`` for the additive records: a copy the first time (so the
    caller's part is never aliased and mutated later), ``add`` after. The one way the
    writer's group merge and both fakes sum deltas."""
    total = into.get(key)
    if total is None:
        into[key] = part.copy()
    else:
        total.add(part)


@dataclass(frozen=True, slots=True)
class LogRow:
    """One entity-bucket of log evidence as read for inference.

    ``severity`` counts records per class of :data:`SEVERITIES`; ``error_spans`` is the
    number of distinct spans of this entity that logged an ERROR/FATAL record (up to
    ``ERROR_SPAN_KEYS`` exact, beyond that every further such record counts one);
    ``templates`` is ``((template id, records), …)`` by descending count, the text in
    ``WindowData.log_templates[entity][id]``; ``other_templates`` the records of
    templates beyond the bucket's bound (and of records without a string body).
    """

    start_s: int
    records: int
    severity: tuple[int, ...]
    error_spans: int
    templates: tuple[tuple[str, int], ...]
    other_templates: int

    @property
    def error_records(self) -> int:
        return sum(self.severity[SEVERITY_ERROR:])


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One (entity, bucket, canonical metric) as read for inference; see :data:`METRICS`
    for what ``sum``/``count``/``min``/``max`` are per metric kind."""

    start_s: int
    sum: float
    count: int
    min: float
    max: float


@dataclass(frozen=True, slots=True)
class Deployment:
    """A deployment event, whatever its source.

    ``id`` is the idempotency key: caller-supplied for RecordDeployment, derived
    (``"<source>:<service>:<version>"``) for implicit ones.
    """

    id: str
    service: str
    version: str
    at_ms: int
    previous_version: str = ""
    commit: str = ""
    source: str = "api"  # api | span-version | cicd
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class GraphDelta:
    """Everything one ingest batch contributes to the graph.

    Produced by ``ingest/``, written by ``graph.writer.GraphWriter.apply_deltas`` in one
    managed transaction together with ``batch_id`` so that a re-sent batch is applied
    once.
    """

    batch_id: str
    entities: dict[str, Entity] = field(default_factory=dict)
    #: (caller id, callee id) -> totals for the edge in this batch
    edges: dict[tuple[str, str], StatsBucket] = field(default_factory=dict)
    #: (entity id, bucket start epoch seconds) -> stats of the entity as a server
    service_buckets: dict[tuple[str, int], StatsBucket] = field(default_factory=dict)
    #: (caller id, callee id, bucket start epoch seconds) -> stats of the edge
    edge_buckets: dict[tuple[str, str, int], StatsBucket] = field(default_factory=dict)
    #: (service id, infra entity id): service RUNS_ON infra entity
    runs_on: set[tuple[str, str]] = field(default_factory=set)
    #: (service id, version) seen in this batch, with the first time seen (ms)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    deployments: list[Deployment] = field(default_factory=list)
    #: edges whose calls are asynchronous (PRODUCER -> CONSUMER)
    async_edges: set[tuple[str, str]] = field(default_factory=set)
    spans: int = 0
    #: (entity id, bucket start s) -> log evidence (``ingest/logs.py``)
    log_buckets: dict[tuple[str, int], LogCounts] = field(default_factory=dict)
    #: (entity id, template id) -> the template's current text
    log_templates: dict[tuple[str, str], str] = field(default_factory=dict)
    #: (entity id, bucket start s, canonical metric) -> its points (``ingest/metrics.py``)
    metric_buckets: dict[tuple[str, int, str], MetricAgg] = field(default_factory=dict)
    #: the log template miner's snapshot to store with this delta ("" = unchanged)
    miner_state: str = ""
    #: log records and metric points this batch accepted (kept on its IngestBatch marker)
    records: int = 0

    def is_empty(self) -> bool:
        return not (self.entities or self.edges or self.service_buckets or self.deployments
                    or self.log_buckets or self.metric_buckets)


@dataclass(frozen=True, slots=True)
class BucketRow:
    """One bucket of statistics as read back for inference."""

    start_s: int
    requests: int
    errors: int
    duration_ms_sum: float
    self_ms_sum: float
    exclusive_errors: int
    histogram: tuple[int, ...]
    #: edges only, see :attr:`StatsBucket.paired` / :attr:`StatsBucket.gap_ms_sum`
    paired: int = 0
    gap_ms_sum: float = 0.0


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time window ``[start_s, end_s)`` in epoch seconds."""

    start_s: int
    end_s: int

    def __post_init__(self) -> None:
        if self.end_s <= self.start_s:
            raise ValueError(f"window end {self.end_s} must be after start {self.start_s}")


@dataclass(frozen=True, slots=True)
class EdgeInfo:
    """A call edge as read for inference, with its per-bucket statistics."""

    caller: str
    callee: str
    is_async: bool
    buckets: tuple[BucketRow, ...]


@dataclass(frozen=True, slots=True)
class WindowData:
    """What inference needs for one incident: the subgraph and its statistics.

    ``service_buckets`` and every edge's ``buckets`` cover both the baseline and the
    incident windows (bucket start times tell them apart). Only entities and edges
    active in either window are present.
    """

    incident: Window
    baseline: Window
    bucket_seconds: int
    entities: dict[str, Entity]
    service_buckets: dict[str, tuple[BucketRow, ...]]
    edges: tuple[EdgeInfo, ...]
    #: service id -> infra entity ids it runs on
    runs_on: dict[str, tuple[str, ...]]
    #: deployments whose ``at_ms`` falls in [baseline.start, incident.end)
    deployments: tuple[Deployment, ...]
    #: identifies the stored data this was read from: two reads with the same non-empty
    #: version returned equal windows (``WindowReader.read_window``; lets a caller reuse
    #: results computed from it). Empty when unknown (built by hand, decoded).
    version: str = ""
    #: entity id -> its log evidence rows in time order (:class:`LogRow`). Keyed by the
    #: ids spans use (services, or ``pod:``/``node:``/``host:`` for infra-only resources);
    #: an id may be absent from ``entities`` when it sent logs but no spans.
    log_buckets: dict[str, tuple[LogRow, ...]] = field(default_factory=dict)
    #: entity id -> canonical metric (:data:`METRICS`) -> rows in time order
    metric_buckets: dict[str, dict[str, tuple[MetricRow, ...]]] = field(default_factory=dict)
    #: entity id -> template id -> template text, for every id in ``log_buckets``' rows
    log_templates: dict[str, dict[str, str]] = field(default_factory=dict)


def _json_default(o: object) -> object:
    """The compact audit layout: rows, entities, edges, windows and deployments as lists."""
    if isinstance(o, BucketRow):
        return [o.start_s, o.requests, o.errors, o.duration_ms_sum, o.self_ms_sum, o.exclusive_errors,
                o.histogram, o.paired, o.gap_ms_sum]
    if isinstance(o, EdgeInfo):
        return [o.caller, o.callee, o.is_async, o.buckets]
    if isinstance(o, Entity):
        return [o.id, o.name, o.kind.value, o.namespace]
    if isinstance(o, Window):
        return [o.start_s, o.end_s]
    if isinstance(o, Deployment):
        return [o.id, o.service, o.version, o.at_ms, o.previous_version, o.commit, o.source, o.attributes]
    if isinstance(o, LogRow):
        return [o.start_s, o.records, o.severity, o.error_spans, o.templates, o.other_templates]
    if isinstance(o, MetricRow):  # min/max of an empty row are ±inf, not JSON: null
        return [o.start_s, o.sum, o.count, o.min if o.count else None, o.max if o.count else None]
    if isinstance(o, WindowData):
        return {"incident": o.incident, "baseline": o.baseline, "bucket_seconds": o.bucket_seconds,
                "entities": list(o.entities.values()), "service_buckets": o.service_buckets,
                "edges": o.edges, "runs_on": o.runs_on, "deployments": o.deployments,
                "log_buckets": o.log_buckets, "metric_buckets": o.metric_buckets,
                "log_templates": o.log_templates}
    raise TypeError(f"not serialisable: {type(o).__name__}")


def window_json(doc: dict) -> bytes:
    """``doc`` as JSON bytes, every :class:`WindowData` in it in the compact list layout
    :func:`decode_window` reads (a bucket row is ``[t, n, err, dur, self, xerr, histogram, paired, gap]``;
    records written before the last two existed have 7 entries and still decode).

    Why orjson with a ``default`` hook: building those lists in Python for ``json.dumps``
    took ~0.5-1 s for a 500-2,000 service window (the incident audit record of every
    RankCauses); orjson walks the dataclasses itself, ~10x faster, same JSON.
    """
    return orjson.dumps(doc, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATACLASS)


def decode_window(doc: dict) -> WindowData:
    """Inverse of :func:`window_json`'s window layout (replaying a recorded incident)."""
    def rows(rs: list[list]) -> tuple[BucketRow, ...]:
        return tuple(BucketRow(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6]), *r[7:9]) for r in rs)

    return WindowData(
        incident=Window(*doc["incident"]), baseline=Window(*doc["baseline"]),
        bucket_seconds=doc["bucket_seconds"],
        entities={i: Entity(i, n, EntityKind(k), ns) for i, n, k, ns in doc["entities"]},
        service_buckets={k: rows(v) for k, v in doc["service_buckets"].items()},
        edges=tuple(EdgeInfo(a, b, asy, rows(r)) for a, b, asy, r in doc["edges"]),
        runs_on={k: tuple(v) for k, v in doc["runs_on"].items()},
        deployments=tuple(Deployment(i, s, v, at, prev, c, src, tuple(tuple(a) for a in attrs))
                          for i, s, v, at, prev, c, src, attrs in doc["deployments"]),
        # absent from records written before logs and metrics were stored
        log_buckets={k: tuple(LogRow(t, n, tuple(sev), es, tuple((i, c) for i, c in tp), o)
                              for t, n, sev, es, tp, o in v) for k, v in doc.get("log_buckets", {}).items()},
        metric_buckets={k: {m: tuple(MetricRow(t, sm, c, math.inf if lo is None else lo,
                                               -math.inf if hi is None else hi) for t, sm, c, lo, hi in rs)
                            for m, rs in ms.items()} for k, ms in doc.get("metric_buckets", {}).items()},
        log_templates={k: dict(v) for k, v in doc.get("log_templates", {}).items()},
    )


def window_to_delta(w: WindowData, batch_id: str = "window") -> GraphDelta:
    """A delta that stores ``w`` exactly as ingest would have (inverse of a window read).

    Used to load hand-built or recorded windows into a graph (tests, replays).
    """
    def bucket(r: BucketRow) -> StatsBucket:
        return StatsBucket(r.requests, r.errors, r.duration_ms_sum, r.self_ms_sum, r.exclusive_errors,
                           list(r.histogram), r.paired, r.gap_ms_sum)

    d = GraphDelta(batch_id=batch_id, entities=dict(w.entities))
    for eid, rows in w.service_buckets.items():
        for r in rows:
            d.service_buckets[(eid, r.start_s)] = bucket(r)
    for e in w.edges:
        total = StatsBucket()
        for r in e.buckets:
            d.edge_buckets[(e.caller, e.callee, r.start_s)] = bucket(r)
            total.add(bucket(r))
        d.edges[(e.caller, e.callee)] = total
        if e.is_async:
            d.async_edges.add((e.caller, e.callee))
    d.runs_on = {(s, h) for s, hosts in w.runs_on.items() for h in hosts}
    d.deployments = list(w.deployments)
    for eid, lrows in w.log_buckets.items():
        for lr in lrows:
            # error-span keys are not kept in a window: stand-ins preserve the count
            d.log_buckets[(eid, lr.start_s)] = LogCounts(
                lr.records, list(lr.severity), set(range(lr.error_spans)), dict(lr.templates), lr.other_templates)
    for eid, texts in w.log_templates.items():
        for tid, text in texts.items():
            d.log_templates[(eid, tid)] = text
    for eid, metrics in w.metric_buckets.items():
        for metric, mrows in metrics.items():
            for mr in mrows:
                d.metric_buckets[(eid, mr.start_s, metric)] = MetricAgg(mr.sum, mr.count, mr.min, mr.max)
    return d
