"""What-if blast radius."""

from __future__ import annotations

import warnings

import pytest
from pgmpy.inference import VariableElimination

from rootgraph.inference import InvalidArgument, UnknownEntity, blast_radius, whatif_model
from rootgraph.inference.blast import sample_anomalies
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


def test_db_blast_reaches_callers_transitively_with_decreasing_probability():
    b = blast_radius(chain_window(), "db:postgresql/main")
    by = {i.entity: i for i in b.impacts}
    assert set(by) == {"db:postgresql/main", "orders", "billing", "api", "web"}
    assert by["orders"].hops == 1 and by["api"].hops == 2 and by["web"].hops == 3
    assert by["web"].path == ("db:postgresql/main", "billing", "api", "web")
    assert by["db:postgresql/main"].probability > by["orders"].probability > by["web"].probability
    assert by["api"].probability > by["web"].probability
    assert 0.0 < b.entry_traffic_share_affected <= 1.0
    assert by["web"].traffic_share == pytest.approx(0.8 * by["web"].probability, rel=0.02)
    assert "search" not in by


def test_sampler_matches_exact_pgmpy_ve_with_the_fault_clamped():
    model = whatif_model(chain_window())
    got = sample_anomalies(model, "F|db:postgresql/main", samples=4000, seed=1)
    ve = VariableElimination(model.to_pgmpy())
    for k in ("orders", "api", "web"):
        exact = float(ve.query([f"A|{k}"], evidence={"F|db:postgresql/main": 1}, show_progress=False).values[1])
        # 4,000 Bernoulli samples: standard error <= 0.0079; 0.035 is ~4.4 sigma.
        assert got[k] == pytest.approx(exact, abs=0.035), k


def test_what_if_works_for_a_healthy_service_and_for_a_host():
    data = chain_window()
    api = blast_radius(data, "api")
    assert {i.entity for i in api.impacts} == {"api", "web"}
    host = blast_radius(data, "host:h1")
    by = {i.entity: i for i in host.impacts}
    assert by["host:h1"].hops == 0 and by["orders"].hops == 1 and by["orders"].path == ("host:h1", "orders")
    assert by["orders"].probability > 0.8


def test_blast_radius_rejects_unknown_entities_and_fault_kinds():
    data = chain_window()
    with pytest.raises(UnknownEntity):
        blast_radius(data, "nope")
    with pytest.raises(InvalidArgument, match="fault_kind"):
        blast_radius(data, "api", fault_kind="meteor")
    assert blast_radius(data, "api", fault_kind="latency").entity == "api"


def test_blast_radius_is_deterministic_for_a_fixed_seed():
    model = whatif_model(chain_window())
    assert blast_radius(model, "orders") == blast_radius(model, "orders")


def test_whatif_network_from_traffic_totals_equals_the_one_from_full_scoring():
    """``score_traffic`` is a shortcut, not a different model: same what-if network."""
    from rootgraph.inference.evidence import score_traffic, score_window
    from rootgraph.inference.model import build_model
    from rootgraph.inference.synthetic import generate_incident

    for seed in (1, 2):
        window, _ = generate_incident(80, seed=seed)
        full = build_model(score_window(window), whatif=True)
        fast = build_model(score_traffic(window), whatif=True)
        assert fast.nodes == full.nodes and fast.strengths == full.strengths
        assert fast.priors == full.priors and fast.entry_share == full.entry_share
