"""Hand-built and generated :class:`WindowData` -- the fake shipped next to the interface.

``WindowBuilder`` synthesises per-bucket statistics from a few rates (tests describe an
incident in ten lines); ``generate_incident`` draws a scale-free-ish call graph with
hubs, shared databases, queues, externals and hosts, and injects one propagating fault
(benchmarks, smoke tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rootgraph.graph.records import (
    HISTOGRAM_BUCKETS,
    BucketRow,
    Deployment,
    EdgeInfo,
    Entity,
    EntityKind,
    LogRow,
    MetricRow,
    SEVERITIES,
    SEVERITY_ERROR,
    Window,
    WindowData,
    latency_bucket,
)

_SPREAD = ((0.7, 0.3), (1.0, 0.4), (1.4, 0.25), (2.5, 0.05))


@dataclass(slots=True)
class Profile:
    """Per-minute behaviour of a series: request rate, error rates, latencies."""

    rpm: float = 60.0
    error_rate: float = 0.002
    exclusive_rate: float | None = None  # default: = error_rate (errors originate here)
    latency_ms: float = 20.0
    self_ms: float | None = None  # default: 30% of latency

    def with_(self, **kw: float) -> "Profile":
        d = {k: getattr(self, k) for k in self.__slots__}
        d.update(kw)
        return Profile(**d)


@dataclass(slots=True)
class LogProfile:
    """Per-minute log behaviour of an entity: records, ERROR share, error-logged requests.

    ``error_span_rate`` is the share of the entity's requests (its ``serve`` rows) whose
    span logged an ERROR; ``templates`` are (id, text, share of records).
    """

    records_per_min: float = 60.0
    error_share: float = 0.0
    error_span_rate: float = 0.0
    templates: tuple[tuple[str, str, float], ...] = ()


@dataclass(slots=True)
class WindowBuilder:
    """Builder for small incidents: ``serve``, ``call``, ``runs_on``, ``deploy``, ``build``.

    Baseline is the ``baseline_minutes`` before the incident window; ``incident``
    overrides take effect from ``onset_minute`` of the incident window. Counts are drawn
    with a seeded generator so baselines have realistic noise.
    """

    incident_minutes: int = 15
    baseline_minutes: int = 30
    bucket_seconds: int = 60
    start_s: int = 1_700_000_000
    seed: int = 7
    entities: dict[str, Entity] = field(default_factory=dict)
    service_buckets: dict[str, tuple[BucketRow, ...]] = field(default_factory=dict)
    edges: list[EdgeInfo] = field(default_factory=list)
    runs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    deployments: list[Deployment] = field(default_factory=list)
    log_rows: dict[str, tuple[LogRow, ...]] = field(default_factory=dict)
    log_texts: dict[str, dict[str, str]] = field(default_factory=dict)
    metric_rows: dict[str, dict[str, tuple[MetricRow, ...]]] = field(default_factory=dict)
    _hist_cache: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    @property
    def incident_start(self) -> int:
        return self.start_s + self.baseline_minutes * 60

    def entity(self, eid: str, kind: EntityKind = EntityKind.SERVICE) -> "WindowBuilder":
        if eid not in self.entities:
            self.entities[eid] = Entity(eid, eid.split("/")[-1], kind)
        return self

    def _rows(self, base: Profile, inc: Profile | None, onset_minute: int, server: bool) -> tuple[BucketRow, ...]:
        rows = []
        n_buckets = (self.baseline_minutes + self.incident_minutes) * 60 // self.bucket_seconds
        onset_s = self.incident_start + onset_minute * 60
        rng = self._rng
        for b in range(n_buckets):
            t = self.start_s + b * self.bucket_seconds
            p = inc if (inc is not None and t >= onset_s) else base
            n = int(rng.poisson(p.rpm * self.bucket_seconds / 60.0))
            if n == 0:
                continue
            err = int(rng.binomial(n, min(1.0, p.error_rate)))
            xr = p.error_rate if p.exclusive_rate is None else p.exclusive_rate
            excl = min(err, int(rng.binomial(n, min(1.0, xr)))) if server else 0
            lat = p.latency_ms * float(rng.lognormal(0.0, 0.08))
            self_ms = (0.3 * p.latency_ms if p.self_ms is None else p.self_ms) * float(rng.lognormal(0.0, 0.08))
            rows.append(BucketRow(t, n, err, lat * n, self_ms * n if server else 0.0, excl, self._hist(n, lat)))
        return tuple(rows)

    def _hist(self, n: int, lat: float) -> tuple[int, ...]:
        key = (n, latency_bucket(lat))
        if key not in self._hist_cache:
            h = [0] * HISTOGRAM_BUCKETS
            left = n
            for i, (f, share) in enumerate(_SPREAD):
                c = left if i == len(_SPREAD) - 1 else int(round(n * share))
                c = min(c, left)
                h[latency_bucket(lat * f)] += c
                left -= c
            self._hist_cache[key] = tuple(h)
        return self._hist_cache[key]

    def serve(self, eid: str, base: Profile | None = None, incident: Profile | None = None,
              onset_minute: int = 0, kind: EntityKind = EntityKind.SERVICE) -> "WindowBuilder":
        """Server-side statistics of an instrumented entity."""
        self.entity(eid, kind)
        self.service_buckets[eid] = self._rows(base or Profile(), incident, onset_minute, True)
        return self

    def call(self, caller: str, callee: str, base: Profile | None = None, incident: Profile | None = None,
             onset_minute: int = 0, is_async: bool = False,
             callee_kind: EntityKind | None = None) -> "WindowBuilder":
        """Client-side statistics of an edge; creates a virtual callee from its prefix."""
        kind = callee_kind or _kind_of(callee)
        self.entity(caller, EntityKind.USER if caller == "user" else EntityKind.SERVICE)
        self.entity(callee, kind)
        self.edges.append(EdgeInfo(caller, callee, is_async, self._rows(base or Profile(), incident, onset_minute, False)))
        return self

    def runs_on(self, service: str, infra: str) -> "WindowBuilder":
        self.entity(infra, _kind_of(infra))
        self.runs[service] = self.runs.get(service, ()) + (infra,)
        return self

    def deploy(self, service: str, version: str, minutes_before_incident: float, previous: str = "") -> "WindowBuilder":
        at = int((self.incident_start - minutes_before_incident * 60) * 1000)
        self.deployments.append(Deployment(f"api:{service}:{version}", service, version, at, previous))
        return self

    def logs(self, eid: str, base: LogProfile, incident: LogProfile | None = None,
             onset_minute: int = 0) -> "WindowBuilder":
        """Log rows of ``eid`` per bucket (call after ``serve`` for error-logged spans)."""
        reqs = {r.start_s: r.requests for r in self.service_buckets.get(eid, ())}
        onset_s = self.incident_start + onset_minute * 60
        rng, rows = self._rng, []
        n_buckets = (self.baseline_minutes + self.incident_minutes) * 60 // self.bucket_seconds
        for b in range(n_buckets):
            t = self.start_s + b * self.bucket_seconds
            p = incident if (incident is not None and t >= onset_s) else base
            n = int(rng.poisson(p.records_per_min * self.bucket_seconds / 60.0))
            err = int(rng.binomial(n, min(1.0, p.error_share)))
            spans = int(rng.binomial(reqs.get(t, 0), min(1.0, p.error_span_rate)))
            n, err = n + spans, err + spans  # every error-logged span logged one ERROR record
            if n == 0:
                continue
            sev = [0] * len(SEVERITIES)
            sev[SEVERITY_ERROR], sev[SEVERITIES.index("info")] = err, n - err
            tpl = tuple((tid, c) for tid, _, share in p.templates if (c := int(rng.binomial(n, share))) > 0)
            rows.append(LogRow(t, n, tuple(sev), spans, tpl, 0))
            for tid, text, _ in p.templates:
                self.log_texts.setdefault(eid, {})[tid] = text
        self.log_rows[eid] = tuple(rows)
        return self

    def metric(self, eid: str, name: str, base: float, incident: float | None = None, onset_minute: int = 0,
               every_s: int = 60, noise: float = 0.05) -> "WindowBuilder":
        """One gauge row of canonical metric ``name`` every ``every_s`` (sparse rows when
        ``every_s`` > ``bucket_seconds``), lognormal noise of sigma ``noise``."""
        onset_s = self.incident_start + onset_minute * 60
        end = self.incident_start + self.incident_minutes * 60
        rows = []
        for t in range(self.start_s, end, every_s):
            v = (incident if incident is not None and t >= onset_s else base) * float(self._rng.lognormal(0.0, noise))
            t0 = t // self.bucket_seconds * self.bucket_seconds
            rows.append(MetricRow(t0, v, 1, v, v))
        self.metric_rows.setdefault(eid, {})[name] = tuple(rows)
        return self

    def build(self) -> WindowData:
        inc = Window(self.incident_start, self.incident_start + self.incident_minutes * 60)
        base = Window(self.start_s, self.incident_start)
        return WindowData(inc, base, self.bucket_seconds, dict(self.entities), dict(self.service_buckets),
                          tuple(self.edges), dict(self.runs), tuple(self.deployments),
                          log_buckets=dict(self.log_rows), metric_buckets=dict(self.metric_rows),
                          log_templates=dict(self.log_texts))


def _kind_of(eid: str) -> EntityKind:
    prefix = eid.split(":", 1)[0] if ":" in eid else ""
    return {"db": EntityKind.DATABASE, "queue": EntityKind.MESSAGING, "ext": EntityKind.EXTERNAL,
            "host": EntityKind.HOST, "node": EntityKind.NODE, "pod": EntityKind.POD}.get(
        prefix, EntityKind.USER if eid == "user" else EntityKind.SERVICE)


def generate_incident(n_services: int, seed: int = 0, anomaly_share: float = 0.1,
                      baseline_minutes: int = 30, incident_minutes: int = 15) -> tuple[WindowData, str]:
    """A random incident: (window, true root cause).

    Call graph: a few entry services called by ``user``; every other service is called
    by 1-3 earlier services chosen by preferential attachment (gateways and aggregators
    become hubs), ~25% also call one of a few shared leaf hubs (auth, config), 60% use
    a shared database (Zipf: a few hot databases), some publish to queues or call
    externals; 1% back edges make cycles. One service per host, ~8 services per host.
    The fault starts at a random service or database and climbs the caller graph until
    about ``anomaly_share`` of the services are anomalous.
    """
    rng = np.random.default_rng(seed)
    wb = WindowBuilder(incident_minutes=incident_minutes, baseline_minutes=baseline_minutes, seed=seed)
    svcs = [f"svc-{i:04d}" for i in range(n_services)]
    n_entry = max(2, n_services // 25)
    n_hub = max(1, n_services // 100)
    dbs = [f"db:postgresql/db{i}" for i in range(max(2, n_services // 20))]
    queues = [f"queue:kafka/q{i}" for i in range(max(1, n_services // 50))]
    exts = [f"ext:api{i}.example.com" for i in range(max(1, n_services // 100))]
    calls: dict[tuple[str, str], float] = {}
    out_deg = np.ones(n_services)
    for i in range(n_entry):
        calls[("user", svcs[i])] = float(rng.uniform(50, 200))
    hubs = svcs[n_services - n_hub:]
    for i in range(n_entry, n_services - n_hub):
        k = int(rng.integers(1, 4))
        w = out_deg[:i] / out_deg[:i].sum()
        for j in set(rng.choice(i, size=min(k, i), p=w).tolist()):
            calls[(svcs[j], svcs[i])] = float(rng.uniform(5, 60))
            out_deg[j] += 1
    for i in range(n_services - n_hub):
        if rng.random() < 0.25:
            calls[(svcs[i], hubs[int(rng.integers(n_hub))])] = float(rng.uniform(5, 40))
        if rng.random() < 0.6:
            zipf = 1.0 / np.arange(1, len(dbs) + 1)
            calls[(svcs[i], dbs[int(rng.choice(len(dbs), p=zipf / zipf.sum()))])] = float(rng.uniform(10, 80))
        if rng.random() < 0.08:
            calls[(svcs[i], queues[int(rng.integers(len(queues)))])] = float(rng.uniform(5, 30))
        if rng.random() < 0.04:
            calls[(svcs[i], exts[int(rng.integers(len(exts)))])] = float(rng.uniform(2, 10))
        if i > n_entry and rng.random() < 0.01:
            calls[(svcs[i], svcs[int(rng.integers(n_entry, i))])] = 1.0
    callers: dict[str, list[str]] = {}
    for (a, b) in calls:
        callers.setdefault(b, []).append(a)
    # the fault starts where it can spread: a hot database or a service with >= 2 callers
    roots = [x for x in svcs[n_entry:] if len(callers.get(x, ())) >= 2] + dbs[:3]
    root = roots[int(rng.integers(len(roots)))]
    bad = {root}
    frontier = [root]
    target = max(2, int(anomaly_share * n_services))
    while frontier and len(bad) < target:
        x = frontier.pop(0)
        for c in sorted(callers.get(x, ())):
            if c != "user" and c not in bad and rng.random() < 0.9 and len(bad) < target:
                bad.add(c)
                frontier.append(c)
    fault = Profile(error_rate=0.35, latency_ms=20.0)
    rpm_in: dict[str, float] = {}
    for (a, b), r in calls.items():
        rpm_in[b] = rpm_in.get(b, 0.0) + r
    for s in svcs:
        base = Profile(rpm=max(rpm_in.get(s, 10.0), 5.0))
        inc = None
        if s in bad:
            inc = base.with_(error_rate=0.35, exclusive_rate=0.35 if s == root else 0.002)
        wb.serve(s, base, inc, onset_minute=2)
    for (a, b), r in sorted(calls.items()):
        base = Profile(rpm=r)
        inc = base.with_(error_rate=fault.error_rate) if b in bad and a != "user" else None
        wb.call(a, b, base, inc, onset_minute=2, is_async=b.startswith("queue:"))
    hosts = [f"host:h{i}" for i in range(max(1, n_services // 8))]
    for s in svcs:
        wb.runs_on(s, hosts[int(rng.integers(len(hosts)))])
    for s in rng.choice(svcs, size=max(1, n_services // 50), replace=False):
        wb.deploy(str(s), "2.0.0", float(rng.uniform(1, 10)), "1.9.0")
    return wb.build(), root
