"""Continuous detection, pure logic: which entities show symptoms in a bucket, and which
symptoms belong to one incident (issue 15).

Two judges, one per entity:

* **SLOs where configured** (:class:`Slo`): multi-window, multi-burn-rate alerting as in
  the Google SRE workbook, "Alerting on SLOs" (ch. 5): burn rate = error rate / error
  budget; a symptom when *both* windows of a pair burn faster than the pair's factor,
  pairs OR-ed. Default pairs: 1 h and 5 min at 14.4x (2 % of a 30-day budget in an
  hour) and 6 h and 30 min at 6x (5 % in 6 hours).
* **A learned baseline otherwise**: ``inference.evidence.score_window`` over the last
  ``incident_buckets`` complete buckets against the ``baseline_buckets`` before them --
  the very scoring RankCauses uses, so what opens an incident is what explains it --
  and, for a service's own rows, the same question asked with the *bucket* as the unit
  (:func:`beyond_bucket_noise`). Those tests count requests as independent; a service
  whose error rate or latency wanders from minute to minute (naturally noisy: issue
  15's healthy day opened 7 false incidents in 19 hours on two such services) breaks
  that, and a detector judging every entity in every bucket all day meets each
  extreme minute. The bucket-level tests estimate the wander from the baseline buckets
  themselves, so they need no tuning: a quiet service keeps the request-level power,
  a noisy one is judged against its own noise.

:class:`IncidentTracker` then correlates: symptoms related in topology (a caller and
its callee at any depth, services on one host; transitively, so many entry points
behind one failing database join through it) join one incident; an incident resolves
once none of its symptoms showed for ``resolve_buckets`` evaluated buckets. State is
plain data so the server can persist and restore it (a detector taking over the lease
continues the open incidents).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Sequence

import numpy as np
from scipy.special import betainc, stdtr

from rootgraph.graph.records import BucketRow, WindowData
from rootgraph.inference.evidence import INFRA_KINDS, EvidenceConfig, score_window
from rootgraph.inference.topology import bfs_up, callers_of, entry_callers

__all__ = [
    "BurnWindow", "DEFAULT_BURN_WINDOWS", "DetectorConfig", "IncidentChange", "IncidentTracker", "OpenIncident",
    "Slo", "Symptom", "Topology", "baseline_symptoms", "beyond_bucket_noise", "bucket_alpha", "errors_beyond_dispersion",
    "latency_beyond_bucket_spread", "slo_symptoms",
]


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One multi-window pair: fire when both windows burn faster than ``factor``."""

    long_s: int
    short_s: int
    factor: float


#: SRE workbook ch. 5, table 5-8 ("page" rows) for a 30-day SLO period.
DEFAULT_BURN_WINDOWS = (BurnWindow(3600, 300, 14.4), BurnWindow(6 * 3600, 1800, 6.0))


@dataclass(frozen=True, slots=True)
class Slo:
    """An SLO on one entity: ``objective`` of its requests good (0.999 = 99.9 %).

    ``latency_ms`` = 0: availability (a request is bad when it fails); otherwise a
    request is bad when it is slower than ``latency_ms`` (read from the histogram at
    its bin bounds, which are a factor sqrt(2) apart).
    """

    entity: str
    objective: float
    latency_ms: float = 0.0
    windows: tuple[BurnWindow, ...] = DEFAULT_BURN_WINDOWS

    @property
    def budget(self) -> float:
        return 1.0 - self.objective

    @property
    def signal(self) -> str:
        return "slo_latency" if self.latency_ms > 0 else "slo_availability"


@dataclass(frozen=True, slots=True)
class Symptom:
    """An entity that looks wrong in one evaluated bucket, and why."""

    entity: str
    #: ``error_rate``, ``latency``, ``slo_availability``, ``slo_latency`` or ``alert``
    signal: str
    detail: str = ""
    #: judged conclusively elsewhere (an SLO burn, a firing alert): no confirmation wait
    confirmed: bool = False


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """How the detector judges and groups; the values come from ``Settings`` (server)."""

    incident_buckets: int
    baseline_buckets: int
    confirm_buckets: int
    resolve_buckets: int
    #: see ``Settings.detector_false_alarms_per_day`` (None: the bucket-level tests at
    #: ``evidence.alpha``)
    false_alarms_per_day: float | None = None
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)


def errors_beyond_dispersion(base: Sequence[BucketRow], window: Sequence[BucketRow],
                             cfg: EvidenceConfig) -> bool:
    """Is the window's error count beyond the baseline's rate *and* its between-bucket
    spread? Quasi-binomial (McCullagh & Nelder, *Generalized Linear Models*, 2nd ed.,
    4.5): the dispersion phi = Pearson X^2 / (B - 1) over the B baseline buckets (1 for
    binomial buckets, more when the rate wanders), floored at 1; the count is then tested
    as Binomial with n / phi trials and k / phi errors (the binomial tail as a regularized
    incomplete beta, which takes the non-integer counts), at ``alpha``. The baseline rate
    is the count test's (smoothed towards ``prior_error_rate``). Fewer than
    ``min_spread_buckets`` baseline buckets with requests: no spread to estimate, True."""
    base = [r for r in base if r.requests > 0]
    if len(base) < cfg.min_spread_buckets:
        return True
    n0 = sum(r.requests for r in base)
    p0 = (sum(r.errors for r in base) + cfg.prior_weight * cfg.prior_error_rate) / (n0 + cfg.prior_weight)
    var = p0 * (1.0 - p0)
    x2 = sum((r.errors - r.requests * p0) ** 2 / (r.requests * var) for r in base)
    phi = max(1.0, x2 / (len(base) - 1))
    k = sum(r.errors for r in window)
    n = sum(r.requests for r in window)
    if k <= 0 or n <= 0:
        return False
    # P(X >= k) for X ~ Binomial(n, p0) = I_p0(k, n - k + 1), here at the deflated counts
    return float(betainc(k / phi, (n - k) / phi + 1.0, p0)) < cfg.alpha


def _log_quantile(row: BucketRow, q: float) -> float:
    """log of the bucket's q-quantile read from its histogram (bins sqrt(2) apart)."""
    h = np.asarray(row.histogram, dtype=float)
    cum = np.cumsum(h)
    return float(np.searchsorted(cum, q * cum[-1])) * math.log(2.0) / 2.0


def latency_beyond_bucket_spread(base: Sequence[BucketRow], window: Sequence[BucketRow],
                                 cfg: EvidenceConfig) -> bool:
    """Are the window's buckets slower or faster than the baseline's buckets vary? Per
    bucket the log median and log p95 (from its histogram); the window's mean against
    the baseline buckets' mean with their standard deviation, a two-sample t statistic
    with B - 1 degrees of freedom (the baseline's spread estimates the between-bucket
    variance, wander and sampling together), two-sided at ``alpha``; either quantile
    suffices. Fewer than ``min_spread_buckets`` baseline buckets: True."""
    base = [r for r in base if r.requests > 0]
    window = [r for r in window if r.requests > 0]
    if len(base) < cfg.min_spread_buckets:
        return True
    if not window:
        return False
    for q in (0.5, 0.95):
        xb = [_log_quantile(r, q) for r in base]
        xi = [_log_quantile(r, q) for r in window]
        mb, mi = sum(xb) / len(xb), sum(xi) / len(xi)
        sd = math.sqrt(sum((x - mb) ** 2 for x in xb) / (len(xb) - 1))
        if sd <= 0:
            if mi != mb:
                return True
            continue
        t = (mi - mb) / (sd * math.sqrt(1.0 / len(xi) + 1.0 / len(xb)))
        if 2.0 * float(stdtr(len(xb) - 1, -abs(t))) < cfg.alpha:
            return True
    return False


def beyond_bucket_noise(data: WindowData, entity: str, errors: bool, latency: bool,
                        cfg: EvidenceConfig) -> str | None:
    """The signal (``error_rate`` / ``latency``) whose anomaly survives the bucket-level
    test on ``entity``'s own rows, or None. An entity without rows of its own (a
    database, an external API: seen through its callers) is not re-judged."""
    rows = data.service_buckets.get(entity)
    if not rows:
        return "error_rate" if errors else "latency"
    b, i = data.baseline, data.incident
    base = [r for r in rows if b.start_s <= r.start_s < b.end_s]
    window = [r for r in rows if i.start_s <= r.start_s < i.end_s]
    if errors and errors_beyond_dispersion(base, window, cfg):
        return "error_rate"
    if latency and latency_beyond_bucket_spread(base, window, cfg):
        return "latency"
    return None


def bucket_alpha(data: WindowData, false_alarms_per_day: float, alpha: float) -> float:
    """The bucket-level tests' level when the detector asks them of every service with
    rows in every bucket of a day: ``false_alarms_per_day`` spread over those questions
    (Bonferroni), never looser than ``alpha``. RankCauses asks once per window and keeps
    ``alpha``; a detector asking 1,440 x N times a day at 1e-3 would raise ~1.4 N
    false symptoms a day by construction."""
    questions = max(1, len(data.service_buckets)) * 86400.0 / data.bucket_seconds
    return min(alpha, false_alarms_per_day / questions)


def baseline_symptoms(data: WindowData, skip: Iterable[str] = (), config: EvidenceConfig | None = None,
                      *, false_alarms_per_day: float | None = None) -> list[Symptom]:
    """Entities anomalous in ``data``'s incident window against its baseline, by the
    scoring RankCauses uses and the bucket-level tests (module doc; at
    :func:`bucket_alpha` when ``false_alarms_per_day`` is given); infrastructure (no
    statistics of its own) and ``skip`` (entities judged by an SLO instead) left out."""
    cfg = config or EvidenceConfig()
    ev = score_window(data, (), cfg)
    if false_alarms_per_day is not None:
        cfg = replace(cfg, alpha=bucket_alpha(data, false_alarms_per_day, cfg.alpha))
    out: list[Symptom] = []
    skipped = set(skip)
    for eid in ev.symptoms:
        e = ev.entities[eid]
        if eid in skipped or e.kind in INFRA_KINDS or not e.items:
            continue
        errors = any("error" in i.signal for i in e.items)
        latency = any("latency" in i.signal for i in e.items)
        signal = beyond_bucket_noise(data, eid, errors, latency or not errors, cfg)
        if signal is None:
            continue
        item = next((i for i in e.items if ("error" in i.signal) == (signal == "error_rate")), e.items[0])
        out.append(Symptom(eid, signal, item.text))
    return out


def _bad(row: BucketRow, slo: Slo) -> float:
    if slo.latency_ms <= 0:
        return float(row.errors)
    # Histogram bin i holds durations up to 0.1 * 2**(i/2) ms (inference/evidence.py).
    first_bad = max(0, math.ceil(2.0 * math.log2(slo.latency_ms / 0.1))) if slo.latency_ms > 0.1 else 0
    return float(sum(row.histogram[first_bad + 1:])) if first_bad + 1 < len(row.histogram) else 0.0


def slo_symptoms(data: WindowData, slos: Sequence[Slo], end_s: int) -> list[Symptom]:
    """SLO burn symptoms at ``end_s`` (exclusive end of the last complete bucket); ``data``
    must cover the longest window of every SLO."""
    out: list[Symptom] = []
    for slo in slos:
        rows = data.service_buckets.get(slo.entity, ())
        for w in slo.windows:
            rates = []
            for span in (w.long_s, w.short_s):
                sel = [r for r in rows if end_s - span <= r.start_s < end_s]
                n = sum(r.requests for r in sel)
                rates.append(sum(_bad(r, slo) for r in sel) / n / slo.budget if n > 0 else 0.0)
            if rates[0] >= w.factor and rates[1] >= w.factor:
                out.append(Symptom(slo.entity, slo.signal,
                                   f"burn rate {rates[0]:.1f}x over {w.long_s // 60} min and "
                                   f"{rates[1]:.1f}x over {w.short_s // 60} min (limit {w.factor:g}x)",
                                   confirmed=True))
                break
    return out


@dataclass
class OpenIncident:
    """An incident the tracker holds open: its symptoms, by entity, as first seen."""

    id: str
    opened_s: int
    #: first bucket start in which one of its symptoms showed
    start_s: int
    symptoms: dict[str, Symptom]
    clear_buckets: int = 0


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """What one evaluated bucket did to an incident: ``opened``, ``updated`` (new
    symptoms; ``added`` names them) or ``resolved``."""

    kind: str
    incident: OpenIncident
    added: tuple[str, ...] = ()


class Topology:
    """Which symptoms are related: one calls the other (at any depth) or they share a host."""

    def __init__(self, data: WindowData) -> None:
        outside = entry_callers(data.entities)
        edges = [(e.caller, e.callee) for e in data.edges if e.caller not in outside and e.caller != e.callee]
        self._up = callers_of(edges, data.runs_on)
        self._hosts = {s: set(h) for s, h in data.runs_on.items()}
        self._anc: dict[str, set[str]] = {}

    def ancestors(self, entity: str) -> set[str]:
        got = self._anc.get(entity)
        if got is None:
            got = self._anc[entity] = set(bfs_up(self._up, entity))
        return got

    def related(self, a: str, b: str) -> bool:
        return (a in self.ancestors(b) or b in self.ancestors(a)
                or bool(self._hosts.get(a, set()) & self._hosts.get(b, set())))


class IncidentTracker:
    """Symptoms per evaluated bucket in, incident changes out (module doc)."""

    def __init__(self, config: DetectorConfig, new_id: Callable[[int], str],
                 open_incidents: Iterable[OpenIncident] = ()) -> None:
        self._cfg = config
        self._new_id = new_id
        self.open: dict[str, OpenIncident] = {i.id: i for i in open_incidents}
        self._streak: dict[str, int] = {}
        #: start of the first bucket of each symptom's current streak
        self._since: dict[str, int] = {}

    def step(self, bucket_s: int, symptoms: Sequence[Symptom], topology: "Topology") -> list[IncidentChange]:
        """Apply the symptoms of the bucket starting at ``bucket_s`` (already complete)."""
        by_entity: dict[str, Symptom] = {}
        for s in symptoms:
            by_entity.setdefault(s.entity, s)
        self._streak = {e: self._streak.get(e, 0) + 1 for e in by_entity}
        self._since = {e: self._since.get(e, bucket_s) for e in by_entity}
        owner = {e: inc.id for inc in self.open.values() for e in inc.symptoms}
        confirmed = [e for e, s in sorted(by_entity.items())
                     if s.confirmed or e in owner or self._streak[e] >= self._cfg.confirm_buckets]
        changes: list[IncidentChange] = []
        added: dict[str, list[str]] = {}
        fresh: list[list[str]] = []  # groups of related new symptoms, in entity order
        for e in confirmed:
            if e in owner:
                continue
            home = next((owner[x] for x in sorted(owner, key=lambda x: (self.open[owner[x]].opened_s, x))
                         if topology.related(e, x)), None)
            if home is not None:
                owner[e] = home
                self.open[home].symptoms[e] = by_entity[e]
                added.setdefault(home, []).append(e)
                continue
            joined = [g for g in fresh if any(topology.related(e, x) for x in g)]
            if joined:  # e links these groups: one incident
                merged = [x for g in joined for x in g] + [e]
                fresh = [g for g in fresh if g not in joined] + [merged]
            else:
                fresh.append([e])
        for inc_id, names in added.items():
            changes.append(IncidentChange("updated", self.open[inc_id], tuple(names)))
        for group in fresh:
            start = min(self._since[e] for e in group)
            inc = OpenIncident(self._new_id(bucket_s), bucket_s, start, {e: by_entity[e] for e in group})
            self.open[inc.id] = inc
            for e in group:
                owner[e] = inc.id
            changes.append(IncidentChange("opened", inc, tuple(group)))
        for inc in list(self.open.values()):
            if any(e in by_entity for e in inc.symptoms):
                inc.clear_buckets = 0
            else:
                inc.clear_buckets += 1
                if inc.clear_buckets >= self._cfg.resolve_buckets:
                    del self.open[inc.id]
                    changes.append(IncidentChange("resolved", inc))
        return changes
