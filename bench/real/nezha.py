"""The Nezha Online Boutique dataset (``/work/shared/data/nezha-online-boutique``) as OTLP.

Reading: per day, the trace minute files (``rca_data/<day>/trace/HH_MM_trace.csv.gz``,
plus the fault-free ``construct_data/<day>/trace``), the labels (``<day>-fault_list.json``),
the per-pod metric files and the few log minutes.

Conversion uses the real opentelemetry-proto message classes
(``ExportTraceServiceRequest`` / ``ExportLogsServiceRequest`` / ``ExportMetricsServiceRequest``):

* Resource: ``service.name`` = pod name minus its two hash suffixes
  (``cartservice-579f59597d-wc2lz`` -> ``cartservice``), ``service.namespace`` =
  :data:`NAMESPACE`, ``k8s.pod.name`` = the pod. ``k8s.node.name`` is never set: no file
  names a node (metric rows carry node *usage* only; the log ``Node`` column is an IP
  address, sent as ``host.ip`` on log resources only).
* Span kinds (the data has none), derived from parent/child across pods over a whole
  :class:`Stretch` (contiguous minutes, so a trace cut by a minute boundary keeps its
  parent): a span whose parent is in another pod is the SERVER half of that call, and
  the parent is its CLIENT half (rootgraph pairs ``CLIENT.span_id == SERVER.parent_span_id``,
  ``ingest/pairing.py``); a root is SERVER (the entry request); a span whose parent is in
  its own pod is CLIENT when it has a child in another pod, else INTERNAL (handlers'
  inner steps, ``sql.conn.query`` ...: self time, ``ingest/selftime.py``, walks down
  through INTERNAL spans to the CLIENT spans, so a service's own work stays its own). A
  span whose parent is absent from the data is SERVER (the top of what its pod sent);
  a span that would be both SERVER and CLIENT stays SERVER. Both are counted
  (:class:`KindStats`).
* Status: UNSET for every span (the data has none; no error is invented). Timestamps as
  in the data. Span name = ``OperationName``; no span attributes (the data has none).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

DATA = Path(os.environ.get("NEZHA_DATA", "/work/shared/data/nezha-online-boutique"))
DAYS = ("2022-08-22", "2022-08-23")
#: The app's own name when the data was recorded: every operation is ``hipstershop.X/Y``
#: and the authors' label file is ``root_cause_hipster.json``; the Kubernetes namespace
#: itself is not in the data.
NAMESPACE = "hipstershop"
SCOPE = InstrumentationScope(name="rootgraph.bench.real.nezha", version="1")
FAULT_TYPES = ("cpu_contention", "network_delay", "cpu_consumed", "return", "exception")
#: Spans per OTLP request (the SDK BatchSpanProcessor's default export batch size).
BATCH = 512
#: Two minute files belong to one stretch when the gap between them is at most this.
JOIN_GAP_S = 2.0

K_INTERNAL, K_SERVER, K_CLIENT = Span.SPAN_KIND_INTERNAL, Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT


def service_of(pod: str) -> str:
    """``cartservice-579f59597d-wc2lz`` -> ``cartservice`` (pod minus two hash suffixes)."""
    parts = pod.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else pod


def entity_of(pod: str) -> str:
    """rootgraph's entity id of a pod's service (``namespace/name``, ``ingest/spans.py``)."""
    return f"{NAMESPACE}/{service_of(pod)}"


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def pod_resource(pod: str, **extra: str) -> Resource:
    attrs = [_kv("service.name", service_of(pod)), _kv("service.namespace", NAMESPACE), _kv("k8s.pod.name", pod)]
    attrs += [_kv(k, v) for k, v in extra.items()]
    return Resource(attributes=attrs)


# -- labels ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    day: str
    at_s: int  # inject_timestamp (Unix seconds, the traces' clock)
    inject_time: str
    pod: str
    kind: str

    @property
    def entity(self) -> str:
        return entity_of(self.pod)

    @property
    def name(self) -> str:
        return f"{self.inject_time.replace(' ', 'T')}-{service_of(self.pod)}-{self.kind}"


def faults(day: str) -> list[Fault]:
    raw = json.loads((DATA / "rca_data" / day / f"{day}-fault_list.json").read_text())
    out = [Fault(day, int(f["inject_timestamp"]), f["inject_time"], f["inject_pod"], f["inject_type"])
           for hour in raw.values() for f in hour]
    return sorted(out, key=lambda f: f.at_s)


# -- trace files -------------------------------------------------------------------------


@dataclass(frozen=True)
class MinuteFile:
    path: Path
    lo_s: float  # earliest span start
    hi_s: float  # latest span start
    spans: int


@dataclass
class Stretch:
    """Consecutive minute files without a gap: traces never cross stretches."""

    files: list[MinuteFile]

    @property
    def lo_s(self) -> float:
        return self.files[0].lo_s

    @property
    def hi_s(self) -> float:
        return max(f.hi_s for f in self.files)


def trace_files(day: str) -> list[Path]:
    return sorted((DATA / "rca_data" / day / "trace").glob("*_trace.csv.gz")) + \
        sorted((DATA / "construct_data" / day / "trace").glob("*_trace.csv.gz"))


def _scan(path: Path) -> MinuteFile:
    lo, hi, n = math.inf, -math.inf, 0
    with gzip.open(path, "rt", newline="") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            s = int(row[5]) / 1e9
            lo, hi, n = min(lo, s), max(hi, s), n + 1
    return MinuteFile(path, lo, hi, n)


def stretches(day: str) -> list[Stretch]:
    files = sorted((_scan(p) for p in trace_files(day)), key=lambda f: f.lo_s)
    out: list[Stretch] = []
    for f in files:
        if out and f.lo_s <= out[-1].hi_s + JOIN_GAP_S:
            out[-1].files.append(f)
        else:
            out.append(Stretch([f]))
    return out


@dataclass
class KindStats:
    """How the span kinds were derived (see the module docstring)."""

    counts: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


#: (trace_id, span_id, parent_id, pod, name, start_ns, end_ns)
Row = tuple[bytes, bytes, bytes, str, str, int, int]


def read_stretch(stretch: Stretch) -> list[Row]:
    rows: list[Row] = []
    for mf in stretch.files:
        with gzip.open(mf.path, "rt", newline="") as f:
            r = csv.reader(f)
            next(r)
            for tid, sid, pid, pod, op, start, end, _dur in r:
                rows.append((bytes.fromhex(tid), bytes.fromhex(sid), b"" if pid == "root" else bytes.fromhex(pid),
                             pod, op, int(start), int(end)))
    return rows


def derive_kinds(rows: list[Row], stats: KindStats) -> list[int]:
    """Span kind per row (module docstring); duplicates (same trace + span id) keep the first."""
    pod_of: dict[tuple[bytes, bytes], str] = {}
    for t, s, _p, pod, *_ in rows:
        pod_of.setdefault((t, s), pod)
    calls_out: set[tuple[bytes, bytes]] = set()  # spans with a child in another pod
    for t, _s, p, pod, *_ in rows:
        if p:
            ppod = pod_of.get((t, p))
            if ppod is not None and ppod != pod:
                calls_out.add((t, p))
    kinds = []
    c = stats.counts
    for t, s, p, pod, *_ in rows:
        out = (t, s) in calls_out
        if not p:
            k, why = K_SERVER, "root"
            if out:
                c["root with a child in another pod (kept SERVER)"] += 1
        else:
            ppod = pod_of.get((t, p))
            if ppod is None:
                k, why = K_SERVER, "parent absent from the data -> SERVER"
            elif ppod != pod:
                k, why = K_SERVER, "parent in another pod -> SERVER"
                if out:
                    c["SERVER with a child in another pod (kept SERVER)"] += 1
            elif out:
                k, why = K_CLIENT, "parent in own pod, child in another pod -> CLIENT"
            else:
                k, why = K_INTERNAL, "parent in own pod, no child in another pod -> INTERNAL"
        c[why] += 1
        kinds.append(k)
    return kinds


def trace_requests(rows: list[Row], kinds: list[int], batch: int = BATCH) -> Iterator[tuple[bytes, int]]:
    """Encoded ``ExportTraceServiceRequest`` bytes (and span count), in end-time order.

    An SDK exports a span when it ends, so a child is always sent no later than its
    parent (what self time needs, ``ingest/selftime.py``); the minute files are
    consecutive, so this is also file order (up to their ~1 s overlaps).
    """
    order = sorted(range(len(rows)), key=lambda i: (rows[i][6], rows[i][5]))
    resources: dict[str, Resource] = {}
    for lo in range(0, len(order), batch):
        by_pod: dict[str, list[Span]] = defaultdict(list)
        for i in order[lo:lo + batch]:
            t, s, p, pod, op, start, end = rows[i]
            by_pod[pod].append(Span(trace_id=t, span_id=s, parent_span_id=p, name=op, kind=kinds[i],
                                    start_time_unix_nano=start, end_time_unix_nano=end))
        req = ExportTraceServiceRequest()
        for pod, spans in by_pod.items():
            res = resources.get(pod) or resources.setdefault(pod, pod_resource(pod))
            req.resource_spans.append(ResourceSpans(resource=res, scope_spans=[ScopeSpans(scope=SCOPE, spans=spans)]))
        yield req.SerializeToString(), sum(len(v) for v in by_pod.values())


# -- logs and metrics (ready for receivers that do not exist yet) --------------------------

_SEVERITY = {"DEBUG": 5, "INFO": 9, "WARN": 13, "WARNING": 13, "ERROR": 17, "FATAL": 21, "CRITICAL": 21}


def log_requests(day: str, batch: int = BATCH) -> Iterator[bytes]:
    """The day's log minutes as ``ExportLogsServiceRequest`` bytes.

    Body = the service's message, severity from its JSON line when it has one (else the
    raw line as body, severity unset); trace/span ids where the service logged them.
    """
    for path in sorted((DATA / "rca_data" / day / "log").glob("*_log.csv.gz")):
        with gzip.open(path, "rt", newline="") as f:
            rows = list(csv.DictReader(f))
        for lo in range(0, len(rows), batch):
            by_res: dict[tuple[str, str, str], list[LogRecord]] = defaultdict(list)
            for r in rows[lo:lo + batch]:
                body, sev = r["Log"], ""
                try:
                    inner = json.loads(json.loads(r["Log"])["log"])
                    body, sev = str(inner.get("message", body)), str(inner.get("severity", ""))
                except (ValueError, KeyError, TypeError):
                    pass
                rec = LogRecord(time_unix_nano=int(r["TimeUnixNano"]), observed_time_unix_nano=int(r["TimeUnixNano"]),
                                severity_text=sev, severity_number=_SEVERITY.get(sev.upper(), 0),
                                body=AnyValue(string_value=body))
                if len(r["TraceID"]) == 32 and len(r["SpanID"]) == 16:
                    rec.trace_id, rec.span_id = bytes.fromhex(r["TraceID"]), bytes.fromhex(r["SpanID"])
                by_res[(r["PodName"], r["Container"], r["Node"])].append(rec)
            req = ExportLogsServiceRequest()
            for (pod, container, node), recs in by_res.items():
                res = pod_resource(pod, **{"k8s.container.name": container, "host.ip": node})
                req.resource_logs.append(ResourceLogs(resource=res, scope_logs=[ScopeLogs(scope=SCOPE, log_records=recs)]))
            yield req.SerializeToString()


#: column -> (metric name, unit, factor): OpenTelemetry semantic-convention names where
#: one fits, ``nezha.*`` for the dataset's own figures.
METRICS = {
    "CpuUsage(m)": ("k8s.pod.cpu.usage", "{cpu}", 1e-3),
    "CpuUsageRate(%)": ("nezha.pod.cpu.usage_rate", "%", 1.0),
    "MemoryUsage(Mi)": ("k8s.pod.memory.usage", "By", 1024.0 * 1024.0),
    "MemoryUsageRate(%)": ("nezha.pod.memory.usage_rate", "%", 1.0),
    "SyscallRead": ("nezha.pod.syscall.read", "{call}", 1.0),
    "SyscallWrite": ("nezha.pod.syscall.write", "{call}", 1.0),
    "NetworkReceiveBytes": ("nezha.pod.network.receive", "By", 1.0),
    "NetworkTransmitBytes": ("nezha.pod.network.transmit", "By", 1.0),
    "PodClientLatencyP90(s)": ("nezha.pod.client.latency.p90", "s", 1.0),
    "PodServerLatencyP90(s)": ("nezha.pod.server.latency.p90", "s", 1.0),
    "PodClientLatencyP95(s)": ("nezha.pod.client.latency.p95", "s", 1.0),
    "PodServerLatencyP95(s)": ("nezha.pod.server.latency.p95", "s", 1.0),
    "PodClientLatencyP99(s)": ("nezha.pod.client.latency.p99", "s", 1.0),
    "PodServerLatencyP99(s)": ("nezha.pod.server.latency.p99", "s", 1.0),
    "PodWorkload(Ops)": ("nezha.pod.workload", "{operation}/s", 1.0),
    # PodSuccessRate(%) is 0 in every row (README): not a measurement, not sent.
    "NodeCpuUsageRate(%)": ("nezha.node.cpu.usage_rate", "%", 1.0),
    "NodeMemoryUsageRate(%)": ("nezha.node.memory.usage_rate", "%", 1.0),
    "NodeNetworkReceiveBytes": ("nezha.node.network.receive", "By", 1.0),
}


def _metric_time_ns(time_col: str) -> int:
    """``2022-08-22 03:51:19.640328427 +0000 UTC m=+0.14`` -> ns. The ``Time`` column,
    not ``TimeStamp``: 2022-08-22 adservice's ``TimeStamp`` is 200,000,000 s late (README)."""
    date, clock = time_col.split(" ")[:2]
    whole, _, frac = clock.partition(".")
    dt = datetime.strptime(f"{date} {whole}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9])


def metric_requests(day: str) -> Iterator[bytes]:
    """One ``ExportMetricsServiceRequest`` per pod metric file: a gauge per column."""
    for path in sorted((DATA / "rca_data" / day / "metric").glob("*_metric.csv.gz")):
        with gzip.open(path, "rt", newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            continue
        pod = rows[0]["PodName"]
        metrics = []
        for col, (name, unit, factor) in METRICS.items():
            if col not in rows[0]:
                continue
            pts = [NumberDataPoint(time_unix_nano=_metric_time_ns(r["Time"]), as_double=float(r[col]) * factor)
                   for r in rows if r.get(col) not in (None, "")]
            metrics.append(Metric(name=name, unit=unit, gauge=Gauge(data_points=pts)))
        req = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(
            resource=pod_resource(pod), scope_metrics=[ScopeMetrics(scope=SCOPE, metrics=metrics)])])
        yield req.SerializeToString()
