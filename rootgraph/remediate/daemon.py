"""``rootgraph remediate run``: the loop from a detected incident to a learned outcome.

One watch on ``WatchIncidents`` feeds everything (resumed with its cursor when the
stream drops). For an OPENED/UPDATED incident without a proposal in progress, a worker
thread takes it through the lifecycle, recording every step on the server:

    propose (BlastRadius guardrail) -> post to Slack / Teams -> [policy may approve]
    -> wait for a decision (chat, CLI, policy; REMEDIATION events wake it)
       -> none before the deadline: EXPIRED, nothing runs
       -> DENIED: nothing runs
       -> APPROVED: execute -> EXECUTED (exit status, output tail)
            -> failed or dry run: stop here (nothing to learn from)
            -> watch the incident's events -> OUTCOME -> SubmitFeedback (once)

The daemon holds no decision state of its own: it reads the proposal's steps from
``GetIncident`` (so a restart, or a decision recorded by another process, is seen), and
events only tell it *when* to look again; a poll every ``_POLL_S`` covers a dropped stream.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import grpc

from rootgraph.client import IncidentEvent, RootGraphClient
from rootgraph.config import ConfigError
from rootgraph.remediate.chat import ChatError, post_json, slack_message, slack_text, teams_message, teams_text
from rootgraph.remediate.config import RemediateSettings
from rootgraph.remediate.executor import ExecutionResult, Executor
from rootgraph.remediate.outcome import OutcomeJudge, submit_outcome
from rootgraph.remediate.policy import Policy, load_policy
from rootgraph.remediate.proposal import Learned, Proposal, choose_action, make_proposal
from rootgraph.remediate.steps import DecisionError, ProposalState, decide, proposal_states, step

__all__ = ["Remediator", "Record"]

log = logging.getLogger("rootgraph.remediate")

#: Longest a waiting worker goes without re-reading its proposal's steps.
_POLL_S = 2.0
#: Events kept per incident for workers that are behind.
_KEEP_EVENTS = 1000


class _Stopped(Exception):
    """The daemon is stopping: leave the proposal as the server has it (no expiry, no
    outcome guessed); a restarted daemon picks it up on the incident's next event."""


@dataclass
class Record:
    """What happened to one proposal (for the demo, the bench and logs)."""

    proposal: Proposal
    posted_after_s: float = 0.0      # incident event committed -> proposal posted
    decision: str = ""               # approved | denied | expired
    decided_by: str = ""
    policy_version: str = ""
    execution: ExecutionResult | None = None
    outcome: str = ""
    feedback_created: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class Notifier:
    """Posts to whichever webhooks are configured; a failed post is logged, not fatal."""

    def __init__(self, settings: RemediateSettings, post: Callable[[str, dict], None]) -> None:
        self._slack, self._teams, self._post = settings.slack_webhook_url, settings.teams_webhook_url, post

    def proposal(self, p: Proposal) -> None:
        self._send(slack_message(p), teams_message(p))

    def text(self, text: str) -> None:
        self._send(slack_text(text), teams_text(text))

    def _send(self, slack: dict, teams: dict) -> None:
        for url, body, name in ((self._slack, slack, "slack"), (self._teams, teams, "teams")):
            if url:
                try:
                    self._post(url, body)
                except ChatError as exc:
                    log.warning("%s webhook: %s", name, exc)


class Remediator:
    """The daemon. ``connect`` makes a client (one for calls, one per watch connection)."""

    def __init__(self, settings: RemediateSettings, connect: Callable[[], RootGraphClient], *,
                 post: Callable[[str, dict], None] = post_json, clock: Callable[[], float] = time.time) -> None:
        if not settings.allowed_actions:
            raise ConfigError("allowed_actions: empty, so nothing would ever be proposed; allow an action kind "
                              "and give its executor template")
        self.settings = settings
        self._connect, self._clock = connect, clock
        self._client = connect()
        self._executor = Executor(settings.executor, settings.allowed_actions, dry_run=settings.dry_run,
                                  max_concurrent=settings.max_concurrent, timeout_s=settings.command_timeout_s,
                                  tail_bytes=settings.output_tail_bytes)
        self._policy: Policy | None = load_policy(settings.policy_file) if settings.policy_file else None
        self._notify = Notifier(settings, post)
        self._cond = threading.Condition()
        self._events: dict[str, list[IncidentEvent]] = {}
        self._active: set[str] = set()
        self._stop = threading.Event()
        self._watch_client: RootGraphClient | None = None
        self._threads: list[threading.Thread] = []
        self.records: list[Record] = []

    @property
    def client(self) -> RootGraphClient:
        """The daemon's client for unary calls (the Slack callback records decisions with it)."""
        return self._client

    # -- the watch ---------------------------------------------------------------------

    def start(self, *, after_seq: int | None = None) -> "Remediator":
        t = threading.Thread(target=self.run, kwargs={"after_seq": after_seq}, name="remediate-watch", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def run(self, *, after_seq: int | None = None) -> None:
        """Watch until :meth:`stop`: events after ``after_seq``, or (None) only from now on --
        replaying old OPENED events would propose actions on incidents long over."""
        cursor = after_seq
        while not self._stop.is_set():
            self._watch_client = self._connect()
            try:
                for e in self._watch_client.watch_incidents(after_seq=cursor or 0, only_new=cursor is None):
                    cursor = e.seq
                    self.handle(e)
            except grpc.RpcError as exc:
                if self._stop.is_set():
                    break
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):  # type: ignore[attr-defined]
                    log.error("watch failed: %s", exc)
                self._stop.wait(1.0)  # server restarting: resume from the cursor
            finally:
                self._watch_client.close()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._watch_client is not None:
            self._watch_client.close()  # ends the blocking stream
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout_s)
        self._client.close()

    def handle(self, e: IncidentEvent) -> None:
        """One event: wake the worker of its incident, or start one for a new incident."""
        with self._cond:
            evs = self._events.setdefault(e.incident_id, [])
            evs.append(e)
            del evs[:-_KEEP_EVENTS]
            self._cond.notify_all()
            start = e.kind in ("opened", "updated") and e.incident_id not in self._active
            if start:
                self._active.add(e.incident_id)
        if start:
            t = threading.Thread(target=self._work, args=(e,), name=f"remediate-{e.incident_id}", daemon=True)
            t.start()
            self._threads.append(t)

    # -- one incident ------------------------------------------------------------------

    def _work(self, e: IncidentEvent) -> None:
        try:
            self._lifecycle(e)
        except _Stopped:
            pass
        except Exception:  # noqa: BLE001 - one incident's failure must not stop the daemon
            log.exception("remediation of incident %s failed", e.incident_id)
        finally:
            with self._cond:
                self._active.discard(e.incident_id)

    def _lifecycle(self, e: IncidentEvent) -> None:
        s = self.settings
        chosen = choose_action(e.ranking, s.allowed_actions)
        if chosen is None:
            return
        cause, action = chosen
        blast = self._client.blast_radius(cause.entity, fault_kind=cause.fault_kind, fault_size=cause.fault_size)
        p = make_proposal(e.ranking, cause, action, blast, committed_s=e.committed_s,
                          deadline_s=self._clock() + s.decision_timeout_s)
        created = self._record("proposed", p, actor=s.actor, detail=p.to_json())
        if not created:
            state = self._state(p)
            if state is None or not state.open:
                return  # proposed and decided before (an UPDATED event, or a restart)
            p = _proposal_from(state, p)
        rec = Record(p)
        self.records.append(rec)
        try:
            if created:
                self._notify.proposal(p)
                rec.posted_after_s = self._clock() - e.committed_s
                log.info("proposed %s on incident %s (%.2fs after the event)", p.summary(), p.incident_id,
                         rec.posted_after_s)
                self._maybe_auto_approve(p)
            state = self._await_decision(p)
            d = state.decision
            rec.decision = d.kind
            rec.decided_by, rec.policy_version = d.actor, d.policy_version
            if d.kind != "approved":
                self._notify.text(f"{p.action} {p.target} (incident {p.incident_id}): {rec.decision}"
                                  + (f" by {d.actor}" if d.kind == "denied" else
                                     f": no decision within {s.decision_timeout_s:g}s, nothing ran"))
                return
            self._execute(p, rec, d.policy_version)
        finally:
            rec.done.set()

    def _maybe_auto_approve(self, p: Proposal) -> None:
        if self._policy is None:
            return
        why = self._policy.allows(p)
        if not why:
            return
        try:
            decide(self._client, p.incident_id, approve=True, actor=f"policy:{self._policy.ref}",
                   proposal_id=p.proposal_id, detail=why, policy_version=self._policy.ref)
            log.info("auto-approved by %s", why)
        except DecisionError as exc:
            log.info("policy approval not recorded: %s", exc)

    def _await_decision(self, p: Proposal) -> ProposalState:
        """Until a decision is recorded, or the deadline: then EXPIRED is recorded."""
        while True:
            state = self._state(p)
            if state is not None and not state.open:
                return state
            if self._stop.is_set():
                raise _Stopped
            left = p.deadline_s - self._clock()
            if left <= 0:
                try:
                    self._record("expired", p, actor=self.settings.actor,
                                 detail=f"no decision within {self.settings.decision_timeout_s:g}s")
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:  # type: ignore[attr-defined]
                        raise
                    # a decision landed just before the deadline: it stands, read it again
                continue
            self._wait_event(p.incident_id, min(left, _POLL_S))

    def _execute(self, p: Proposal, rec: Record, policy_version: str) -> None:
        s = self.settings
        with self._cond:
            seen = len(self._events.get(p.incident_id, ()))
            ref_bucket = max((ev.bucket_s for ev in self._events.get(p.incident_id, ()) if ev.kind), default=0.0)
        result = self._executor.run(p)
        rec.execution = result
        detail = json.dumps({"argv": list(result.argv), "error": result.error, "output_tail": result.output_tail})
        self._record("executed", p, actor=s.actor, detail=detail, policy_version=policy_version,
                     exit_status=result.exit_status, dry_run=result.dry_run)
        if not result.ok:
            log.warning("%s %s FAILED: %s", p.action, p.target, result.error)
            self._notify.text(f"{p.action} {p.target} (incident {p.incident_id}) FAILED: {result.error}")
            return
        if result.dry_run:
            self._notify.text(f"{p.action} {p.target} (incident {p.incident_id}) approved; dry run, not run: "
                              f"{' '.join(result.argv)}")
            return
        self._notify.text(f"{p.action} {p.target} (incident {p.incident_id}) executed, exit status 0")
        outcome = self._await_outcome(p, seen, ref_bucket)
        rec.outcome = outcome
        self._record("outcome", p, actor=s.actor, policy_version=policy_version,
                     outcome=outcome,
                     detail=f"judged over {s.outcome_buckets} buckets after the execution")
        rec.feedback_created = submit_outcome(self._client, p, outcome, approved_by=rec.decided_by)
        self._notify.text(f"{p.action} {p.target} (incident {p.incident_id}): outcome {outcome}")

    def _await_outcome(self, p: Proposal, seen: int, ref_bucket: float) -> str:
        s = self.settings
        judge = OutcomeJudge(p.incident_id, ref_bucket, s.outcome_buckets, s.bucket_seconds)
        deadline = self._clock() + s.outcome_wait_s
        while True:
            with self._cond:
                new = self._events.get(p.incident_id, [])[seen:]
                seen += len(new)
            for ev in new:
                verdict = judge.observe(ev)
                if verdict:
                    return verdict
            if self._stop.is_set():
                raise _Stopped
            left = deadline - self._clock()
            if left <= 0:
                return "not_resolved"
            self._wait_event(p.incident_id, min(left, _POLL_S), seen)

    # -- helpers -----------------------------------------------------------------------

    def _wait_event(self, incident_id: str, timeout_s: float, seen: int | None = None) -> None:
        with self._cond:
            n = len(self._events.get(incident_id, ())) if seen is None else seen
            self._cond.wait_for(lambda: self._stop.is_set() or len(self._events.get(incident_id, ())) > n,
                                timeout=timeout_s)

    def _state(self, p: Proposal) -> ProposalState | None:
        return proposal_states(self._client.remediation_steps(p.incident_id)).get(p.proposal_id)

    def _record(self, kind: str, p: Proposal, *, actor: str, detail: str = "", policy_version: str = "",
                exit_status: int = 0, dry_run: bool = False, outcome: str = "unspecified") -> bool:
        return self._client.record_remediation_step(step(
            kind, incident_id=p.incident_id, proposal_id=p.proposal_id, action=p.action, target=p.target,
            actor=actor, detail=detail, policy_version=policy_version, exit_status=exit_status, dry_run=dry_run,
            outcome=outcome))


def _proposal_from(state: ProposalState, fallback: Proposal) -> Proposal:
    """The proposal as first recorded (its deadline stands across a restart)."""
    try:
        doc = json.loads(state.proposed.detail)
        doc["evidence"] = tuple(doc["evidence"])
        doc["blast_impacts"] = tuple(tuple(x) for x in doc["blast_impacts"])
        doc["learned"] = Learned(**doc["learned"]) if doc.get("learned") else None
        return Proposal(**doc)
    except (ValueError, KeyError, TypeError):
        return fallback
