"""Fault: Neo4j slow — another transaction holds the write locks ingest needs (issue 8).

Calls must end at their deadline (DEADLINE_EXCEEDED or UNAVAILABLE) instead of piling
up; the process stays healthy (health is a read, not blocked by write locks), and once
the lock is released it serves again. Re-sending what failed afterwards must not
double anything: the write that was stuck may have committed after its caller gave up.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from faults_support import export_raw, small_template, wait_until
from rootgraph.graph.admin import GraphAdmin
from rootgraph.server.health import HealthMonitor
from rootgraph.simulate.replay import GrpcReplayExporter
from rootgraph.simulate.serverproc import health_status

pytestmark = pytest.mark.neo4j


def test_calls_end_at_their_deadline_while_neo4j_is_locked(app, neo4j_driver, store: GraphAdmin) -> None:  # noqa: ANN001
    template = small_template()
    otlp = f"127.0.0.1:{app.ports['otlp_grpc']}"
    api = f"127.0.0.1:{app.ports['api']}"
    payloads = [template.round_payload(i, 0, r) for r in range(3) for i in range(len(template.payloads))]
    first, during, after = payloads[:3], payloads[3:23], payloads[23:26]
    exporter = GrpcReplayExporter(endpoint=otlp, insecure=True, timeout=2.0)
    try:
        assert all(exporter.export_bytes(p) for p in first)
        with neo4j_driver.session() as session:
            lock = session.begin_transaction()
            lock.run("MATCH (e:Entity) SET e.x = 1").consume()  # write-locks every entity
            try:
                t0 = time.monotonic()
                assert not exporter.export_bytes(during[0])  # the SDK exporter gives up at its timeout
                assert time.monotonic() - t0 < 2.0 + 1.5
                with ThreadPoolExecutor(len(during)) as pool:
                    t0 = time.monotonic()
                    codes = list(pool.map(lambda p: export_raw(otlp, p, 1.0)[0], during))
                    assert time.monotonic() - t0 < 1.0 + 2.0
                assert set(codes) <= {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE}
                assert health_status(api) == "SERVING"
            finally:
                lock.rollback()
        wait_until(lambda: export_raw(otlp, after[0], 10.0)[0] == grpc.StatusCode.OK, 40,
                   "ingest to serve again after the lock is released")
        assert all(exporter.export_bytes(p) for p in [*during, *after])  # re-send: no doubles
    finally:
        exporter.shutdown()
    app.committer.close()
    got = store.ingest_totals()
    sent = first + during + after
    assert got["batches"] == len(sent)
    assert got["spans"] == sum(template.spans_per_payload[i % len(template.payloads)]
                               for i in range(len(sent)))


def test_health_thread_survives_a_probe_that_raises() -> None:
    from grpc_health.v1 import health, health_pb2

    calls = []

    def ping() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("Neo4j transaction exceeded its deadline")
        return True

    servicer = health.HealthServicer()
    monitor = HealthMonitor(servicer, ping, interval_s=0.05)
    monitor.start()
    try:
        assert not calls or calls  # started
        wait_until(lambda: monitor.serving, 5, "health SERVING after a failed probe")
        assert servicer.Check(health_pb2.HealthCheckRequest(service=""), None).status == \
            health_pb2.HealthCheckResponse.SERVING
    finally:
        monitor.stop()
