"""A scenario (topology + baseline + incident + faults + decoys) and its labels.

:func:`run` is the one engine entry point: it plans deployments (bad deployments at
onset, decoy deployments shortly before it, rollbacks when a fault ends), drives
Poisson user traffic through :class:`~.traffic.TrafficEngine` on a simulated clock,
and returns the :class:`Labels` measured from the run. :func:`run_to_files` and
:func:`run_live` are the two ways out: OTLP JSON lines + ``labels.json``, or a real
OTLP exporter.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from opentelemetry.sdk.trace.export import SpanExporter

from . import topologies
from .ambient import Ambient, Load, Noise
from .export import OtlpJsonLinesExporter, SyncBatchSpanProcessor, live_exporter, make_processor
from .faults import Fault, FaultEffects, FaultKind, bump_version
from .providers import DeploymentEvent, ProviderPool
from .topology import Topology
from .traffic import TrafficEngine
from .truth import EntityImpact, TruthRecorder

__all__ = ["DeploymentLabel", "FaultLabel", "Labels", "ScenarioError", "ScenarioSpec",
           "run", "run_live", "run_to_files"]

_S = 1_000_000_000
#: 2026-01-01T00:00:00Z: a fixed epoch so a seed fully determines the output.
DEFAULT_START_S = 1_767_225_600


class ScenarioError(ValueError):
    """A scenario spec that cannot run (message names the field)."""


@dataclass(frozen=True)
class ScenarioSpec:
    """Everything that determines a simulated incident; same spec + seed, same output.

    ``topology`` is a name understood by :func:`topologies.get` (``sockshop``,
    ``boutique``, ``trainticket``, ``generated-<n>[-<seed>]``). Fault times are
    relative to the incident start (= ``start_epoch_s + baseline_s``). ``decoys`` are
    services that get an innocent deployment ``decoy_lead_s`` before the first onset.
    ``min_error_share``/``min_latency_ratio`` are the blast-radius truth thresholds
    (see ``truth.py``).

    Healthy variation (``ambient.py``): ``load`` makes ``rate_rps`` the *peak* of a
    diurnal curve with bursts (None: a flat ``rate_rps``); ``noise`` names services whose
    error rate and latency wander; ``rollouts`` are innocent deployments (service,
    seconds from the data start) -- a version bump with no effect, like ``decoys`` but
    at any time.
    """

    name: str
    topology: str
    faults: tuple[Fault, ...]
    decoys: tuple[str, ...] = ()
    seed: int = 0
    baseline_s: float = 1800.0
    incident_s: float = 720.0
    rate_rps: float = 3.0
    decoy_lead_s: float = 120.0
    start_epoch_s: int = DEFAULT_START_S
    tags: tuple[str, ...] = ()
    min_error_share: float = 0.01
    min_latency_ratio: float = 0.2
    load: Load | None = None
    noise: tuple[Noise, ...] = ()
    rollouts: tuple[tuple[str, float], ...] = ()

    def validate(self, topo: Topology) -> None:
        if self.baseline_s <= 0 or self.incident_s <= 0:
            raise ScenarioError(f"{self.name}: baseline_s and incident_s must be > 0")
        if self.rate_rps <= 0:
            raise ScenarioError(f"{self.name}: rate_rps must be > 0")
        for f in self.faults:
            if not 0 <= f.onset_s < self.incident_s:
                raise ScenarioError(f"{self.name}: fault {f.entity!r} onset_s outside the incident")
        for d in self.decoys:
            if d not in topo.services:
                raise ScenarioError(f"{self.name}: decoy {d!r} is not a service")
            if d in {f.entity for f in self.faults}:
                raise ScenarioError(f"{self.name}: decoy {d!r} is also a root cause")
        if self.load is not None:
            try:
                self.load.validate(self.name)
            except ValueError as exc:
                raise ScenarioError(str(exc)) from None
        for n in self.noise:
            if n.service not in topo.services:
                raise ScenarioError(f"{self.name}: noise service {n.service!r} is not a service")
            if n.wander < 0 or n.period_s <= 0:
                raise ScenarioError(f"{self.name}: noise {n.service!r}: wander >= 0 and period_s > 0")
        for svc, at in self.rollouts:
            if svc not in topo.services:
                raise ScenarioError(f"{self.name}: rollout service {svc!r} is not a service")
            if not 0 <= at < self.baseline_s + self.incident_s:
                raise ScenarioError(f"{self.name}: rollout of {svc!r} at {at} s is outside the data")


@dataclass(frozen=True)
class FaultLabel:
    entity: str
    kind: str
    intensity: float
    onset_s: float
    end_s: float


@dataclass(frozen=True)
class DeploymentLabel:
    service: str
    version: str
    previous: str
    at_s: float
    decoy: bool = False
    rollback: bool = False


@dataclass(frozen=True)
class Labels:
    """Ground truth of one run; ``to_json``/``load`` round-trip it as ``labels.json``.

    ``blast_radius`` is measured (``truth.py``); ``impacts`` lists every entity the
    fault touched at all, with the numbers behind its membership.
    """

    scenario: str
    topology: str
    seed: int
    root_causes: tuple[str, ...]
    fault_kind: str
    faults: tuple[FaultLabel, ...]
    onset_s: float
    end_s: float
    baseline: tuple[float, float]
    incident: tuple[float, float]
    decoys: tuple[str, ...]
    deployments: tuple[DeploymentLabel, ...]
    blast_radius: tuple[str, ...]
    impacts: tuple[EntityImpact, ...]
    thresholds: dict[str, float]
    requests: int
    spans: int
    tags: tuple[str, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, d: dict) -> "Labels":
        d = dict(d)
        d["faults"] = tuple(FaultLabel(**f) for f in d["faults"])
        d["deployments"] = tuple(DeploymentLabel(**x) for x in d["deployments"])
        d["impacts"] = tuple(EntityImpact(**x) for x in d["impacts"])
        for key in ("root_causes", "decoys", "blast_radius", "tags", "baseline", "incident"):
            d[key] = tuple(d[key])
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> "Labels":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _plan(spec: ScenarioSpec, topo: Topology, t0: int, inc_start: int, end: int):
    """Absolute fault windows and the deployments they (and the decoys) imply."""
    windows, deployments = [], []
    for f in spec.faults:
        start = inc_start + int(f.onset_s * _S)
        stop = min(end, start + int(f.duration_s * _S)) if f.duration_s is not None else end
        version = ""
        if f.kind is FaultKind.BAD_DEPLOY and f.entity in topo.services:
            previous = topo.services[f.entity].version
            version = f.version or bump_version(previous)
            deployments.append(DeploymentEvent(f.entity, version, previous, start))
            if stop < end:
                deployments.append(DeploymentEvent(f.entity, previous, version, stop, rollback=True))
        windows.append((f, start, stop, version))
    onset = min((w[1] for w in windows), default=inc_start)
    for d in spec.decoys:
        previous = topo.services[d].version
        at = max(t0, onset - int(spec.decoy_lead_s * _S))  # never before the data starts
        deployments.append(DeploymentEvent(d, bump_version(previous), previous, at, decoy=True))
    current = {s: topo.services[s].version for s, _ in spec.rollouts}
    for svc, at_s in sorted(spec.rollouts, key=lambda r: r[1]):
        version = bump_version(current[svc])
        deployments.append(DeploymentEvent(svc, version, current[svc], t0 + int(at_s * _S), decoy=True))
        current[svc] = version
    return windows, deployments, onset


def run(spec: ScenarioSpec, exporter: SpanExporter, *, processor: str = "sync",
        topology: Topology | None = None) -> Labels:
    """Simulate ``spec`` into ``exporter`` and return the measured labels.

    ``topology`` overrides the registry lookup (for hand-built topologies in tests).
    The exporter is shut down at the end.
    """
    topo = topology or topologies.get(spec.topology)
    spec.validate(topo)
    t0 = int(spec.start_epoch_s * _S)
    inc_start = t0 + int(spec.baseline_s * _S)
    end = inc_start + int(spec.incident_s * _S)
    windows, deployments, onset = _plan(spec, topo, t0, inc_start, end)

    recorder = TruthRecorder(onset)
    proc = make_processor(exporter, processor)
    pool = ProviderPool(topo, proc, deployments, spec.seed)
    engine = TrafficEngine(topo, pool, FaultEffects(topo, windows), recorder,
                           random.Random(f"{spec.seed}:engine"),
                           Ambient(spec.noise, spec.seed) if spec.noise else None)
    arrivals = random.Random(f"{spec.seed}:arrivals")
    cum = list(itertools.accumulate(e.weight for e in topo.entries))
    t, requests = float(t0), 0
    load = spec.load
    envelope = spec.rate_rps * (load.max_factor if load is not None else 1.0)
    try:
        while True:
            t += arrivals.expovariate(envelope) * _S
            if t >= end:
                break
            if load is not None and arrivals.random() * load.max_factor >= load.factor((t - t0) / _S):
                continue  # thinning: a candidate at the envelope rate, kept at rate(t)
            entry = topo.entries[bisect.bisect_right(cum, arrivals.random() * cum[-1])]
            engine.request(entry, int(t))
            requests += 1
    finally:
        pool.shutdown()

    radius = set(recorder.blast_radius(spec.min_error_share, spec.min_latency_ratio))
    for f in spec.faults:  # infra roots are not span entities: anomalous via their services
        if f.kind is FaultKind.HOST and set(topo.services_on(f.entity)) & radius:
            radius.add(f.entity)
    impacts = tuple(i for i in recorder.impacts()
                    if i.fault_error_share > 0 or i.fault_latency_ratio > 0.01)
    fault_labels = tuple(FaultLabel(f.entity, f.kind.value, f.strength, s / _S, e / _S)
                         for f, s, e, _ in windows)
    return Labels(
        scenario=spec.name,
        topology=topo.name,
        seed=spec.seed,
        root_causes=tuple(dict.fromkeys(f.entity for f in spec.faults)),
        fault_kind=spec.faults[0].kind.value if spec.faults else "none",
        faults=fault_labels,
        onset_s=onset / _S,
        end_s=max((f.end_s for f in fault_labels), default=end / _S),
        baseline=(t0 / _S, inc_start / _S),
        incident=(inc_start / _S, end / _S),
        decoys=tuple(spec.decoys),
        deployments=tuple(DeploymentLabel(d.service, d.version, d.previous, d.at_ns / _S,
                                          d.decoy, d.rollback)
                          for d in sorted(deployments, key=lambda d: d.at_ns)),
        blast_radius=tuple(sorted(radius)),
        impacts=impacts,
        thresholds={"min_error_share": spec.min_error_share,
                    "min_latency_ratio": spec.min_latency_ratio},
        requests=requests,
        spans=engine.spans,
        tags=tuple(spec.tags),
        extra={"providers": pool.provider_count,
               **({"exported": proc.exported, "export_failed": proc.failed}
                  if isinstance(proc, SyncBatchSpanProcessor) else {})},
    )


def run_to_files(spec: ScenarioSpec, out_dir: str | Path, *, topology: Topology | None = None,
                 background: bool = True) -> Labels:
    """Write ``traces.jsonl`` (OTLP JSON lines) and ``labels.json`` into ``out_dir``.

    ``background`` moves JSON encoding to a worker process (see OtlpJsonLinesExporter).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exporter = OtlpJsonLinesExporter(out / "traces.jsonl", background=background)
    labels = run(spec, exporter, topology=topology)
    labels.to_json(out / "labels.json")
    return labels


def run_live(spec: ScenarioSpec, endpoint: str, *, protocol: str = "", processor: str = "sync",
             topology: Topology | None = None) -> Labels:
    """Export to a live OTLP endpoint (gRPC or HTTP) with the real OTLP exporter."""
    return run(spec, live_exporter(endpoint, protocol), processor=processor, topology=topology)
