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
  the very scoring RankCauses uses, so what opens an incident is what explains it.

:class:`IncidentTracker` then correlates: symptoms related in topology (a caller and
its callee at any depth, services on one host; transitively, so many entry points
behind one failing database join through it) join one incident; an incident resolves
once none of its symptoms showed for ``resolve_buckets`` evaluated buckets. State is
plain data so the server can persist and restore it (a detector taking over the lease
continues the open incidents).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from rootgraph.graph.records import BucketRow, WindowData
from rootgraph.inference.evidence import INFRA_KINDS, EvidenceConfig, score_window
from rootgraph.inference.topology import bfs_up, callers_of, entry_callers

__all__ = [
    "BurnWindow", "DEFAULT_BURN_WINDOWS", "DetectorConfig", "IncidentChange", "IncidentTracker", "OpenIncident",
    "Slo", "Symptom", "Topology", "baseline_symptoms", "slo_symptoms",
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
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)


def baseline_symptoms(data: WindowData, skip: Iterable[str] = (),
                      config: EvidenceConfig | None = None) -> list[Symptom]:
    """Entities anomalous in ``data``'s incident window against its baseline, by the
    scoring RankCauses uses; infrastructure (no statistics of its own) and ``skip``
    (entities judged by an SLO instead) left out."""
    ev = score_window(data, (), config)
    out: list[Symptom] = []
    skipped = set(skip)
    for eid in ev.symptoms:
        e = ev.entities[eid]
        if eid in skipped or e.kind in INFRA_KINDS or not e.items:
            continue
        errors = any("error" in i.signal for i in e.items)
        out.append(Symptom(eid, "error_rate" if errors else "latency", e.items[0].text))
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
