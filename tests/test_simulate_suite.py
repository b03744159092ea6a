"""The labelled suite and the shipped/generated topologies are well-formed."""

from __future__ import annotations

from collections import Counter

import pytest

from rootgraph.simulate import FaultKind, TopologyError, generate, get_topology, suite
from rootgraph.simulate.faults import FaultEffects
from rootgraph.simulate.suite import expected_visits
from rootgraph.simulate.topology import BackendKind, Call, Entry, Operation, Service, Topology


def test_suite_has_40_unique_valid_cases_covering_every_kind_and_hard_situation():
    cases = suite()
    assert len(cases) >= 40
    assert len({c.name for c in cases}) == len(cases)
    assert len({c.seed for c in cases}) == len(cases)
    for c in cases:
        topo = get_topology(c.topology)
        c.validate(topo)
        FaultEffects(topo, [(f, 0, 1, "") for f in c.faults])  # raises on a bad target
        assert all(visits > 0 for visits in [expected_visits(topo).get(
            f.entity, 1.0 if f.entity.startswith(("host:", "node:")) else 0.0) for f in c.faults])
    assert {f.kind for c in cases for f in c.faults} == set(FaultKind)
    tags = Counter(t for c in cases for t in c.tags)
    for t in ("decoy", "fallback", "cycle", "retry", "host", "shared-db", "queue", "multi"):
        assert tags[t] >= 1, t
    assert {c.topology for c in cases} >= {"sockshop", "boutique", "trainticket"}
    assert suite() == cases  # deterministic


@pytest.mark.parametrize("n", [50, 2000])
def test_generated_graph_has_hubs_shared_databases_and_shared_hosts(n):
    topo = generate(n, seed=1)
    assert len(topo.services) == n
    indeg, db_users, host_users = Counter(), Counter(), Counter()
    for s in topo.services.values():
        host_users[s.host] += 1
        for t in {c.target for op in s.operations for c in op.calls}:
            if t in topo.services:
                indeg[t] += 1
            elif topo.backends[t].kind is BackendKind.DATABASE:
                db_users[t] += 1
    entries = {e.service for e in topo.entries}
    assert all(indeg[s] >= 1 for s in topo.services if s not in entries)  # all reachable
    assert max(indeg.values()) >= 3 * (sum(indeg.values()) / len(indeg))  # hubs
    assert max(db_users.values()) >= 3 and max(host_users.values()) >= 3
    assert generate(n, seed=1) == topo


def test_generator_rejects_sizes_outside_its_range():
    with pytest.raises(ValueError, match="n_services"):
        generate(10)


def test_topology_validation_names_the_bad_reference():
    svc = Service("a", (Operation("GET /", calls=(Call("nope", "GET /"),)),))
    with pytest.raises(TopologyError, match="unknown target 'nope'"):
        Topology.of("bad", [svc], [], [Entry("a", "GET /")])
