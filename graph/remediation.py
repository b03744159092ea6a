"""Remediation steps on an incident: what was proposed, who decided, what ran, what it did.

Issue 17: remediation clients (``rootgraph remediate``, rollback bots) act; rootgraph
keeps the record, so every step of the lifecycle is explainable after the fact in the
Browser and in ``GetIncident``. A step is ``(:RemediationStep)-[:STEP_OF]->(:Incident)``
(and ``-[:TARGETS]->(:Entity)`` when its target is a stored entity), written once,
idempotent on the caller's step id.

The store keeps each proposal's steps in the only order that is safe, because several
clients (a chat callback, the CLI, a second remediation replica) may record decisions on
the same proposal at once:

* ``proposed`` opens a proposal (its proposal id is its own step id);
* exactly one decision: ``approved``, ``denied`` or ``expired`` -- the first one stored
  wins, a later different one is refused (an approval that arrives after the timeout
  cannot make anything run);
* ``executed`` only after ``approved``, once;
* ``outcome`` only after ``executed``, once.

The checks and the write happen in one transaction holding the incident's write lock
(taken before anything is read: Neo4j is read-committed), so two racing decisions cannot
both pass. Each new step also appends a watch event in that transaction
(:data:`~rootgraph.graph.incident_events.APPEND_EVENT`), so the client waiting for a
decision sees it on ``WatchIncidents`` whichever process recorded it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from neo4j import ManagedTransaction

from rootgraph.graph.errors import Conflict, FailedPrecondition, NotFound
from rootgraph.graph.incident_events import APPEND_EVENT
from rootgraph.graph.repository import Repository

__all__ = ["STEP_KINDS", "DECISIONS", "RemediationLog", "StepRecord"]

STEP_KINDS = ("proposed", "approved", "denied", "expired", "executed", "outcome")
#: The kinds that decide a proposal; one per proposal.
DECISIONS = ("approved", "denied", "expired")


@dataclass(frozen=True, slots=True)
class StepRecord:
    id: str
    incident_id: str
    #: the step id of the proposal's ``proposed`` step (its own id for that step)
    proposal_id: str
    kind: str
    action: str
    target: str
    actor: str
    exit_status: int
    dry_run: bool
    outcome: str
    detail: str
    policy_version: str
    at_ms: int


_LOCK_INCIDENT = """
MATCH (i:Incident {id: $incident})
SET i._lock = true
REMOVE i._lock
RETURN i.id AS id
"""

_PROPOSAL_STEPS = """
MATCH (s:RemediationStep {proposal: $proposal})-[:STEP_OF]->(:Incident {id: $incident})
RETURN s.kind AS kind, s.actor AS actor
"""

_CREATE_STEP = """
MATCH (i:Incident {id: $incident})
CREATE (s:RemediationStep {id: $id, incident: $incident, proposal: $proposal, kind: $kind,
                           action: $action, target: $target, actor: $actor,
                           exit_status: $exit_status, dry_run: $dry_run, outcome: $outcome,
                           detail: $detail, policy_version: $policy, at: $at})
CREATE (s)-[:STEP_OF]->(i)
WITH s
OPTIONAL MATCH (e:Entity {id: $target})
FOREACH (_ IN CASE WHEN e IS NULL THEN [] ELSE [1] END | CREATE (s)-[:TARGETS]->(e))
"""


def _order_error(step: StepRecord, earlier: list[tuple[str, str]]) -> str | None:
    """Why ``step`` may not follow ``earlier`` (kind, actor) of its proposal; None: it may."""
    kinds = [k for k, _ in earlier]
    if step.kind == "proposed":
        return None
    if "proposed" not in kinds:
        return f"proposal_id: no proposal {step.proposal_id!r} on incident {step.incident_id!r}"
    decided = next(((k, a) for k, a in earlier if k in DECISIONS), None)
    if step.kind in DECISIONS:
        if decided is not None:
            who = f" by {decided[1]}" if decided[1] else ""
            return f"proposal {step.proposal_id!r} was already decided: {decided[0]}{who}"
        return None
    if step.kind == "executed":
        if decided is None or decided[0] != "approved":
            state = "not decided" if decided is None else decided[0]
            return f"proposal {step.proposal_id!r} is {state}: only an approved proposal is executed"
        if "executed" in kinds:
            return f"proposal {step.proposal_id!r} was already executed"
        return None
    # outcome
    if "executed" not in kinds:
        return f"proposal {step.proposal_id!r} was not executed: an outcome follows an execution"
    if "outcome" in kinds:
        return f"proposal {step.proposal_id!r} already has an outcome"
    return None


class RemediationLog(Repository):
    """Remediation steps, recorded in order (module doc)."""

    def record_step(self, step: StepRecord, event_payload: Callable[[StepRecord], bytes]) -> tuple[bool, int | None]:
        """Store ``step`` and its watch event (``event_payload(step)``); (created, the
        event's seq). A step id stored before answers (False, None) when it is the same
        step and :class:`Conflict` when it is not; :class:`NotFound` for an unknown
        incident or proposal; :class:`FailedPrecondition` out of order."""
        if step.kind not in STEP_KINDS:
            raise ValueError(f"unknown step kind {step.kind!r}")

        def work(tx: ManagedTransaction) -> tuple[bool, int | None]:
            if tx.run(_LOCK_INCIDENT, incident=step.incident_id).single() is None:
                raise NotFound(f"incident_id: no incident {step.incident_id!r}")
            old = tx.run("MATCH (s:RemediationStep {id: $id}) RETURN s.incident AS incident, "
                         "s.proposal AS proposal, s.kind AS kind", id=step.id).single()
            if old is not None:
                if (old["incident"], old["proposal"], old["kind"]) != (step.incident_id, step.proposal_id, step.kind):
                    raise Conflict(f"step_id: {step.id!r} was recorded as a {old['kind']} step of proposal "
                                   f"{old['proposal']!r} on incident {old['incident']!r}")
                return False, None
            earlier = [(r["kind"], r["actor"] or "") for r in
                       tx.run(_PROPOSAL_STEPS, proposal=step.proposal_id, incident=step.incident_id)]
            why = _order_error(step, earlier)
            if why is not None:
                raise (NotFound if why.startswith("proposal_id:") else FailedPrecondition)(why)
            tx.run(_CREATE_STEP, id=step.id, incident=step.incident_id, proposal=step.proposal_id,
                   kind=step.kind, action=step.action, target=step.target, actor=step.actor,
                   exit_status=step.exit_status, dry_run=step.dry_run, outcome=step.outcome,
                   detail=step.detail, policy=step.policy_version, at=step.at_ms).consume()
            seq = tx.run(APPEND_EVENT, incident=step.incident_id, kind="remediation",
                         payload=event_payload(step)).single()["seq"]
            return True, int(seq)

        return self._write(work)

    def steps(self, incident_id: str) -> list[StepRecord]:
        """The incident's steps in the order recorded."""
        rows = self._read(lambda tx: tx.run(
            "MATCH (s:RemediationStep)-[:STEP_OF]->(:Incident {id: $id}) RETURN s ORDER BY s.at, s.id",
            id=incident_id).values())
        return [_step(r[0]) for r in rows]


def _step(s) -> StepRecord:  # noqa: ANN001 - a neo4j Node
    return StepRecord(
        id=s["id"], incident_id=s["incident"], proposal_id=s["proposal"], kind=s["kind"],
        action=s["action"] or "", target=s["target"] or "", actor=s["actor"] or "",
        exit_status=int(s["exit_status"] or 0), dry_run=bool(s["dry_run"]), outcome=s["outcome"] or "",
        detail=s["detail"] or "", policy_version=s["policy_version"] or "", at_ms=int(s["at"]),
    )
