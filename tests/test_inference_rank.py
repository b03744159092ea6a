"""Behaviour of RootCauseRanker on small hand-built incidents (issue 4)."""

from __future__ import annotations

import warnings

import pytest

from rootgraph.graph.records import BucketRow, EntityKind
from rootgraph.inference import ActionKind, InvalidArgument, RootCauseRanker, UnknownEntity
from rootgraph.inference.explain import observed_fault
from rootgraph.inference.results import EvidenceItem
from rootgraph.inference.synthetic import Profile, WindowBuilder, generate_incident

warnings.filterwarnings("ignore", category=FutureWarning)

BASE = Profile(rpm=100)
PROPAGATED = BASE.with_(error_rate=0.4, exclusive_rate=0.002)
ORIGIN = BASE.with_(error_rate=0.4, exclusive_rate=0.4)


def rank(data, **kw):
    return RootCauseRanker().rank(data, **kw)


def test_database_fault_behind_several_services_ranks_the_database_first():
    wb = WindowBuilder()
    for s in ("orders", "billing", "shipping"):
        wb.serve(s, BASE, PROPAGATED)
        wb.call(s, "db:postgresql/orders", BASE, BASE.with_(error_rate=0.4))
        wb.call("user", s, BASE)
    r = rank(wb.build())
    assert r.causes[0].entity == "db:postgresql/orders"
    assert r.causes[0].probability > 0.8 and not r.no_clear_cause
    top = r.causes[0]
    assert any("error rate" in e.text and "baseline" in e.text for e in top.evidence)
    assert ("db:postgresql/orders", "orders") in top.paths
    assert top.fault_kind == "errors"  # from its callers' edges: what BlastRadius is asked next
    assert top.fault_size == pytest.approx(0.4, abs=0.08)
    assert top.suggested_actions[0].kind == ActionKind.FAILOVER
    assert any("no exclusive errors" in n and "db:postgresql/orders" in n for n in r.notes)


def test_fault_hidden_by_a_callers_fallback_still_ranks_the_callee():
    wb = WindowBuilder()
    wb.serve("checkout", BASE).call("user", "checkout", BASE)
    wb.serve("recommendations", Profile(rpm=50), Profile(rpm=50, error_rate=0.6, exclusive_rate=0.6))
    wb.call("checkout", "recommendations", Profile(rpm=50), Profile(rpm=50, error_rate=0.6))
    r = rank(wb.build())
    assert r.causes[0].entity == "recommendations"
    assert r.causes[0].probability > 0.5


def test_uninstrumented_external_behind_a_fallback_still_ranks_first():
    wb = WindowBuilder()
    wb.serve("checkout", BASE).call("user", "checkout", BASE)
    wb.serve("cart", BASE).call("user", "cart", BASE)
    for s in ("checkout", "cart"):
        wb.call(s, "ext:api.stripe.com", Profile(rpm=40), Profile(rpm=40, error_rate=0.7))
    r = rank(wb.build())
    assert r.causes[0].entity == "ext:api.stripe.com"
    assert r.causes[0].probability > r.causes[1].probability + 0.3


def test_decoy_deployment_on_a_healthy_service_does_not_outrank_the_real_fault():
    wb = WindowBuilder()
    wb.serve("frontend", BASE, PROPAGATED).call("user", "frontend", BASE)
    wb.serve("payments", BASE, ORIGIN)
    wb.call("frontend", "payments", BASE, BASE.with_(error_rate=0.4))
    wb.serve("search", BASE).call("frontend", "search", BASE)
    wb.deploy("search", "3.1.0", 3, previous="3.0.9")
    r = rank(wb.build())
    assert r.causes[0].entity == "payments"
    post = r.all_posteriors
    assert post["search"] < 0.05 < post["payments"]


def test_recent_deployment_on_the_cause_suggests_a_rollback_with_figures():
    wb = WindowBuilder()
    wb.serve("frontend", BASE, PROPAGATED).call("user", "frontend", BASE)
    wb.serve("payments", BASE, ORIGIN, onset_minute=1)
    wb.call("frontend", "payments", BASE, BASE.with_(error_rate=0.4), onset_minute=1)
    wb.deploy("payments", "1.4.2", 2, previous="1.4.1")
    r = rank(wb.build())
    top = r.causes[0]
    assert top.entity == "payments" and top.deployments[0].version == "1.4.2"
    assert top.suggested_actions[0].kind == ActionKind.ROLLBACK
    assert top.suggested_actions[0].to_version == "1.4.1"
    texts = [e.text for e in top.evidence]
    assert any(t.startswith("deployed 1.4.2") and "minutes before onset" in t for t in texts)
    assert any(t.endswith("exclusive") for t in texts)
    assert top.paths == (("payments", "frontend"),)


def test_host_fault_with_self_time_up_on_several_services_ranks_the_host():
    wb = WindowBuilder()
    slow = BASE.with_(latency_ms=120, self_ms=100)
    for s in ("a", "b", "c"):
        wb.serve(s, BASE, slow).call("user", s, BASE).runs_on(s, "host:h1")
    wb.serve("d", BASE).call("user", "d", BASE).runs_on("d", "host:h2")
    r = rank(wb.build())
    assert r.causes[0].entity == "host:h1" and r.causes[0].kind == "host"
    assert r.causes[0].fault_kind == "saturation"
    assert {p[-1] for p in r.causes[0].paths} == {"a", "b", "c"}
    assert {a.kind for a in r.causes[0].suggested_actions} >= {ActionKind.RESTART, ActionKind.SCALE}


def test_leaf_error_burst_propagating_to_three_callers_ranks_the_leaf():
    wb = WindowBuilder()
    wb.serve("leaf", BASE, ORIGIN)
    for s in ("x", "y", "z"):
        wb.serve(s, BASE, PROPAGATED).call(s, "leaf", BASE, BASE.with_(error_rate=0.4))
        wb.call("user", s, BASE)
    r = rank(wb.build())
    assert r.causes[0].entity == "leaf"
    assert {p[-1] for p in r.causes[0].paths} == {"x", "y", "z"}


def test_no_anomaly_is_no_clear_cause():
    wb = WindowBuilder()
    wb.serve("a", BASE).serve("b", BASE).call("a", "b", BASE).call("user", "a", BASE)
    r = rank(wb.build())
    assert r.no_clear_cause and r.causes == () and r.symptoms == ()
    assert r.model_version == "prior-v1" and set(r.all_posteriors) == {"a", "b"}


def test_low_traffic_two_of_three_errors_is_weaker_than_two_hundred_of_three_hundred():
    def window(requests: int, errors: int):
        # one-minute incident window: exactly `errors` of `requests` fail, exclusively
        wb = WindowBuilder(incident_minutes=1, seed=11)
        wb.serve("svc", Profile(rpm=requests, error_rate=0.0))
        rows = list(wb.service_buckets["svc"])
        rows = [r for r in rows if r.start_s < wb.incident_start]
        h = rows[0].histogram
        rows.append(BucketRow(wb.incident_start, requests, errors, 20.0 * requests, 6.0 * requests, errors, h))
        wb.service_buckets["svc"] = tuple(rows)
        return wb.build()

    weak = rank(window(3, 2))
    strong = rank(window(300, 200))
    w_items = [e for e in weak.causes[0].evidence if e.signal == "error_rate"]
    s_items = [e for e in strong.causes[0].evidence if e.signal == "error_rate"]
    assert s_items and s_items[0].score == pytest.approx(1.0)
    assert not w_items or w_items[0].score < 0.6
    assert weak.all_posteriors["svc"] < strong.all_posteriors["svc"]


def test_named_symptom_is_honoured_and_unknown_symptom_is_rejected():
    wb = WindowBuilder()
    wb.serve("a", BASE).call("user", "a", BASE)
    data = wb.build()
    r = rank(data, symptoms=["a"])
    assert r.symptoms == ("a",) and r.causes[0].entity == "a"
    with pytest.raises(UnknownEntity) as e:
        rank(data, symptoms=["nope"])
    assert "symptoms" in str(e.value)


@pytest.mark.parametrize("top_k", [0, -1, 1.5, True])
def test_top_k_must_be_a_positive_integer(top_k):
    wb = WindowBuilder()
    wb.serve("a", BASE)
    with pytest.raises(InvalidArgument, match="top_k"):
        rank(wb.build(), top_k=top_k)


def test_top_k_limits_the_causes_and_ties_share_a_rank():
    wb = WindowBuilder()
    for s in ("p", "q", "r"):
        wb.serve(s, BASE)
    r = rank(wb.build(), symptoms=["p"], top_k=2)
    assert len(r.causes) == 2
    # q and r are indistinguishable: same posterior, same rank
    assert r.causes[1].rank == 2
    r3 = rank(wb.build(), symptoms=["p"], top_k=3)
    assert r3.causes[1].rank == r3.causes[2].rank


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_incident_ranks_the_injected_root_in_the_top_three(seed):
    data, root = generate_incident(50, seed=seed)
    r = rank(data, top_k=3)
    assert root in [c.entity for c in r.causes]


def test_a_cause_reports_the_fault_kind_its_own_evidence_shows():
    wb = WindowBuilder()
    wb.serve("front", BASE).call("user", "front", BASE)
    wb.serve("slow", BASE, BASE.with_(latency_ms=400, self_ms=380))
    wb.call("front", "slow", BASE, BASE.with_(latency_ms=400))
    r = rank(wb.build())
    assert r.causes[0].entity == "slow" and r.causes[0].fault_kind == "latency"
    assert r.causes[0].fault_size == pytest.approx(380 - 6, rel=0.15)  # self time 380 ms vs 6 ms baseline
    quiet = [c for c in r.causes if not any(i.entity == c.entity and i.signal != "deployment" for i in c.evidence)]
    assert all(c.fault_kind is None for c in quiet)  # no own evidence: kind unknown


def test_observed_fault_picks_the_stronger_detector_and_reads_its_size():
    def item(signal: str, score: float, observed: float = 1.0, baseline: float = 0.0) -> EvidenceItem:
        return EvidenceItem("x", signal, observed, baseline, score, signal)

    svc, db, host = EntityKind.SERVICE, EntityKind.DATABASE, EntityKind.HOST
    # kind: the stronger detector, errors on a tie; none without own evidence
    assert observed_fault(svc, (item("error_rate", 0.6, 0.3, 0.01), item("latency_p95", 0.9, 500, 100))) \
        == ("latency", 400)
    assert observed_fault(svc, (item("self_time", 0.7, 9, 3), item("exclusive_errors", 0.7, 0.2, 0.0)))[0] == "errors"
    assert observed_fault(svc, (item("deployment", 1.0), item("traffic", 0.9))) == (None, 0.0)
    # size: the error share added; for a backend, on its callers' calls
    assert observed_fault(db, (item("a\u2192db:x error_rate", 0.5, 0.42, 0.02),)) == ("errors", pytest.approx(0.4))
    # latency: self time (a mean) before p95 before p99, whatever their scores
    assert observed_fault(svc, (item("latency_p99", 0.9, 900, 100), item("latency_p95", 0.8, 400, 100),
                                item("self_time", 0.5, 130, 10))) == ("latency", 120)
    assert observed_fault(svc, (item("latency_p99", 0.9, 900, 100), item("latency_p95", 0.8, 400, 100))) \
        == ("latency", 300)
    # saturation: the median self-time factor of the hosted services
    assert observed_fault(host, (item("self_time", 0.8, 30, 10), item("self_time", 0.8, 40, 10),
                                 item("self_time", 0.8, 50, 10), item("latency_p95", 0.9, 200, 50))) \
        == ("saturation", 4.0)
    assert observed_fault(host, (item("self_time", 0.8, 30, 10), item("self_time", 0.8, 50, 10))) \
        == ("saturation", 4.0)  # the median of an even count: the mean of the middle two
    assert observed_fault(host, (item("latency_p95", 0.9, 200, 50),)) == ("saturation", 0.0)
    assert observed_fault(host, (item("exclusive_errors", 0.9, 0.3, 0.0),)) == ("errors", pytest.approx(0.3))
    assert observed_fault(host, ()) == (None, 0.0)
