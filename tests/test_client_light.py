"""The Python client is light and its surface is listed (issue 13, finding 4; STYLE.md #11).

A remediation bot that imports ``rootgraph.client`` pays for grpcio + protobuf only: no
pgmpy/pandas/scipy/numpy/networkx/torch, nothing on stderr (pgmpy prints a FutureWarning
on import), and an import time within a generous bound of grpc + protobuf alone.
Measured in fresh interpreters, since this test process has long imported everything.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import rootgraph.client as client
import rootgraph.results as results

HEAVY = ("pgmpy", "pandas", "scipy", "numpy", "networkx", "torch")

_PROBE = """
import json, sys, time
t0 = time.perf_counter()
{imports}
dt = time.perf_counter() - t0
print(json.dumps({{"seconds": dt, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def _fresh_import(imports: str) -> tuple[float, list[str], str]:
    """(import seconds, heavy modules loaded, stderr) of ``imports`` in a new interpreter."""
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(imports=imports, heavy=HEAVY)],
                          capture_output=True, text=True, timeout=120, check=True)
    out = json.loads(proc.stdout)
    return out["seconds"], out["heavy"], proc.stderr


def test_importing_the_client_loads_no_inference_stack_and_prints_nothing() -> None:
    # A bare `python -c "import rootgraph.client"`, exactly as a bot would start.
    proc = subprocess.run(
        [sys.executable, "-c", f"import sys, rootgraph.client; print([m for m in {HEAVY!r} if m in sys.modules])"],
        capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "[]"
    assert proc.stderr == ""  # e.g. pgmpy's FutureWarning would land here


def test_importing_the_client_costs_about_what_grpc_and_protobuf_cost() -> None:
    # Best of three of each: the machine is shared, and the minimum is the cost itself.
    base = min(_fresh_import("import grpc\nfrom google.protobuf import timestamp_pb2")[0] for _ in range(3))
    runs = [_fresh_import("import rootgraph.client") for _ in range(3)]
    took = min(r[0] for r in runs)
    assert all(r[1] == [] and r[2] == "" for r in runs)
    assert took < 2 * base + 0.3, f"import rootgraph.client took {took:.3f}s; grpc+protobuf {base:.3f}s"


def test_the_client_returns_the_rankers_own_result_types() -> None:
    """One ``Ranking`` for the ranker and the client, not two names for one answer."""
    from rootgraph.inference import Ranking as RankerRanking
    from rootgraph.inference import results as inference_results

    assert client.Ranking is results.Ranking is RankerRanking
    assert inspect.signature(client.RootGraphClient.rank_causes).return_annotation in ("Ranking", results.Ranking)
    for name in inference_results.__all__:
        assert getattr(inference_results, name) is getattr(results, name)


def test_client_exports_exactly_the_documented_surface() -> None:
    assert sorted(client.__all__) == sorted([
        "Action", "ActionKind", "BlastRadius", "Cause", "Deployment", "EvidenceItem", "FaultKind", "Impact", "Ranking",
        "IncidentEvent", "IncidentSummary", "RemediationStep", "RootGraphClient", "ServiceGraph",
        "ranking_from_proto",
    ])
    for name in client.__all__:
        assert getattr(client, name) is not None
    methods = sorted(n for n, _ in inspect.getmembers(client.RootGraphClient, inspect.isfunction)
                     if not n.startswith("_"))
    assert methods == ["blast_radius", "close", "get_incident", "list_incidents", "rank_causes",
                       "record_deployment", "record_remediation_step", "remediation_steps", "service_graph",
                       "submit_feedback", "watch_incidents"]


def test_results_module_exports_exactly_the_result_types_and_the_plausibility_rule() -> None:
    assert sorted(results.__all__) == sorted([
        "PLAUSIBLE_FACTOR", "PLAUSIBLE_FLOOR", "Action", "ActionKind", "BlastRadius", "Cause",
        "EvidenceItem", "FaultKind", "Impact", "Ranking", "fault_kind_name", "is_plausible",
    ])


def test_plausible_means_above_the_floor_and_within_a_factor_of_the_top() -> None:
    assert results.is_plausible(0.9, 0.9)
    assert results.is_plausible(0.10, 0.95)            # within 10x of the top
    assert not results.is_plausible(0.09, 0.95)        # more than 10x behind
    assert not results.is_plausible(0.04, 0.04)        # below the floor, even as the top
    assert results.is_plausible(0.05, 0.3)
    cause = lambda e, p, r: results.Cause(e, "service", p, r, "")  # noqa: E731
    ranking = results.Ranking((cause("a", 0.9, 1), cause("b", 0.2, 2), cause("c", 0.0, 3), cause("d", 0.0, 3)),
                              (), "v", False)
    assert [c.entity for c in ranking.plausible_causes()] == ["a", "b"]
    assert results.Ranking((), (), "v", True).plausible_causes() == ()
