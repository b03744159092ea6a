"""What-if blast radius: visible impact of a fault, propagated as magnitudes."""

from __future__ import annotations

import warnings

import pytest

from rootgraph.inference import InvalidArgument, UnknownEntity, blast_radius, whatif_model
from rootgraph.inference.blast import WhatIfConfig, impact_probabilities, traffic_totals
from rootgraph.inference.evidence import score_window
from rootgraph.inference.faults import FaultKind
from rootgraph.inference.network import build_model
from rootgraph.inference.synthetic import Profile, WindowBuilder

warnings.filterwarnings("ignore", category=FutureWarning)


def chain_window():
    """user -> web -> api -> {orders, billing} -> db; plus an unrelated search service."""
    wb = WindowBuilder()
    wb.serve("web", Profile(rpm=100)).call("user", "web", Profile(rpm=80))
    wb.serve("search", Profile(rpm=20)).call("user", "search", Profile(rpm=20))
    wb.serve("api", Profile(rpm=100)).call("web", "api", Profile(rpm=100))
    for s in ("orders", "billing"):
        wb.serve(s, Profile(rpm=50)).call("api", s, Profile(rpm=50))
        wb.call(s, "db:postgresql/main", Profile(rpm=50))
    wb.runs_on("orders", "host:h1").runs_on("billing", "host:h1")
    return wb.build()


def probs(data, entity, kind=None, **cfg):
    model = whatif_model(data, config=WhatIfConfig(**cfg) if cfg else None)
    return impact_probabilities(model, entity, kind, WhatIfConfig(**cfg) if cfg else None)


def test_db_blast_reaches_callers_transitively():
    b = blast_radius(chain_window(), "db:postgresql/main")
    by = {i.entity: i for i in b.impacts}
    assert set(by) == {"db:postgresql/main", "orders", "billing", "api", "web"}
    assert by["orders"].hops == 1 and by["api"].hops == 2 and by["web"].hops == 3
    assert by["web"].path == ("db:postgresql/main", "billing", "api", "web")
    assert by["db:postgresql/main"].probability == 1.0
    # every request of every caller touches the database: any error/latency fault shows
    assert all(by[k].probability > 0.9 for k in ("orders", "billing", "api", "web"))
    assert 0.0 < b.entry_traffic_share_affected <= 1.0
    assert by["web"].traffic_share == pytest.approx(0.8 * by["web"].probability, rel=0.02)
    assert "search" not in by


def fanout_window(share: float, caller_latency_ms: float = 20.0, caller_rpm: float = 100.0):
    """gw -> {a, b}; a calls leaf on ``share`` of its requests; b always calls leaf."""
    wb = WindowBuilder(baseline_minutes=45)
    wb.serve("gw", Profile(rpm=caller_rpm, latency_ms=caller_latency_ms)).call("user", "gw", Profile(rpm=caller_rpm))
    wb.serve("a", Profile(rpm=caller_rpm, latency_ms=caller_latency_ms))
    wb.call("gw", "a", Profile(rpm=caller_rpm))
    wb.serve("leaf", Profile(rpm=caller_rpm * share + 10, latency_ms=5.0))
    wb.call("a", "leaf", Profile(rpm=caller_rpm * share, latency_ms=5.0))
    wb.serve("b", Profile(rpm=10, latency_ms=10.0)).call("b", "leaf", Profile(rpm=10, latency_ms=5.0))
    wb.call("user", "b", Profile(rpm=10))
    return wb.build()


def test_error_impact_grows_with_the_share_of_requests_that_touch_the_callee():
    """The link is "how much of the caller's work fails", not a fixed strength."""
    p = [probs(fanout_window(s), "leaf", FaultKind.ERRORS)["a"] for s in (0.01, 0.03, 0.1, 0.5)]
    assert p[0] < 0.05  # 1 % of requests x an error rate < 100 %: never >= 1 % of a's requests
    assert p[0] < p[1] < 0.5 < p[2] < p[3]
    assert p[3] > 0.95


def test_effects_attenuate_over_hops_instead_of_compounding_a_fixed_strength():
    """a sees 10 % of leaf's failures; gw calls a on every request: same 10 % at gw."""
    p = probs(fanout_window(0.1), "leaf", FaultKind.ERRORS)
    assert p["gw"] == pytest.approx(p["a"], abs=0.05)
    wb = WindowBuilder(baseline_minutes=45)  # two hops of 10 %: 1 % of the top at most
    wb.serve("top", Profile(rpm=1000)).call("user", "top", Profile(rpm=1000))
    wb.serve("mid", Profile(rpm=100)).call("top", "mid", Profile(rpm=100))
    wb.serve("leaf", Profile(rpm=10)).call("mid", "leaf", Profile(rpm=10))
    p = probs(wb.build(), "leaf", FaultKind.ERRORS)
    assert p["mid"] > 0.6 and p["top"] < 0.05


def test_a_caller_too_quiet_to_collect_five_fault_errors_is_not_impacted_by_errors():
    """1 call per 10 minutes: even a total outage gives ~1.5 errors per incident."""
    wb = WindowBuilder(baseline_minutes=45)
    wb.serve("busy", Profile(rpm=60)).call("busy", "db:redis/s", Profile(rpm=60))
    wb.serve("quiet", Profile(rpm=0.1)).call("quiet", "db:redis/s", Profile(rpm=0.1))
    p = probs(wb.build(), "db:redis/s", FaultKind.ERRORS)
    assert p["busy"] > 0.95 and p["quiet"] < 0.1
    p = probs(wb.build(), "db:redis/s", FaultKind.DOWN)
    assert p["busy"] == pytest.approx(1.0) and p["quiet"] < 0.2


def test_latency_impact_is_relative_to_the_callers_own_duration():
    """Half of a's requests wait for leaf: +delay/2 is visible on 20 ms long before 2 s."""
    fast = probs(fanout_window(0.5, caller_latency_ms=20.0), "leaf", FaultKind.LATENCY)["a"]
    slow = probs(fanout_window(0.5, caller_latency_ms=2000.0), "leaf", FaultKind.LATENCY)["a"]
    assert fast > 0.6 and slow < 0.1


def test_a_caller_that_swallows_callee_errors_passes_fewer_on():
    """History: leaf's errors reach the caller's edge but never the caller's own status."""
    def window(fallback: bool):
        wb = WindowBuilder(baseline_minutes=45)
        caller = Profile(rpm=100, error_rate=0.0) if fallback else Profile(rpm=100, error_rate=0.03,
                                                                               exclusive_rate=0.0)
        wb.serve("c", caller).call("user", "c", Profile(rpm=100))
        wb.serve("leaf", Profile(rpm=30, error_rate=0.03)).call("c", "leaf", Profile(rpm=30, error_rate=0.03))
        return wb.build()

    t_pass, t_swallow = traffic_totals(window(False)), traffic_totals(window(True))
    assert t_pass.passthrough["c"] > 0.9 and t_swallow.passthrough["c"] < 0.3
    assert probs(window(True), "leaf", FaultKind.ERRORS)["c"] < probs(window(False), "leaf", FaultKind.ERRORS)["c"]


def test_async_consumers_do_not_impact_their_producer():
    wb = WindowBuilder(baseline_minutes=45)
    wb.serve("producer", Profile(rpm=60)).call("user", "producer", Profile(rpm=60))
    wb.serve("consumer", Profile(rpm=60)).call("producer", "consumer", Profile(rpm=60), is_async=True)
    b = blast_radius(wb.build(), "consumer")
    assert {i.entity for i in b.impacts} == {"consumer"}


def test_a_queue_fault_reaches_the_producer_but_not_the_consumers():
    """The publish is synchronous for the producer; the consumer never answers it."""
    wb = WindowBuilder(baseline_minutes=45)
    wb.serve("orders", Profile(rpm=60)).call("user", "orders", Profile(rpm=60))
    wb.call("orders", "queue:kafka/t", Profile(rpm=60, latency_ms=2.0), is_async=True)
    wb.serve("mailer", Profile(rpm=60)).call("orders", "mailer", Profile(rpm=60), is_async=True)
    b = blast_radius(wb.build(), "queue:kafka/t")
    by = {i.entity: i.probability for i in b.impacts}
    assert by["orders"] > 0.8 and "mailer" not in by
    assert probs(wb.build(), "queue:kafka/t", FaultKind.ERRORS)["orders"] > 0.95


def test_a_fault_travels_around_a_call_loop():
    """a calls b on every request, b calls a on a third of its requests: a cut edge
    would hide b, the fixed point does not (and the fault's own size is not inflated)."""
    wb = WindowBuilder(baseline_minutes=45)
    wb.serve("a", Profile(rpm=100)).call("user", "a", Profile(rpm=100))
    wb.serve("b", Profile(rpm=150)).call("a", "b", Profile(rpm=100)).call("user", "b", Profile(rpm=50))
    wb.call("b", "a", Profile(rpm=50))
    p = probs(wb.build(), "a", FaultKind.ERRORS)
    assert p["b"] > 0.6


def test_callers_whose_calls_do_not_reach_below_the_callee_are_not_exposed():
    """mid calls deep on half its requests (the slow ones); ``light`` only calls mid's
    cheap operation (its calls take mid's self time), ``heavy`` the slow one."""
    wb = WindowBuilder(baseline_minutes=45)
    wb.serve("mid", Profile(rpm=200, latency_ms=30.0, self_ms=5.0))
    wb.serve("deep", Profile(rpm=100, latency_ms=50.0)).call("mid", "deep", Profile(rpm=100, latency_ms=50.0))
    wb.serve("light", Profile(rpm=100, latency_ms=8.0)).call("light", "mid", Profile(rpm=100, latency_ms=5.5))
    wb.serve("heavy", Profile(rpm=100, latency_ms=60.0)).call("heavy", "mid", Profile(rpm=100, latency_ms=55.0))
    t = traffic_totals(wb.build())
    assert t.exposure[("light", "mid")] < 0.05 and t.exposure[("heavy", "mid")] > 1.5
    p = probs(wb.build(), "deep", FaultKind.ERRORS)
    assert p["heavy"] > 0.9 and p["light"] < 0.1


def test_host_saturation_shows_where_self_time_dominates():
    """Both services on the host; ``heavy`` spends its time in its own code, ``light``
    spends 95 % of it waiting on a remote callee, and ``gw`` calls ``heavy`` rarely."""
    wb = WindowBuilder(baseline_minutes=45)
    wb.serve("heavy", Profile(rpm=100, latency_ms=20.0, self_ms=18.0))
    wb.serve("light", Profile(rpm=100, latency_ms=200.0, self_ms=10.0))
    wb.serve("remote", Profile(rpm=100, latency_ms=190.0)).call("light", "remote", Profile(rpm=100, latency_ms=190.0))
    wb.serve("gw", Profile(rpm=1000, latency_ms=100.0)).call("gw", "heavy", Profile(rpm=100, latency_ms=20.0))
    wb.runs_on("heavy", "host:h").runs_on("light", "host:h")
    p = probs(wb.build(), "host:h")
    assert p["heavy"] > 0.95 and p["light"] < 0.5 and p["gw"] < 0.3
    assert "remote" not in p


def test_unknown_fault_kind_is_an_even_mixture_of_error_and_latency():
    data = fanout_window(0.1)
    mix = probs(data, "leaf")
    err, lat = probs(data, "leaf", FaultKind.ERRORS), probs(data, "leaf", FaultKind.LATENCY)
    for k in mix:
        assert mix[k] == pytest.approx((err[k] + lat[k]) / 2)


def test_what_if_works_for_a_healthy_service_and_for_a_host():
    data = chain_window()
    api = blast_radius(data, "api")
    assert {i.entity for i in api.impacts} == {"api", "web"}
    host = blast_radius(data, "host:h1")
    by = {i.entity: i for i in host.impacts}
    assert by["host:h1"].hops == 0 and by["orders"].hops == 1 and by["orders"].path == ("host:h1", "orders")
    assert by["host:h1"].probability == 1.0 and by["orders"].probability > 0.5


def test_blast_radius_rejects_unknown_entities_fault_kinds_and_ranking_networks():
    data = chain_window()
    with pytest.raises(UnknownEntity):
        blast_radius(data, "nope")
    with pytest.raises(InvalidArgument, match="fault_kind"):
        blast_radius(data, "api", fault_kind="meteor")
    assert blast_radius(data, "api", fault_kind="latency").entity == "api"  # its name works too
    with pytest.raises(InvalidArgument, match="window_or_model"):
        blast_radius(build_model(score_window(data)), "api")
    with pytest.raises(InvalidArgument, match="error_rate"):
        WhatIfConfig(error_rate=(0.5, 2.0))


def test_blast_radius_is_deterministic_and_the_model_is_reusable():
    model = whatif_model(chain_window())
    assert blast_radius(model, "orders") == blast_radius(model, "orders") == blast_radius(chain_window(), "orders")


def test_traffic_totals_read_rates_over_the_span_of_the_history():
    """A window of an hour with 45 minutes of data: rates over the 45 minutes."""
    wb = WindowBuilder(baseline_minutes=30, incident_minutes=15)
    wb.serve("s", Profile(rpm=60, latency_ms=40.0, self_ms=10.0)).call("s", "db:redis/x", Profile(rpm=120))
    t = traffic_totals(wb.build())
    assert t.span_s == 45 * 60
    assert t.requests["s"] / t.span_s * 60 == pytest.approx(60, rel=0.05)
    assert t.mean_ms["s"] == pytest.approx(40, rel=0.1) and t.self_ms["s"] == pytest.approx(10, rel=0.1)
    assert t.calls[("s", "db:redis/x")] == pytest.approx(2.0, rel=0.05)
    assert t.requests["db:redis/x"] == pytest.approx(2 * t.requests["s"], rel=0.05)


def test_whatif_model_candidates_hosts_and_entry_shares():
    """Every service, backend and machine with a service on it; no merging of host/node ids."""
    wb = WindowBuilder()
    wb.serve("web", Profile(rpm=90)).call("user", "web", Profile(rpm=90))
    wb.serve("admin", Profile(rpm=10)).call("user", "admin", Profile(rpm=10))
    wb.call("web", "db:redis/x", Profile(rpm=90))
    wb.runs_on("web", "host:m1").runs_on("web", "node:m1").runs_on("admin", "node:m1")
    model = whatif_model(wb.build())
    assert {k: v.value for k, v in model.candidates.items()} == {
        "web": "service", "admin": "service", "db:redis/x": "database", "host:m1": "host", "node:m1": "node"}
    assert model.hosts_of == {"web": ("host:m1", "node:m1"), "admin": ("node:m1",)}
    assert model.entry_share["web"] == pytest.approx(0.9, abs=0.02)
    assert sum(model.entry_share.values()) == pytest.approx(1.0)
    assert {i.entity for i in blast_radius(model, "node:m1").impacts} >= {"web", "admin"}


def test_an_observed_fault_size_replaces_the_prior_with_a_band_around_it():
    """a calls leaf on 10 % of its requests: a visible share (>= 1 %) needs leaf failing >= 10 %."""
    data = fanout_window(0.1)
    model = whatif_model(data)
    unknown = impact_probabilities(model, "leaf", FaultKind.ERRORS)["a"]
    small = impact_probabilities(model, "leaf", FaultKind.ERRORS, fault_size=0.02)["a"]  # 0.2-0.4 % of a fails
    big = impact_probabilities(model, "leaf", FaultKind.ERRORS, fault_size=0.6)["a"]  # 3-10 %
    assert small == 0.0 and big > 0.999 and 0.0 < unknown < 0.999
    # latency: a's mean is ~20 ms, 20 % more is ~4 ms; a's calls to leaf are 1 in 10
    assert impact_probabilities(model, "leaf", FaultKind.LATENCY, fault_size=5.0)["a"] == 0.0
    assert impact_probabilities(model, "leaf", FaultKind.LATENCY, fault_size=400.0)["a"] > 0.999
    # saturation of the service itself: a factor on its self time, banded around the slowdown
    assert impact_probabilities(model, "leaf", FaultKind.SATURATION, fault_size=1.01)["a"] == 0.0
    assert impact_probabilities(model, "leaf", FaultKind.SATURATION, fault_size=200.0)["a"] > 0.999
    # no kind: a size means nothing, the propagation ignores it and blast_radius refuses it
    assert impact_probabilities(model, "leaf", None, fault_size=0.3) == impact_probabilities(model, "leaf")
    for kind, size, why in ((None, 0.3, "needs a fault kind"), (FaultKind.DOWN, 0.3, "needs a fault kind"),
                            (FaultKind.ERRORS, 1.5, "failing share"), (FaultKind.SATURATION, 0.5, "slowdown factor"),
                            (FaultKind.LATENCY, -1.0, ">= 0"), (FaultKind.LATENCY, float("nan"), ">= 0")):
        with pytest.raises(InvalidArgument, match=why):
            blast_radius(model, "leaf", kind, fault_size=size)
    with pytest.raises(InvalidArgument, match="size_band"):
        WhatIfConfig(size_band=0.5)


def test_a_host_that_fails_takes_its_services_and_their_callers_with_it():
    """errors / latency / down on a host act on every service running on it."""
    data = chain_window()  # orders and billing run on host:h1
    for kind, size in ((FaultKind.DOWN, 0.0), (FaultKind.ERRORS, 0.5), (FaultKind.LATENCY, 500.0)):
        p = probs(data, "host:h1", kind) if not size else \
            impact_probabilities(whatif_model(data), "host:h1", kind, fault_size=size)
        assert p["orders"] > 0.99 and p["billing"] > 0.99 and p["api"] > 0.99, (kind, p)
        assert "search" not in p and "host:h1" not in p
    b = blast_radius(data, "host:h1", FaultKind.DOWN)
    assert b.entry_traffic_share_affected > 0.5  # web, behind api, is 80 % of entries
