"""Fault: the rootgraph process killed with SIGKILL mid-ingest, then restarted (issue 8).

A batch is acknowledged only after its Neo4j commit, so a crash can lose only what was
never acknowledged; the exporters re-send that, and the batch id makes a re-send of a
batch that did commit (ack lost in the crash) a no-op. Every request here has a known
span and entry-span count, so the sums in Neo4j must equal the acknowledged sums exactly.
"""

from __future__ import annotations

import pytest

from faults_support import small_template, wait_until
from rootgraph.config import Settings
from rootgraph.graph.local import LocalNeo4j
from rootgraph.graph.admin import GraphAdmin
from rootgraph.simulate.replay import ReplayDriver
from rootgraph.simulate.serverproc import ServerProcess

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]


def test_sigkill_mid_ingest_keeps_every_acknowledged_batch(
        store: GraphAdmin, neo4j_settings: Settings, tmp_path) -> None:  # noqa: ANN001
    if not neo4j_settings.uses_local_neo4j:
        pytest.skip("needs the password file of the local test Neo4j")
    local = LocalNeo4j(neo4j_settings)
    template = small_template()
    # the single-process path (--workers 1); the sharded one: test_ingest_workers.py
    server = ServerProcess(local.bolt_uri, local.password_file, tmp_path / "server.log", workers=1).start()
    driver = ReplayDriver(template, server.otlp_grpc, str(tmp_path), senders=2, threads=3,
                          timeout_s=30.0, give_up_after_s=120.0).start()
    try:
        for _ in range(2):  # two crashes, each with requests in flight
            acked = driver.totals()["acked_requests"]
            wait_until(lambda: driver.totals()["acked_requests"] >= acked + 15, 60, "acks before the kill")
            server.kill()
            server.start(timeout_s=60)  # same ports: the exporters reconnect and re-send
        acked = driver.totals()["acked_requests"]
        wait_until(lambda: driver.totals()["acked_requests"] >= acked + 10, 60, "acks after the restart")
        sent = driver.stop(timeout_s=60)
    finally:
        driver.stop(timeout_s=5)
        server.stop()
    assert sent["gave_up_spans"] == 0
    got = store.ingest_totals()
    assert (got["batches"], got["spans"], got["entries"]) == (
        sent["acked_requests"], sent["acked_spans"], sent["acked_entries"])
