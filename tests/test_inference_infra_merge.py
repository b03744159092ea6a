"""host:X and node:X with the same services are one root-cause candidate (pure logic).

In every shipped topology ``host.name`` = ``k8s.node.name``, so a host fault used to
split its posterior ~0.5/0.5 between two indistinguishable candidates (BENCHMARKS.md
"Host/node duality costs calibration").
"""

from __future__ import annotations

import warnings

from rootgraph.graph.records import EntityKind
from rootgraph.inference import RootCauseRanker, blast_radius
from rootgraph.inference.evidence import score_window
from rootgraph.inference.learning import LabelledIncident, evaluate
from rootgraph.inference.network import ModelParams, build_model, merge_same_machine
from rootgraph.inference.synthetic import Profile, WindowBuilder

warnings.filterwarnings("ignore", category=FutureWarning)

BASE = Profile(rpm=100)
SLOW = BASE.with_(latency_ms=120, self_ms=100)
H, N = EntityKind.HOST, EntityKind.NODE


def saturated_machine(node_services=("a", "b", "c")) -> WindowBuilder:
    """a, b, c on host:m1; node:m1 carries ``node_services``; d healthy on m2."""
    wb = WindowBuilder()
    for s in ("a", "b", "c"):
        wb.serve(s, BASE, SLOW).call("user", s, BASE).runs_on(s, "host:m1")
    for s in node_services:
        wb.runs_on(s, "node:m1")
    wb.serve("d", BASE).call("user", "d", BASE).runs_on("d", "host:m2").runs_on("d", "node:m2")
    return wb


def test_host_and_node_of_one_machine_are_one_confident_cause() -> None:
    r = RootCauseRanker().rank(saturated_machine().build())
    top = r.causes[0]
    assert (top.entity, top.kind) == ("node:m1", "node")
    assert top.probability > 0.9  # was ~0.5, the other half on host:m1
    assert "host:m1" not in r.all_posteriors and "host:m1" not in {c.entity for c in r.causes}
    assert r.aliases == {"node:m1": ("host:m1",)}
    assert top.explanation.startswith("node:m1 (= host:m1) (node): P(root cause) = ")
    assert any(n.startswith("node:m1 (= host:m1): one candidate") for n in r.notes)
    assert {p[-1] for p in top.paths} == {"a", "b", "c"}


def test_infra_with_different_services_stay_separate_candidates() -> None:
    r = RootCauseRanker().rank(saturated_machine(node_services=("a", "b")).build())
    assert {"host:m1", "node:m1"} <= set(r.all_posteriors)
    assert r.aliases == {}


def test_merge_rule_is_deterministic_and_keeps_the_largest_prior() -> None:
    cand = {"a": EntityKind.SERVICE, "b": EntityKind.SERVICE, "c": EntityKind.SERVICE,
            "host:m1": H, "node:m1": N, "pod:p1": EntityKind.POD, "host:x": H, "host:y": H, "node:z": N}
    hosts_of = {"a": ["host:m1", "node:m1", "pod:p1"], "b": ["node:m1", "host:m1", "pod:p1"],
                "c": ["host:y", "host:x", "node:z"]}
    priors = {x: 0.01 for x in cand} | {"host:m1": 0.2, "host:y": 0.3}
    aliases = merge_same_machine(cand, hosts_of, priors)
    # node first, then host, then pod; among equals the lexicographically first id
    assert aliases == {"node:m1": ("host:m1", "pod:p1"), "node:z": ("host:x", "host:y")}
    assert set(cand) == {"a", "b", "c", "node:m1", "node:z"}
    assert set(priors) == set(cand)
    assert priors["node:m1"] == 0.2 and priors["node:z"] == 0.3
    assert hosts_of == {"a": ["node:m1"], "b": ["node:m1"], "c": ["node:z"]}


def test_whatif_model_keeps_both_ids_for_blast_radius() -> None:
    data = saturated_machine().build()
    assert build_model(score_window(data), ModelParams()).aliases == {"node:m1": ("host:m1",)}
    for infra in ("host:m1", "node:m1"):
        br = blast_radius(data, infra)
        assert {"a", "b", "c"} <= {i.entity for i in br.impacts}


def test_evaluate_counts_a_confirmed_host_as_named_by_its_merged_node() -> None:
    data = saturated_machine().build()
    acc = evaluate(ModelParams(), [LabelledIncident("i1", data, (), "host:m1"),
                                   LabelledIncident("i2", data, (), "node:m1")])
    assert acc.positions == {"i1": 1, "i2": 1}
