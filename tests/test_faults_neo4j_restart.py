"""Fault: Neo4j stopped mid-ingest and started again (issue 8, part 1).

The real SDK exporters keep sending to a ``rootgraph serve`` process. While Neo4j is
down, Export answers UNAVAILABLE with a retry hint and health turns NOT_SERVING; after
the restart health is SERVING again, the exporters' retries land, and Neo4j holds
exactly what the clients saw acknowledged — nothing lost, nothing twice.
"""

from __future__ import annotations

import grpc
import pytest

from faults_support import export_raw, small_template, wait_until
from rootgraph.config import Settings
from rootgraph.graph.connect import open_driver
from rootgraph.graph.local import LocalNeo4j
from rootgraph.graph.admin import GraphAdmin
from rootgraph.simulate.replay import ReplayDriver
from rootgraph.simulate.serverproc import ServerProcess, health_status

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]


def test_neo4j_restart_mid_ingest_loses_nothing(faults_neo4j: tuple[LocalNeo4j, Settings],
                                                tmp_path) -> None:  # noqa: ANN001
    local, settings = faults_neo4j
    template = small_template()
    # one ingest process: batches == requests below (with N workers a request is one
    # IngestBatch per worker it touches; test_ingest_workers.py checks that path)
    server = ServerProcess(local.bolt_uri, local.password_file, tmp_path / "server.log",
                           {"ROOTGRAPH_INGEST_GROUP_MAX": "8"}, workers=1).start()
    driver = ReplayDriver(template, server.otlp_grpc, str(tmp_path), senders=1, threads=3,
                          timeout_s=20.0, give_up_after_s=150.0).start()
    try:
        wait_until(lambda: driver.totals()["acked_requests"] >= 10, 60, "traffic to flow")
        local.stop()
        wait_until(lambda: health_status(server.api) == "NOT_SERVING", 20, "health NOT_SERVING")
        code, trailers = export_raw(server.otlp_grpc, template.round_payload(0, 999, 0), 10.0)
        assert code == grpc.StatusCode.UNAVAILABLE
        assert "google.rpc.retryinfo-bin" in trailers
        before = driver.totals()["acked_requests"]

        local.start(log=lambda m: None)
        wait_until(lambda: health_status(server.api) == "SERVING", 30, "health SERVING again")
        wait_until(lambda: driver.totals()["acked_requests"] >= before + 10, 60, "acks after restart")
        sent = driver.stop(timeout_s=60)
    finally:
        driver.stop(timeout_s=5)
        server.stop()
    assert sent["gave_up_spans"] == 0
    neo = open_driver(settings, start_local=False, log=lambda m: None)
    try:
        got = GraphAdmin(neo).ingest_totals()
        GraphAdmin(neo).clear()
    finally:
        neo.close()
    assert (got["batches"], got["spans"], got["entries"]) == (
        sent["acked_requests"], sent["acked_spans"], sent["acked_entries"])
