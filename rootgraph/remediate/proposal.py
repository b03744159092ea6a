"""From a detected incident to a proposal a person can approve or deny.

A proposal is made only where acting is defensible (issue 17, item 1 and 3): the ranking
names a cause (never on ``no_clear_cause``), the top cause is plausible by the same rule
the ranker and the CLI use (:func:`rootgraph.results.is_plausible`), and the ranker
suggested an action for it whose kind the operator allowed (``investigate`` is advice,
never a command). The guardrail shown next to it is ``BlastRadius`` for that cause *with
the fault its evidence shows* (``Cause.fault_kind`` / ``fault_size``): the share of
entry traffic the fault reaches if nobody acts. The learned confidence is what the
ranker attached from past outcomes (``SuggestedAction.confidence`` and its detail).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

from rootgraph.results import Action, BlastRadius, Cause, Ranking, fault_kind_name, is_plausible

__all__ = ["Learned", "Proposal", "choose_action", "learned_from", "make_proposal", "proposal_id"]

#: How many evidence lines and impacts a proposal carries (a chat message, not a report).
_EVIDENCE_LINES = 4
_IMPACTS = 3


@dataclass(frozen=True, slots=True)
class Learned:
    """The outcome history behind an action's confidence, as the ranker states it.

    ``context`` is the ranker's similarity class (``service/deploy``, ``backend/no-deploy``,
    ... -- ``inference/actions.py: action_context``), recovered from the sentence the
    ranker appends to the action's detail; a policy allows an action per context.
    """

    resolved: int
    total: int
    confidence: float
    context: str


#: ``with_confidence`` in inference/actions.py appends exactly this sentence; its
#: ``describe_context`` phrases map back onto the context names below.
_LEARNED = re.compile(r"; (\w+) resolved (\d+) of (\d+) past incidents where the cause was (.+)$")
_GROUPS = {"a service": "service", "a database, queue or external": "backend", "an infrastructure entity": "infra"}


def learned_from(action: Action) -> Learned | None:
    """The history behind ``action.confidence``; None when the ranker had none."""
    m = _LEARNED.search(action.detail)
    if m is None or m.group(1) != action.kind.value:
        return None
    phrase = m.group(4)
    deploy = "deploy" if phrase.endswith(" with a deployment within 10 minutes") else "no-deploy"
    what = phrase.removesuffix(" with a deployment within 10 minutes").removesuffix(" without a recent deployment")
    return Learned(int(m.group(2)), int(m.group(3)), action.confidence, f"{_GROUPS.get(what, what)}/{deploy}")


def choose_action(ranking: Ranking, allowed: tuple[str, ...]) -> tuple[Cause, Action] | None:
    """The top cause and the first of its suggestions the operator allows, or None.

    None on ``no_clear_cause``, on a top cause that is not plausible, and when no
    suggestion is of an allowed kind: the client then stays silent, as a person would.
    """
    if ranking.no_clear_cause or not ranking.causes:
        return None
    top = min(ranking.causes, key=lambda c: c.rank)
    if not is_plausible(top.probability, max(c.probability for c in ranking.causes)):
        return None
    for action in top.suggested_actions:
        if action.kind.value in allowed and action.target == top.entity:
            return top, action
    return None


def proposal_id(incident_id: str, action: Action) -> str:
    """Derived, so a daemon that sees the same incident twice (an UPDATED event, a restart)
    proposes the same thing under the same id and the server answers created=false."""
    key = json.dumps([incident_id, action.kind.value, action.target, action.to_version])
    return "rp-" + hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Proposal:
    """Everything the approver sees and the executor needs; JSON-able (the PROPOSED step)."""

    proposal_id: str
    incident_id: str
    action: str                     # an ActionKind value
    target: str
    to_version: str
    action_detail: str
    cause_kind: str
    probability: float
    runner_up: str
    runner_up_probability: float
    evidence: tuple[str, ...]
    fault_kind: str
    fault_size: float
    #: Expected share of all entry (user) traffic the fault affects if nobody acts.
    blast_share: float
    blast_impacts: tuple[tuple[str, float], ...]
    confidence: float
    learned: Learned | None
    model_version: str
    #: Wall time the incident event was committed (for "opened -> posted" latency).
    event_committed_s: float
    #: The decision deadline (epoch seconds); after it the proposal expires.
    deadline_s: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @property
    def service(self) -> str:
        """The workload name a command line wants: ``orders`` of ``sock-shop/orders``."""
        return self.target.rsplit("/", 1)[-1]

    @property
    def namespace(self) -> str:
        return self.target.rsplit("/", 1)[0] if "/" in self.target else ""

    def summary(self) -> str:
        """One line, for logs and plain-text chat."""
        conf = (f", learned confidence {self.confidence:.0%} ({self.learned.resolved}/{self.learned.total})"
                if self.learned else "")
        return (f"{self.action} {self.target}" + (f" to {self.to_version}" if self.to_version else "")
                + f": P={self.probability:.2f}, blast radius {self.blast_share:.0%} of entry traffic{conf}")


def make_proposal(ranking: Ranking, cause: Cause, action: Action, blast: BlastRadius, *,
                  committed_s: float, deadline_s: float) -> Proposal:
    """Assemble a proposal from the ranking, the chosen action and its blast radius."""
    others = sorted((c for c in ranking.causes if c.entity != cause.entity), key=lambda c: c.rank)
    runner = others[0] if others else None
    return Proposal(
        proposal_id=proposal_id(ranking.incident_id, action), incident_id=ranking.incident_id,
        action=action.kind.value, target=action.target, to_version=action.to_version,
        action_detail=action.detail, cause_kind=cause.kind, probability=cause.probability,
        runner_up=runner.entity if runner else "", runner_up_probability=runner.probability if runner else 0.0,
        evidence=tuple(e.text for e in cause.evidence[:_EVIDENCE_LINES]),
        fault_kind=fault_kind_name(cause.fault_kind), fault_size=cause.fault_size,
        blast_share=blast.entry_traffic_share_affected,
        blast_impacts=tuple((i.entity, i.probability) for i in blast.impacts[:_IMPACTS]),
        confidence=action.confidence, learned=learned_from(action), model_version=ranking.model_version,
        event_committed_s=committed_s, deadline_s=deadline_s,
    )
