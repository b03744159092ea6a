"""Ingest replicas behind a trace-id-routing Collector (issue 16, part 2).

Three ``rootgraph serve --role ingest`` processes share one Neo4j. A sender that routes
each span by trace id onto the replicas as the Collector's ``loadbalancing`` exporter
does (``TraceRing``) must leave exactly what one process leaves on the same spans:
the same ServiceBucket/EdgeBucket rows (integers and histograms byte for byte), the
same CALLS, the same pairing counters. A sender that round-robins whole requests
(what a plain L4 balancer or the ``otlp`` exporter with several endpoints does) splits
traces: their halves wait in different replicas, expire unpaired, and the graph gets
fallback edges instead of the real ones — counted as ``unpaired_client``/``_server``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faults_support import wait_until
from rootgraph.config import Settings
from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.local import LocalNeo4j
from rootgraph.ingest.shard import TraceRing
from rootgraph.simulate.serverproc import ServerProcess
from scaleout_support import diff_rows, graph_rows, route_by_trace, two_service_requests
from test_ingest_workers import _export

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

#: How long a half waits for its partner. A chunk's two requests are sent one after the
#: other, so correctly routed halves pair in well under a second; round-robin halves
#: wait this long and expire. Generous, so a loaded machine cannot expire a real pair
#: (1 s did, at load average 10: 125 of 150 paired).
PAIRING_WAIT_S = 8

COUNTERS = ("paired", "unpaired_client", "unpaired_server", "late_after_expiry", "expired", "spans_accepted")


def _run(store: GraphAdmin, local: LocalNeo4j, tmp: Path, replicas: int, route: str) -> tuple[dict, dict]:  # noqa: ANN401
    store.clear()
    servers = [ServerProcess(local.bolt_uri, local.password_file, tmp / f"{route}-{i}.log", role="ingest",
                             workers=1, extra_env={"ROOTGRAPH_PAIRING_WAIT_SECONDS": str(PAIRING_WAIT_S)})
               for i in range(replicas)]
    try:
        for s in servers:
            s.start()
        by_address = {s.otlp_grpc: s for s in servers}
        ring = TraceRing(sorted(by_address))
        for i, (_, body) in enumerate(two_service_requests(traces=150, per_request=25)):
            if route == "traceID":
                for address, part in route_by_trace(body, ring.endpoint_for).items():
                    _export(address, part)
            else:  # round robin over whole requests
                _export(servers[i % replicas].otlp_grpc, body)

        def pending() -> float:
            return sum(s.metrics()["rootgraph_ingest_pending_clients"] + s.metrics()["rootgraph_ingest_pending_servers"]
                       for s in servers)
        wait_until(lambda: pending() == 0, PAIRING_WAIT_S + 60, "every half paired or expired", poll_s=0.2)
        counters = {c: sum(s.metrics()[f"rootgraph_ingest_{c}"] for s in servers) for c in COUNTERS}
    finally:
        for s in servers:
            s.stop()
    return graph_rows(store._driver, store._db), counters  # noqa: SLF001


def test_three_replicas_routed_by_trace_id_equal_one_process(
        store: GraphAdmin, neo4j_settings: Settings, tmp_path: Path) -> None:
    if not neo4j_settings.uses_local_neo4j:
        pytest.skip("needs the password file of the local test Neo4j")
    local = LocalNeo4j(neo4j_settings)
    want, single = _run(store, local, tmp_path, 1, "traceID")
    got, ring = _run(store, local, tmp_path, 3, "traceID")
    assert single["paired"] == 150 and single["unpaired_client"] == single["unpaired_server"] == 0
    assert ring == single
    assert diff_rows(want, got) == []

    rr_rows, rr = _run(store, local, tmp_path, 3, "round-robin")
    print("single", single, "\nround robin", rr)  # the report's numbers (pytest -s)
    assert rr["spans_accepted"] == single["spans_accepted"]  # nothing lost ...
    # ... but a chunk's frontend and checkout requests are consecutive, so round robin
    # always sends a trace's two halves to different replicas: none pair, both expire
    assert (rr["paired"], rr["expired"], rr["late_after_expiry"]) == (0, 300, 0)
    assert rr["unpaired_server"] == 150  # SERVER halves degrade to a `user` caller
    rr_calls = {(r["src"], r["dst"]): r["calls"] for r in rr_rows["CALLS"]}
    want_calls = {(r["src"], r["dst"]): r["calls"] for r in want["CALLS"]}
    print("CALLS one process", want_calls, "\nCALLS round robin", rr_calls)
    assert ("user", "checkout") not in want_calls
    assert rr_calls[("user", "checkout")] == 150  # a phantom edge: checkout's callers look external
    # the CLIENT halves fall back to their server.address: a virtual `ext:checkout` node,
    # so the real frontend → checkout edge is gone and the graph has two phantoms
    assert rr_calls[("frontend", "ext:checkout")] == 150 and ("frontend", "checkout") not in rr_calls
    assert diff_rows(want, rr_rows) != []
