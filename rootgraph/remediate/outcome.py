"""What an executed action achieved, judged from the incident's own events, and reported once.

After the command ran, the daemon reads the incident's ``WatchIncidents`` events:

* the incident is RESOLVED (the detector saw its symptoms clear) within ``K`` buckets of
  data time after the last bucket judged before the execution -> ``resolved``;
* an UPDATED event brings *new* symptoms first -> ``made_worse`` (the fault spread, or
  the action broke something else);
* neither within K buckets (or within K buckets of wall time, when no events come at
  all) -> ``not_resolved``.

Data time, not only the wall clock: an OTLP pipeline can run behind, and the detector's
verdict is about buckets. The result goes to ``SubmitFeedback`` with the feedback id
derived from the proposal (so a retried or restarted report is stored exactly once) and
the action's target as the confirmed cause: the cause a person approved acting on, which
is what the learner attributes the action's outcome to (``inference/learning.py``
``action_frame``). The note says whether the outcome confirmed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rootgraph.client import IncidentEvent
from rootgraph.remediate.proposal import Proposal

__all__ = ["FeedbackSink", "OutcomeJudge", "feedback_id", "submit_outcome"]


class FeedbackSink(Protocol):
    def submit_feedback(self, feedback_id: str, incident_id: str, *, confirmed_cause: str = "",
                        none_of_these: bool = False, action: str = "unspecified", outcome: str = "unspecified",
                        confirmed_by: str = "", note: str = "") -> bool: ...


@dataclass
class OutcomeJudge:
    """Feed it the incident's events after the execution; it answers once it knows."""

    incident_id: str
    #: The newest bucket (epoch s) judged for this incident before the command ran.
    reference_bucket_s: float
    buckets: int
    bucket_seconds: int

    def observe(self, e: IncidentEvent) -> str | None:
        """``resolved`` | ``made_worse`` | ``not_resolved`` once decided by ``e``, else None."""
        if e.incident_id != self.incident_id:
            return None
        late = e.bucket_s - self.reference_bucket_s > self.buckets * self.bucket_seconds
        if e.kind == "resolved":
            return "not_resolved" if late else "resolved"
        if e.kind == "updated" and e.new_symptoms and e.bucket_s > self.reference_bucket_s:
            return "not_resolved" if late else "made_worse"
        if e.kind in ("opened", "updated") and late:
            return "not_resolved"
        return None


def feedback_id(p: Proposal) -> str:
    return p.proposal_id + ".feedback"


def submit_outcome(client: FeedbackSink, p: Proposal, outcome: str, *, approved_by: str) -> bool:
    """Report the outcome (exactly once per proposal: the id is derived); True if new."""
    note = ("confirmed: the action resolved the incident" if outcome == "resolved"
            else f"the cause {approved_by} approved acting on; not confirmed: the action's outcome was {outcome}")
    return client.submit_feedback(feedback_id(p), p.incident_id, confirmed_cause=p.target, action=p.action,
                                  outcome=outcome, confirmed_by=approved_by, note=note)
