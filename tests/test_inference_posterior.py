"""Posterior engine vs independent computations.

Expected values come from our own brute-force enumeration of the joint (the noisy-OR
formula written out again here, no pgmpy) and from pgmpy VE over the whole network.
"""

from __future__ import annotations

import itertools
import math
import warnings

import networkx as nx
import numpy as np
import pytest
from pgmpy.inference import VariableElimination

from rootgraph.graph.records import EntityKind
from rootgraph.inference import posterior
from rootgraph.inference.evidence import score_window
from rootgraph.inference.network import ModelParams, build_model
from rootgraph.inference.posterior import compute_posteriors
from rootgraph.inference.synthetic import Profile, WindowBuilder

warnings.filterwarnings("ignore", category=FutureWarning)

BASE = Profile(rpm=100)
ERR = BASE.with_(error_rate=0.4, exclusive_rate=0.002)


def brute_force(model) -> dict[str, float]:
    """P(F|x = 1 | evidence) by enumerating every hidden configuration."""
    nodes = model.nodes
    hidden = [n for n, v in nodes.items() if v.observed is None]
    num = {n: 0.0 for n in hidden if n.startswith("F|")}
    z = 0.0
    for states in itertools.product((0, 1), repeat=len(hidden)):
        val = dict(zip(hidden, states))
        val.update({n: v.observed for n, v in nodes.items() if v.observed is not None})
        p = 1.0
        for n, v in nodes.items():
            off = 1.0 - v.leak
            for par, w in zip(v.parents, v.weights):
                off *= (1.0 - w) ** val[par]
            p *= (1.0 - off) if val[n] else off
        z += p
        for f in num:
            if val[f]:
                num[f] += p
    return {f[2:]: num[f] / z for f in num}


def db_and_host_window():
    """A database behind three services, two of which share a slow host."""
    wb = WindowBuilder(seed=3)
    for s in ("orders", "billing", "shipping"):
        wb.serve(s, BASE, ERR)
        wb.call(s, "db:postgresql/orders", BASE, BASE.with_(error_rate=0.4))
    wb.serve("frontend", BASE)
    wb.call("frontend", "orders", BASE, BASE.with_(error_rate=0.4))
    wb.runs_on("orders", "host:a").runs_on("billing", "host:a").runs_on("shipping", "host:b")
    wb.serve("cart", BASE, BASE.with_(latency_ms=200, self_ms=150))
    wb.runs_on("cart", "host:b")
    return wb.build()


def test_pocket_posteriors_equal_brute_force_enumeration():
    model = build_model(score_window(db_and_host_window()))
    hidden = [n for n, v in model.nodes.items() if v.observed is None]
    assert len(hidden) <= 14
    got = compute_posteriors(model)
    assert any(r.method == "pgmpy-ve" for r in got.pockets)
    want = brute_force(model)
    for x, p in want.items():
        assert got.fault[x] == pytest.approx(p, abs=1e-9), x


def test_junction_tree_path_equals_brute_force(monkeypatch):
    monkeypatch.setattr(posterior, "MAX_GROUP", 1)
    model = build_model(score_window(db_and_host_window()))
    got = compute_posteriors(model)
    assert any(r.method == "pgmpy-junction-tree" for r in got.pockets)
    for x, p in brute_force(model).items():
        assert got.fault[x] == pytest.approx(p, abs=1e-9), x


def test_closed_form_singleton_equals_pgmpy_variable_elimination():
    model = build_model(score_window(db_and_host_window()))
    got = compute_posteriors(model)
    assert any(r.method == "closed-form" for r in got.pockets)
    bn = model.to_pgmpy()
    bn.check_model()
    ve = VariableElimination(bn)
    for x in ("frontend", "cart"):  # singleton pockets: all their neighbours observed
        q = ve.query([f"F|{x}"], evidence=model.evidence(), show_progress=False)
        assert got.fault[x] == pytest.approx(float(q.values[1]), abs=1e-9)


def test_loopy_bp_approximation_error_against_exact_is_small():
    data = db_and_host_window()
    exact = compute_posteriors(build_model(score_window(data))).fault
    approx_result = compute_posteriors(build_model(score_window(data), ModelParams(max_exact_width=0)))
    assert any(r.method == "loopy-bp" for r in approx_result.pockets)
    err = max(abs(approx_result.fault[x] - exact[x]) for x in exact)
    # Measured 0 to ~1e-3 on these pockets (tree-like cores); the bound keeps room.
    assert err < 0.02


def test_chain_of_or_gates_is_the_exact_noisy_or():
    from pgmpy.models import DiscreteBayesianNetwork
    from rootgraph.inference.network import chain_cpds, _cpd

    parents = [f"p{i}" for i in range(5)]
    weights = [0.9, 0.3, 0.5, 0.7, 0.2]
    bn = DiscreteBayesianNetwork()
    bn.add_nodes_from(parents + ["x"])
    cpds = [_cpd(p, [], [], 0.5) for p in parents] + chain_cpds(bn, "x", parents, weights, 0.01)
    bn.add_cpds(*cpds)
    bn.check_model()
    assert all(c.values.size <= 8 for c in bn.cpds)
    ve = VariableElimination(bn)
    for states in [(0, 0, 0, 0, 0), (1, 0, 1, 0, 0), (1, 1, 1, 1, 1), (0, 0, 0, 1, 1)]:
        q = ve.query(["x"], evidence=dict(zip(parents, states)), show_progress=False)
        want = 1 - 0.99 * math.prod((1 - w) ** s for w, s in zip(weights, states))
        assert float(q.values[1]) == pytest.approx(want, abs=1e-12)


def _cycle_window(origin_exclusive: bool):
    wb = WindowBuilder(seed=5)
    a_inc = ERR.with_(exclusive_rate=0.4) if origin_exclusive else ERR
    wb.serve("a", BASE, a_inc).serve("b", BASE, ERR)
    wb.call("a", "b", Profile(rpm=80), Profile(rpm=80, error_rate=0.4))
    wb.call("b", "a", Profile(rpm=5), Profile(rpm=5, error_rate=0.4))
    return wb.build()


def test_cycle_a_b_a_keeps_the_edge_the_incident_travelled():
    model = build_model(score_window(_cycle_window(origin_exclusive=True)))
    # a has exclusive errors: b -> a carried the incident, so a -> b is dropped
    assert model.dropped_edges == (("a", "b"),)
    g = nx.DiGraph([(p, n) for n, v in model.nodes.items() for p in v.parents])
    assert nx.is_directed_acyclic_graph(g)
    post = compute_posteriors(model).fault
    assert post["a"] > 0.5 > post["b"]


def test_cycle_whose_edges_are_equally_anomalous_drops_the_lowest_traffic_edge():
    """No exclusive errors anywhere: nothing says which way the incident went; traffic decides."""
    model = build_model(score_window(_cycle_window(origin_exclusive=False)))
    assert model.dropped_edges == (("b", "a"),)
    g = nx.DiGraph([(p, n) for n, v in model.nodes.items() for p in v.parents])
    assert nx.is_directed_acyclic_graph(g)


def test_every_candidate_gets_a_posterior_in_unit_interval():
    model = build_model(score_window(db_and_host_window()))
    post = compute_posteriors(model).fault
    assert set(post) == set(model.candidates)
    assert all(0.0 <= p <= 1.0 for p in post.values())
    assert model.candidates["db:postgresql/orders"] == EntityKind.DATABASE
    assert np.isfinite(list(post.values())).all()
