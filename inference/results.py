"""Result types shared by every ranking and what-if path.

One family of frozen dataclasses (STYLE.md #4) so the gRPC layer maps them 1:1 onto the
``rootgraph.v1`` messages of issue 5 (``Cause``, ``Impact`` ...): the field names here
are the contract, keep them in step with the proto.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from rootgraph.graph.model import Deployment
from rootgraph.inference.faults import FaultKind


class ActionKind(str, Enum):
    """What a remediation client may do; the service never executes anything itself."""

    ROLLBACK = "rollback"
    RESTART = "restart"
    SCALE = "scale"
    FAILOVER = "failover"
    INVESTIGATE = "investigate"


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """One figure that moved a posterior, e.g. error rate 41% vs 0.2% baseline.

    ``score`` is the detector's strength in [0, 1] (1 = unambiguous); ``text`` is what
    a human reads ("error rate 41% vs 0.2% baseline, exclusive").
    """

    entity: str
    signal: str
    observed: float
    baseline: float
    score: float
    text: str


@dataclass(frozen=True, slots=True)
class Action:
    """A suggested, never executed, remediation step.

    ``confidence`` is the share of past incidents with a similar cause where this action
    resolved it (smoothed, see ``inference/learning.py``); 0.0 when there is no history.
    """

    kind: ActionKind
    target: str
    detail: str
    to_version: str = ""
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class Cause:
    """A ranked candidate root cause with everything needed to explain it.

    ``paths`` are propagation paths cause -> ... -> symptom in the caller direction
    (the way a fault travels), e.g. ``("db:postgresql/orders", "orders", "checkout")``.
    ``fault_kind`` / ``fault_size`` are what the cause's own evidence shows it doing --
    ``errors`` (size: failing share added), ``latency`` (ms added per request) or, for
    infrastructure, ``saturation`` (factor on self time); ``None`` / 0 when unknown -- in
    the terms ``BlastRadius`` takes, so a client can ask for the blast radius of the
    fault as it is happening (:func:`rootgraph.inference.explain.observed_fault`).
    """

    entity: str
    kind: str
    probability: float
    rank: int
    explanation: str
    evidence: tuple[EvidenceItem, ...] = ()
    paths: tuple[tuple[str, ...], ...] = ()
    deployments: tuple[Deployment, ...] = ()
    suggested_actions: tuple[Action, ...] = ()
    fault_kind: FaultKind | None = None
    fault_size: float = 0.0


@dataclass(frozen=True, slots=True)
class Ranking:
    """The answer to one ``rank`` query.

    ``no_clear_cause`` is an answer, not an error: set when nothing is anomalous or the
    best posterior is below the configured threshold. ``notes`` carry the why-not of
    the runner-up, ties, and modelling decisions such as dropped cycle edges.
    ``all_posteriors`` holds ``P(F_x = 1 | evidence)`` for every candidate. ``aliases``:
    candidate -> the ids merged into it because they are the same machine (``node:X`` ->
    ``("host:X",)``); a cause named by either id is the same cause.
    """

    causes: tuple[Cause, ...]
    symptoms: tuple[str, ...]
    model_version: str
    no_clear_cause: bool
    notes: tuple[str, ...] = ()
    all_posteriors: dict[str, float] = field(default_factory=dict)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Impact:
    """Effect of an intervened fault on one entity.

    ``probability`` is ``P(k visibly impacted | do(fault at x))`` over the fault's unknown
    size (``inference/blast.py``); ``hops`` and ``path`` follow the
    caller direction from the faulty entity to ``entity``; ``traffic_share`` is the
    share of entry-point (``user``) traffic entering through ``entity`` times that
    probability, 0 for entities that are not entry points.
    """

    entity: str
    kind: str
    probability: float
    hops: int
    path: tuple[str, ...]
    traffic_share: float


@dataclass(frozen=True, slots=True)
class BlastRadius:
    """What-if answer: impacts sorted by probability, plus the entry-traffic total."""

    entity: str
    impacts: tuple[Impact, ...]
    entry_traffic_share_affected: float
