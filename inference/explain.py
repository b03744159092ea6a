"""Human-readable explanations: evidence with figures, propagation paths, why-not.

Paths follow the model's propagation DAG (after cycle breaking) in the caller
direction, through anomalous entities only: a path is how the fault plausibly reached
a symptom. Targets are the caller-named symptoms, else the *outermost* anomalous
entities (no anomalous caller), which is what users see.
"""

from __future__ import annotations

import statistics

from rootgraph.graph.records import Deployment, EntityKind
from rootgraph.inference.evidence import INFRA_KINDS, WindowEvidence
from rootgraph.inference.faults import FaultKind
from rootgraph.inference.network import CausalModel
from rootgraph.inference.results import EvidenceItem
from rootgraph.inference.topology import bfs_up, callers_of, path_to

MAX_PATHS = 5


def caller_map(model: CausalModel) -> dict[str, list[str]]:
    """callee -> callers over the network's kept edges; infra -> services running on it."""
    return callers_of(model.strengths, model.hosts_of)


def propagation_paths(model: CausalModel, ev: WindowEvidence, cause: str,
                      up: dict[str, list[str]]) -> tuple[tuple[str, ...], ...]:
    anomalous = {x for x, e in ev.entities.items() if e.anomalous}
    prev = bfs_up(up, cause, anomalous | {cause})
    forced = [s for s in ev.symptoms if ev.entities[s].forced]
    if forced:
        targets = forced
    else:
        targets = [s for s in ev.symptoms if not any(c in anomalous for c in up.get(s, ()))]
    paths = [path_to(prev, t) for t in targets if t in prev]
    paths.sort(key=lambda p: (-len(p), p))
    return tuple(paths[:MAX_PATHS])


def _ago(minutes: float) -> str:
    m = round(minutes)
    return "less than a minute" if m < 1 else ("1 minute" if m == 1 else f"{m} minutes")


def deployment_items(entity: str, deps: tuple[Deployment, ...], onset_s: int | None,
                     incident_start_s: int) -> list[EvidenceItem]:
    ref = onset_s if onset_s is not None else incident_start_s
    out = []
    for d in deps:
        delta = ref - d.at_ms / 1000.0
        when = f"{_ago(delta / 60)} before onset" if delta >= 0 else f"{_ago(-delta / 60)} after onset"
        prev = f" (from {d.previous_version})" if d.previous_version else ""
        out.append(EvidenceItem(entity, "deployment", d.at_ms / 1000.0, float(ref), 1.0,
                                f"deployed {d.version}{prev} {when}"))
    return out


def evidence_items(model: CausalModel, ev: WindowEvidence, entity: str) -> tuple[EvidenceItem, ...]:
    """Items that raised ``entity``: its own, its hosted services' self time, the metric
    items of its ``M|`` detectors (its own metrics and those of the pods / nodes it runs
    on), deployments."""
    e = ev.entities.get(entity)
    items: list[EvidenceItem] = []
    for m in (entity, *model.aliases.get(entity, ()), *ev.window.runs_on.get(entity, ())):
        v = ev.metrics.get(m)
        if v is not None and v.fired and f"M|{m}" in model.nodes:
            items.extend(v.items)
    if e is not None and e.kind in INFRA_KINDS:
        for svc, hosts in sorted(model.hosts_of.items()):
            se = ev.entities.get(svc)
            if entity in hosts and se is not None:
                items.extend(i for i in se.items if i.signal in ("self_time", "exclusive_errors")
                             or i.signal.startswith("latency"))
    elif e is not None:
        items.extend(sorted(e.items, key=lambda i: -i.score))
        items.extend(deployment_items(entity, e.deployments, e.onset_s if e.onset_s is not None else ev.onset_s,
                                      ev.window.incident.start_s))
    return tuple(items)


def observed_fault(kind: EntityKind, items: tuple[EvidenceItem, ...]) -> tuple[FaultKind | None, float]:
    """What a cause's own evidence shows it doing, and how badly, in ``BlastRadius``'s terms.

    Why: a remediation client's next question about a cause is "what else will this
    take down if it goes on?". Asked without a kind or size, BlastRadius must average
    an error and a latency fault of any size, which blurs every answer; the fault the
    evidence already shows is the better what-if.

    Kind: ``saturation`` for infrastructure whose services' self time or latency rose
    (``errors`` when they only show exclusive errors); else ``errors`` or ``latency`` by
    the stronger detector score (errors on a tie: a failing request is what users see);
    ``None`` when the cause has no evidence of its own (ranked from its neighbours): kind
    unknown. Size, in BlastRadius's units (0 = unknown), from the strongest item of that
    kind: *errors* -- the rise of the failing share (observed minus baseline, of the
    service or of its callers' calls to a backend); *latency* -- ms added per request:
    the rise of self time (a mean) when the service shows one, else of p95 (p99 last);
    *saturation* -- the median factor of the hosted services' self time.
    """
    if kind in INFRA_KINDS and any(i.signal == "self_time" or "latency_" in i.signal for i in items):
        ratios = [i.observed / i.baseline for i in items if i.signal == "self_time" and i.baseline > 0]
        factor = statistics.median(ratios) if ratios else 0.0
        return FaultKind.SATURATION, factor if factor > 1.0 else 0.0
    errs = [i for i in items if i.signal.endswith("error_rate") or i.signal == "exclusive_errors"]
    lats = [i for i in items if "latency_" in i.signal or i.signal in ("self_time", "link_gap")]
    err = max((i.score for i in errs), default=0.0)
    lat = max((i.score for i in lats), default=0.0)
    if err == lat == 0.0:
        return None, 0.0
    if err >= lat:
        best = max(errs, key=lambda i: (i.score, i.signal.endswith("error_rate")))
        return FaultKind.ERRORS, max(0.0, min(1.0, best.observed - best.baseline))
    # A mean beats a tail: p95 moves by the delay only for a constant delay, and the
    # histogram reads it to a bucket (~19 %).
    rank = {"self_time": 0, "link_gap": 0}  # both means: ms added per call
    best = min(lats, key=lambda i: (rank.get(i.signal, 1 if i.signal.endswith("p95") else
                                          3 if i.signal.endswith("shift") else 2), -i.score))
    return FaultKind.LATENCY, max(0.0, best.observed - best.baseline)


def explanation(entity: str, kind: str, p: float, items: tuple[EvidenceItem, ...],
                paths: tuple[tuple[str, ...], ...]) -> str:
    parts = [f"{entity} ({kind}): P(root cause) = {p:.2f}"]
    if items:
        parts.append("evidence: " + "; ".join(i.text for i in items[:4]))
    else:
        parts.append("no direct evidence; ranked from its prior and its neighbours")
    if paths and len(paths[0]) > 1:
        parts.append("propagation: " + ", ".join(" \u2192 ".join(p) for p in paths[:3]))
    return ". ".join(parts) + "."


def why_not(model: CausalModel, ev: WindowEvidence, top: str, other: str, p_top: float, p_other: float,
            up: dict[str, list[str]]) -> str:
    """One sentence on why ``other`` ranks below ``top``."""
    e = ev.entities.get(other)
    explained_by_top = other in bfs_up(up, top)
    if e is not None and e.anomalous and e.instrumented and not e.self_anomalous:
        by = top if explained_by_top else "its dependencies"
        return (f"{other} (P={p_other:.2f}) has no exclusive errors or self-time increase: its anomaly "
                f"is explained by {by}")
    if e is not None and not e.anomalous:
        dep = f" despite deploying {e.deployments[-1].version}" if e.deployments else ""
        return f"{other} (P={p_other:.2f}) shows no anomaly{dep}"
    if explained_by_top:
        return f"{other} (P={p_other:.2f}) is downstream of {top} (P={p_top:.2f}), which explains it"
    return f"{other} (P={p_other:.2f}) has weaker evidence than {top} (P={p_top:.2f})"
