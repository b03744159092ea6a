"""Ingest sharded by trace id over worker processes (issue 16, part 1).

Pure logic of the split first (the wire-level cut, ids, ownership, the Collector's
ring), then the real
thing: ``App`` with two worker processes over the real Neo4j, and a ``rootgraph serve
--workers 2`` child whose workers are SIGKILLed mid-ingest.
"""

from __future__ import annotations

import os
import signal
import time
import zlib
from dataclasses import replace

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from faults_support import small_template, wait_until
from rootgraph.config import AUTO_MAX_INGEST_WORKERS, ConfigError, Settings, load_settings, usable_cpus
from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.local import LocalNeo4j
from rootgraph.ingest.config import IngestConfig
from rootgraph.ingest.pipeline import Ingestor
from rootgraph.ingest.shard import RING_POSITIONS, TraceRing, owner, split_request
from rootgraph.ingest.spans import MalformedPayload, decode
from rootgraph.simulate.replay import ReplayDriver
from rootgraph.simulate.serverproc import ServerProcess
from scaleout_support import diff_rows, graph_rows, two_service_requests
from test_server_signals import _json_logs, _post
from test_ingest_helpers import CLIENT, SERVER, payload, resource_spans, span, tid


class _NullSink:
    def apply_deltas(self, deltas):  # noqa: ANN001,ANN201
        return [True] * len(deltas)


def _payload(*spans):  # noqa: ANN002,ANN202
    return payload(resource_spans("svc", *spans))


def _fields(spans):  # noqa: ANN001,ANN202
    return sorted((s.trace_id, s.span_id, s.parent_span_id, s.service, s.version, s.kind, s.name, s.start_ns,
                   s.end_ns, s.error, tuple(sorted(s.attrs.items())), s.infra) for s in spans)


def test_split_request_gives_each_span_to_its_owner_once_with_an_id_that_ignores_order() -> None:
    spans = [span(t, 10 * t + k, None, SERVER) for t in range(1, 40) for k in range(3)]
    clients = [span(t, 10 * t + 5, 10 * t, CLIENT, attrs={"server.address": "db"}) for t in range(1, 40, 4)]
    bad = span(41, 999, None, SERVER)
    bad.span_id = b"short"  # rejected by exactly one part: the one owning trace 41
    body = payload(resource_spans("svc", *spans[:60], service__version="1.2"),
                   resource_spans("other", *clients, *spans[60:], bad, host__name="h1"))
    ingestor = Ingestor(_NullSink(), IngestConfig())
    cut = split_request(body, 3)
    parts = [ingestor.prepare(p) for p in cut]
    again = [ingestor.prepare(p) for p in split_request(
        payload(resource_spans("other", bad, *reversed(spans[60:]), *clients, host__name="h1"),
                resource_spans("svc", *reversed(spans[:60]), service__version="1.2")), 3)]
    assert [p.batch_id for p in parts] == [p.batch_id for p in again]
    assert len({p.batch_id for p in parts}) == 3
    assert sum(p.rejected for p in parts) == 1
    assert parts[owner(tid(41), 3)].reasons == {"invalid span_id": 1}
    for k, part in enumerate(parts):
        assert {zlib.crc32(s.trace_id) % 3 for s in part.spans} == {k}
    # every field of every span, its resource's identity and attributes included, as unsplit
    assert _fields(s for p in parts for s in p.spans) == _fields(decode(body).spans)
    assert split_request(body, 1) == [body]


def test_a_part_owning_every_trace_gets_the_unsplit_id() -> None:
    ingestor = Ingestor(_NullSink(), IngestConfig())
    body = _payload(span(5, 1, None, SERVER), span(5, 2, 1, SERVER))
    k = owner(tid(5), 4)
    parts = split_request(body, 4)
    assert ingestor.prepare(parts[k]).batch_id == ingestor.prepare(body).batch_id
    assert [p for i, p in enumerate(parts) if i != k] == [b"", b"", b""]  # nothing for the others


def test_split_request_refuses_broken_wire_format_naming_it() -> None:
    body = _payload(span(5, 1, None, SERVER))
    with pytest.raises(MalformedPayload, match="truncated"):
        split_request(body[:-3], 2)
    with pytest.raises(MalformedPayload, match="wire type"):
        split_request(b"\x0b" + body, 2)  # field 1 as a group: OTLP has none


def test_trace_ring_picks_the_next_position_like_the_collector() -> None:
    endpoints = ["replica-a:4317", "replica-b:4317", "replica-c:4317"]
    ring = TraceRing(endpoints)
    points = sorted({(zlib.crc32(e.encode() + bytes([i])) % RING_POSITIONS, e)
                     for e in endpoints for i in range(100)})
    for n in range(2_000):
        h = zlib.crc32(tid(n)) % RING_POSITIONS
        want = next((e for p, e in points if p >= h), points[0][1])
        assert ring.endpoint_for(tid(n)) == want
    counts = {e: sum(ring.endpoint_for(tid(n)) == e for n in range(3_000)) for e in endpoints}
    assert min(counts.values()) > 500  # every replica gets a share


def test_ingest_workers_default_to_one_per_usable_cpu_and_are_validated() -> None:
    assert Settings().ingest_workers == 0
    assert Settings().ingest_worker_count == max(1, min(usable_cpus() - 1, AUTO_MAX_INGEST_WORKERS))
    assert load_settings({"ROOTGRAPH_INGEST_WORKERS": "3"}).ingest_worker_count == 3
    assert load_settings({"ROOTGRAPH_INGEST_WORKERS": "1"}).ingest_worker_count == 1
    with pytest.raises(ConfigError, match=r"ingest_workers: must be in 0\.\.256"):
        load_settings({"ROOTGRAPH_INGEST_WORKERS": "-1"})
    with pytest.raises(ConfigError, match="ingest_workers"):
        load_settings(ingest_workers=257)


def test_usable_cpus_honours_a_container_cpu_limit(tmp_path) -> None:  # noqa: ANN001
    """A Kubernetes limit of 1.5 CPUs is a cgroup quota: 2 workers, not one per node CPU."""
    affinity = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert usable_cpus(cpu_max) == min(affinity, 2)
    cpu_max.write_text("50000 100000\n")  # half a CPU still runs one process
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text("max 100000\n")  # no limit: the affinity mask
    assert usable_cpus(cpu_max) == affinity
    assert usable_cpus(tmp_path / "absent") == affinity  # no cgroup v2 CPU controller


def _export(address: str, body: bytes) -> None:
    with grpc.insecure_channel(address) as ch:
        trace_service_pb2_grpc.TraceServiceStub(ch).Export(
            trace_service_pb2.ExportTraceServiceRequest.FromString(body), timeout=30)


def _run_app(neo4j_driver, settings: Settings, workers: int, store: GraphAdmin):  # noqa: ANN001,ANN202
    """The same requests through ``App`` with ``workers`` ingest workers: (rows, stats)."""
    from rootgraph.server.app import App

    store.clear()
    app = App(replace(settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                      otlp_http_address="127.0.0.1:0", ingest_workers=workers), neo4j_driver).start()
    try:
        wait_until(lambda: app.health.serving, 30, "health SERVING")
        if workers > 1:
            assert len(app.ingestor.worker_pids()) == workers
        addr = f"127.0.0.1:{app.ports['otlp_grpc']}"
        for _, body in two_service_requests(traces=120, per_request=20):
            _export(addr, body)
        with grpc.insecure_channel(addr) as ch:  # undecodable bytes: INVALID_ARGUMENT, nothing written
            export = ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                    request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as err:
                export(b"\x0a\xff\xff\xff", timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # logs stay in the front process (no pairing to shard): same groups, same counts
        assert _post(app, "/v1/logs", _json_logs(time.time_ns()), "application/json")[0] == 200
        app.ingestor.flush_all()  # the roots' halves wait for a caller that never comes
        stats = app.stats()
    finally:
        procs = [w.proc for w in app.ingestor._workers] if workers > 1 else []  # noqa: SLF001
        app.stop(grace_s=1.0)
    # Each worker exits by itself once it has flushed; it is not waited out and killed
    # (that was every shutdown: the worker never saw EOF on its pipe, 30 s each).
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return graph_rows(neo4j_driver, settings.neo4j_database), stats


@pytest.mark.neo4j
def test_halves_in_different_requests_and_workers_pair(
        neo4j_driver, neo4j_settings: Settings, store: GraphAdmin) -> None:  # noqa: ANN001
    # every request holds traces of both workers, and each trace's halves are in two requests
    assert {owner(tid(t), 2) for t in range(1, 21)} == {0, 1}
    want, single = _run_app(neo4j_driver, neo4j_settings, 1, store)
    got, sharded = _run_app(neo4j_driver, neo4j_settings, 2, store)
    assert sharded["ingest_workers"] == 2 and sharded["ingest_worker_restarts"] == 0
    assert sharded["paired"] == single["paired"] == 120  # every frontend→checkout call
    for name in ("unpaired_client", "unpaired_server", "late_after_expiry", "spans_accepted"):
        assert sharded[name] == single[name], name
    assert sharded["spans_accepted"] == 480
    assert (sharded["log_records_accepted"], sharded["log_records_rejected"]) == \
        (single["log_records_accepted"], single["log_records_rejected"]) == (2, 2)
    # one process refuses undecodable gRPC bytes before ingest sees them; the sharded
    # front passes the bytes on, so ingest counts that request (as OTLP/HTTP ones are)
    assert (sharded["requests"], sharded["requests_malformed"]) == (13, 1)
    assert diff_rows(want, got) == []
    calls = {(r["src"], r["dst"]): r["calls"] for r in got["CALLS"]}
    assert calls[("frontend", "checkout")] == 120


@pytest.mark.neo4j
@pytest.mark.slow
def test_worker_killed_mid_batch_loses_nothing_acknowledged(
        store: GraphAdmin, neo4j_settings: Settings, tmp_path) -> None:  # noqa: ANN001
    """SIGKILL one worker, then the other, while exporters send: the front fails the
    requests with a part in the dead worker (UNAVAILABLE, retried), restarts it, and the
    sums in Neo4j equal exactly what was acknowledged."""
    if not neo4j_settings.uses_local_neo4j:
        pytest.skip("needs the password file of the local test Neo4j")
    local = LocalNeo4j(neo4j_settings)
    server = ServerProcess(local.bolt_uri, local.password_file, tmp_path / "server.log", workers=2).start()
    driver = ReplayDriver(small_template(), server.otlp_grpc, str(tmp_path), senders=2, threads=3,
                          timeout_s=30.0, give_up_after_s=120.0).start()
    try:
        workers = server.worker_pids()
        assert len(workers) == 2
        for victim in workers:
            acked = driver.totals()["acked_requests"]
            wait_until(lambda: driver.totals()["acked_requests"] >= acked + 15, 60, "acks before the kill")
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda: len(server.worker_pids()) == 2 and victim not in server.worker_pids(), 30,
                       "the worker restarted")
        acked = driver.totals()["acked_requests"]
        wait_until(lambda: driver.totals()["acked_requests"] >= acked + 10, 60, "acks after the restarts")
        sent = driver.stop(timeout_s=60)
        restarts = server.metrics()["rootgraph_ingest_ingest_worker_restarts"]
    finally:
        driver.stop(timeout_s=5)
        server.stop()
    assert restarts == 2
    assert sent["gave_up_spans"] == 0
    got = store.ingest_totals()
    # a request is one IngestBatch per worker it touched: the spans and entries are exact
    assert (got["spans"], got["entries"]) == (sent["acked_spans"], sent["acked_entries"])
    assert sent["acked_requests"] <= got["batches"] <= 2 * sent["acked_requests"]


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (2, 1), (3, 2), (4, 3), (5, 4), (64, 4)])
def test_auto_workers_leave_the_serving_process_a_cpu(monkeypatch: pytest.MonkeyPatch, cpus: int,
                                                      workers: int) -> None:
    monkeypatch.setattr("rootgraph.config.usable_cpus", lambda: cpus)
    assert Settings().ingest_worker_count == workers
    assert Settings(ingest_workers=2).ingest_worker_count == 2  # an explicit count is kept


@pytest.mark.neo4j
def test_metrics_scrapes_during_writes_do_not_hang_the_workers(
        neo4j_driver, neo4j_settings: Settings, store: GraphAdmin) -> None:  # noqa: ANN001
    """A worker used to answer "stats" on the loop that reads its pipe; stats waits for
    the ingestor's lock, which a group holds until its "written" answer arrives on that
    same pipe: the first scrape during a write hung the worker and every request after
    it (found by bench/scaleout.py polling /metrics). Exports and scrapes at once: every
    export is answered."""
    import threading
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from rootgraph.server.app import App

    store.clear()
    app = App(replace(neo4j_settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                      otlp_http_address="127.0.0.1:0", ingest_workers=2), neo4j_driver).start()
    stop = threading.Event()
    scrapes = [0]

    def scrape() -> None:
        url = f"http://127.0.0.1:{app.ports['otlp_http']}/metrics"
        while not stop.is_set():
            with urllib.request.urlopen(url, timeout=60) as r:  # noqa: S310 - loopback
                assert b"rootgraph_ingest_ingest_workers 2" in r.read()
            scrapes[0] += 1

    try:
        wait_until(lambda: app.health.serving, 30, "health SERVING")
        addr = f"127.0.0.1:{app.ports['otlp_grpc']}"
        requests = [body for _, body in two_service_requests(traces=1_000, per_request=5)]
        scraper = threading.Thread(target=scrape, daemon=True)
        scraper.start()
        with ThreadPoolExecutor(8) as pool:  # _export's 30 s deadline: a hang fails it
            list(pool.map(lambda body: _export(addr, body), requests))
        stop.set()
        scraper.join(60)
        assert not scraper.is_alive() and scrapes[0] > 0
        assert app.stats()["spans_accepted"] > 0
    finally:
        stop.set()
        app.stop(grace_s=1.0)
