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
from typing import Iterable, Protocol

import grpc

from rootgraph.client import RemediationStep

__all__ = ["DECISIONS", "DecisionError", "ProposalState", "StepSink", "decide", "proposal_states", "step"]

DECISIONS = ("approved", "denied", "expired")
_KINDS = ("proposed", *DECISIONS, "executed", "outcome")
#: The step's detail field holds at most this much (the proto's stated limit).
MAX_DETAIL = 16 * 1024


class StepSink(Protocol):
    """What recording a step needs of the client (``RootGraphClient`` satisfies it)."""

    def record_remediation_step(self, step: RemediationStep) -> bool: ...

    def remediation_steps(self, incident_id: str) -> list[RemediationStep]: ...


class DecisionError(Exception):
    """A decision that cannot be taken (no proposal waiting, already decided); says why."""


def step(kind: str, *, incident_id: str, proposal_id: str, action: str, target: str, actor: str,
         detail: str = "", policy_version: str = "", exit_status: int = 0, dry_run: bool = False,
         outcome: str = "unspecified") -> RemediationStep:
    """One step of a proposal, its id derived from the proposal id and the kind."""
    if kind not in _KINDS:
        raise ValueError(f"kind: one of {_KINDS}, got {kind!r}")
    if len(detail.encode()) > MAX_DETAIL:
        detail = detail.encode()[: MAX_DETAIL - 3].decode(errors="ignore") + "..."
    return RemediationStep(
        step_id=proposal_id if kind == "proposed" else f"{proposal_id}.{kind}", incident_id=incident_id,
        kind=kind, proposal_id=proposal_id, action=action, target=target, actor=actor, exit_status=exit_status,
        dry_run=dry_run, outcome=outcome, detail=detail, policy_version=policy_version)


@dataclass(frozen=True)
class ProposalState:
    """One proposal's steps, as the server holds them, and where it stands."""

    proposed: RemediationStep
    decision: RemediationStep | None
    executed: RemediationStep | None
    outcome: RemediationStep | None

    @property
    def open(self) -> bool:
        """Waiting for a decision."""
        return self.decision is None


def proposal_states(steps: Iterable[RemediationStep]) -> dict[str, ProposalState]:
    """Group an incident's steps (in the order recorded) by proposal."""
    grouped: dict[str, dict[str, RemediationStep]] = {}
    for s in steps:
        grouped.setdefault(s.proposal_id or s.step_id, {})[s.kind] = s
    out = {}
    for pid, by_kind in grouped.items():
        if "proposed" not in by_kind:
            continue
        decision = next((by_kind[k] for k in DECISIONS if k in by_kind), None)
        out[pid] = ProposalState(by_kind["proposed"], decision, by_kind.get("executed"), by_kind.get("outcome"))
    return out


def decide(client: StepSink, incident_id: str, *, approve: bool, actor: str, proposal_id: str = "",
           detail: str = "", policy_version: str = "") -> RemediationStep:
    """Record an approval or a denial of the incident's open proposal (or of ``proposal_id``).

    The one decision path of the chat callback, the CLI and the policy. Raises
    :class:`DecisionError` when nothing waits for a decision or it was decided already.
    """
    states = proposal_states(client.remediation_steps(incident_id))
    if proposal_id:
        state = states.get(proposal_id)
        if state is None:
            raise DecisionError(f"proposal {proposal_id}: no such proposal on incident {incident_id}")
    else:
        waiting = [s for s in states.values() if s.open]
        if not waiting:
            raise DecisionError(f"incident {incident_id}: no proposal is waiting for a decision")
        state = waiting[-1]
    if state.decision is not None:
        raise DecisionError(f"proposal {state.proposed.step_id}: already {state.decision.kind} by "
                            f"{state.decision.actor or 'the daemon'}")
    p = state.proposed
    s = step("approved" if approve else "denied", incident_id=incident_id, proposal_id=p.step_id,
             action=p.action, target=p.target, actor=actor, detail=detail, policy_version=policy_version)
    try:
        client.record_remediation_step(s)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:  # type: ignore[attr-defined]
            raise DecisionError(f"proposal {p.step_id}: {exc.details()}") from None  # type: ignore[attr-defined]
        raise
    return s
