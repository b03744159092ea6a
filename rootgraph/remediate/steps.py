"""The steps of acting on an incident, as recorded on the server (``RecordRemediationStep``).

The server is the one place a decision lives: the chat callback and ``rootgraph
remediate approve`` both *record* a decision there, and the daemon reads the incident's
steps to learn it (woken by the REMEDIATION event on ``WatchIncidents``). So a decision
taken in Slack, in the CLI, by a policy or by the expiry timer is one and the same kind
of fact, ordered and kept by the server's per-proposal state machine (one decision per
proposal, execution only after an approval, an outcome only after an execution).

Step ids are derived from the proposal id and the step kind: a retried write is
recognised (created=false), while a second, different decision on the same proposal
is a different id and the server refuses it (FAILED_PRECONDITION).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

import grpc

from rootgraph.v1 import rootgraph_pb2 as pb

__all__ = ["DECISIONS", "DecisionError", "ProposalState", "StepSink", "action_enum", "decide",
           "describe", "proposal_states", "step"]

K = pb.RemediationStepKind
DECISIONS = (K.REMEDIATION_STEP_KIND_APPROVED, K.REMEDIATION_STEP_KIND_DENIED, K.REMEDIATION_STEP_KIND_EXPIRED)
_KIND_SUFFIX = {K.REMEDIATION_STEP_KIND_PROPOSED: "", K.REMEDIATION_STEP_KIND_APPROVED: ".approved",
                K.REMEDIATION_STEP_KIND_DENIED: ".denied", K.REMEDIATION_STEP_KIND_EXPIRED: ".expired",
                K.REMEDIATION_STEP_KIND_EXECUTED: ".executed", K.REMEDIATION_STEP_KIND_OUTCOME: ".outcome"}
#: The step's detail field holds at most this much (the proto's stated limit).
MAX_DETAIL = 16 * 1024


class StepSink(Protocol):
    """What recording a step needs of the client (``RootGraphClient`` satisfies it)."""

    def record_remediation_step(self, step: pb.RemediationStep) -> bool: ...

    def get_incident(self, incident_id: str) -> pb.GetIncidentResponse: ...


class DecisionError(Exception):
    """A decision that cannot be taken (no proposal waiting, already decided); says why."""


def action_enum(kind: str) -> int:
    """``rollback`` -> ``REMEDIATION_ACTION_ROLLBACK`` (the feedback/step action enum)."""
    return pb.RemediationAction.Value(f"REMEDIATION_ACTION_{kind.upper()}")


def step(kind: int, *, incident_id: str, proposal_id: str, action: str, target: str, actor: str,
         detail: str = "", policy_version: str = "", exit_status: int = 0, dry_run: bool = False,
         outcome: int = pb.OUTCOME_UNSPECIFIED) -> pb.RemediationStep:
    """One step of a proposal, its id derived from the proposal id and the kind."""
    if len(detail.encode()) > MAX_DETAIL:
        detail = detail.encode()[: MAX_DETAIL - 3].decode(errors="ignore") + "..."
    return pb.RemediationStep(
        step_id=proposal_id + _KIND_SUFFIX[kind], incident_id=incident_id, proposal_id=proposal_id, kind=kind,
        action=action_enum(action), target=target, actor=actor, detail=detail, policy_version=policy_version,
        exit_status=exit_status, dry_run=dry_run, outcome=outcome)


@dataclass(frozen=True)
class ProposalState:
    """One proposal's steps, as the server holds them, and where it stands."""

    proposed: pb.RemediationStep
    decision: pb.RemediationStep | None
    executed: pb.RemediationStep | None
    outcome: pb.RemediationStep | None

    @property
    def open(self) -> bool:
        """Waiting for a decision."""
        return self.decision is None


def proposal_states(steps: Iterable[pb.RemediationStep]) -> dict[str, ProposalState]:
    """Group an incident's steps (``GetIncidentResponse.remediation``) by proposal, in order."""
    grouped: dict[str, dict[int, pb.RemediationStep]] = {}
    for s in steps:
        pid = s.proposal_id or s.step_id
        grouped.setdefault(pid, {})[s.kind] = s
    out = {}
    for pid, by_kind in grouped.items():
        proposed = by_kind.get(K.REMEDIATION_STEP_KIND_PROPOSED)
        if proposed is None:
            continue
        decision = next((by_kind[k] for k in DECISIONS if k in by_kind), None)
        out[pid] = ProposalState(proposed, decision, by_kind.get(K.REMEDIATION_STEP_KIND_EXECUTED),
                                 by_kind.get(K.REMEDIATION_STEP_KIND_OUTCOME))
    return out


def decide(client: StepSink, incident_id: str, *, approve: bool, actor: str, proposal_id: str = "",
           detail: str = "", policy_version: str = "") -> pb.RemediationStep:
    """Record an approval or a denial of the incident's open proposal (or of ``proposal_id``).

    The one decision path of the chat callback, the CLI and the policy. Raises
    :class:`DecisionError` when nothing waits for a decision or it was decided already.
    """
    states = proposal_states(client.get_incident(incident_id).remediation)
    if proposal_id:
        state = states.get(proposal_id)
        if state is None:
            raise DecisionError(f"proposal {proposal_id}: no such proposal on incident {incident_id}")
    else:
        waiting = [s for s in states.values() if s.open]
        if not waiting:
            raise DecisionError(f"incident {incident_id}: no proposal is waiting for a decision")
        state = waiting[-1]
    if not state.open:
        raise DecisionError(f"proposal {state.proposed.step_id}: already "
                            f"{_kind_name(state.decision.kind)} by {state.decision.actor or 'the daemon'}")
    p = state.proposed
    kind = K.REMEDIATION_STEP_KIND_APPROVED if approve else K.REMEDIATION_STEP_KIND_DENIED
    s = step(kind, incident_id=incident_id, proposal_id=p.step_id,
             action=pb.RemediationAction.Name(p.action).removeprefix("REMEDIATION_ACTION_").lower(),
             target=p.target, actor=actor, detail=detail, policy_version=policy_version)
    try:
        client.record_remediation_step(s)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:  # type: ignore[attr-defined]
            raise DecisionError(f"proposal {p.step_id}: {exc.details()}") from None  # type: ignore[attr-defined]
        raise
    return s


def _kind_name(kind: int) -> str:
    return K.Name(kind).removeprefix("REMEDIATION_STEP_KIND_").lower()


def describe(steps: Sequence[pb.RemediationStep]) -> list[dict]:
    """The steps as plain rows (``rootgraph remediate status``)."""
    return [{"step": _kind_name(s.kind), "proposal": s.proposal_id or s.step_id,
             "action": pb.RemediationAction.Name(s.action).removeprefix("REMEDIATION_ACTION_").lower(),
             "target": s.target, "actor": s.actor, "policy": s.policy_version,
             **({"exit_status": s.exit_status, "dry_run": s.dry_run}
                if s.kind == K.REMEDIATION_STEP_KIND_EXECUTED else {}),
             **({"outcome": pb.Outcome.Name(s.outcome).removeprefix("OUTCOME_").lower()}
                if s.kind == K.REMEDIATION_STEP_KIND_OUTCOME else {}),
             "at": s.at.seconds + s.at.nanos / 1e9} for s in steps]
