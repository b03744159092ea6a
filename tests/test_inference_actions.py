"""Suggested actions rest on the cause's own evidence (issue 13, finding 5).

A rollback bot acts on ``suggested_actions`` of whatever cause it is given, so an
implausible candidate suggests nothing, a rollback needs a deployment before onset, a
failover a backend that is seen failing. Pure logic on hand-built windows.
"""

from __future__ import annotations

import warnings

from rootgraph.inference import ActionKind, RootCauseRanker
from rootgraph.inference.synthetic import Profile, WindowBuilder
from rootgraph.results import is_plausible

warnings.filterwarnings("ignore", category=FutureWarning)

BASE = Profile(rpm=100)
PROPAGATED = BASE.with_(error_rate=0.4, exclusive_rate=0.002)
ORIGIN = BASE.with_(error_rate=0.4, exclusive_rate=0.4)


def _kinds(cause) -> list[ActionKind]:  # noqa: ANN001
    return [a.kind for a in cause.suggested_actions]


def _payments_incident(deploy_minutes_before_incident: float, onset_minute: int = 1) -> WindowBuilder:
    wb = WindowBuilder()
    wb.serve("frontend", BASE, PROPAGATED, onset_minute=onset_minute).call("user", "frontend", BASE)
    wb.serve("payments", BASE, ORIGIN, onset_minute=onset_minute)
    wb.call("frontend", "payments", BASE, BASE.with_(error_rate=0.4), onset_minute=onset_minute)
    wb.serve("search", BASE).call("frontend", "search", BASE)
    wb.call("search", "db:postgresql/search", BASE)
    wb.deploy("payments", "1.4.2", deploy_minutes_before_incident, previous="1.4.1")
    return wb


def test_implausible_candidates_suggest_nothing_even_with_a_deployment() -> None:
    wb = _payments_incident(2)
    wb.deploy("search", "3.1.0", 3, previous="3.0.9")  # the decoy: deployed, but healthy
    r = RootCauseRanker().rank(wb.build(), top_k=10)
    top = r.causes[0]
    assert top.entity == "payments" and _kinds(top)[0] == ActionKind.ROLLBACK
    rest = [c for c in r.causes if not is_plausible(c.probability, top.probability)]
    assert {c.entity for c in rest} >= {"search", "db:postgresql/search"}
    assert all(c.suggested_actions == () for c in rest)
    assert all(c.suggested_actions for c in r.causes if c not in rest)


def test_a_deployment_after_onset_earns_no_rollback() -> None:
    # Onset at minute 1 of the incident; deployed at minute 4 (``-4`` minutes before it).
    r = RootCauseRanker().rank(_payments_incident(-4).build())
    top = r.causes[0]
    # A change after the symptom began cannot have caused it (issue 14): it is no
    # evidence for the cause, so nothing to roll back.
    assert top.entity == "payments" and not top.deployments
    assert "deployed" not in top.explanation
    assert ActionKind.ROLLBACK not in _kinds(top)
    assert _kinds(top) == [ActionKind.INVESTIGATE]


def test_a_deployment_inside_the_onset_bucket_counts_as_before_onset() -> None:
    # Deployed 30 s into the onset minute: the bucket starts before the deployment, the
    # first failing request need not.
    r = RootCauseRanker().rank(_payments_incident(-1.5).build())
    assert _kinds(r.causes[0])[0] == ActionKind.ROLLBACK


def test_failover_only_for_a_backend_seen_failing() -> None:
    wb = WindowBuilder()
    for s in ("orders", "billing"):
        wb.serve(s, BASE, PROPAGATED)
        wb.call(s, "db:postgresql/orders", BASE, BASE.with_(error_rate=0.4))
        wb.call("user", s, BASE)
    wb.serve("catalogue", BASE).call("user", "catalogue", BASE)
    wb.call("catalogue", "db:mongodb/catalogue", BASE)  # healthy backend
    r = RootCauseRanker().rank(wb.build(), top_k=10)
    by = {c.entity: c for c in r.causes}
    assert _kinds(by["db:postgresql/orders"])[0] == ActionKind.FAILOVER
    healthy = by.get("db:mongodb/catalogue")
    assert healthy is not None and ActionKind.FAILOVER not in _kinds(healthy)
