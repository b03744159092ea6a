"""``rootgraph serve``: the only place where the stages are wired together.

One process: a gRPC server (``RootCause`` + OTLP ``TraceService``/``LogsService``/``MetricsService`` + health +
reflection) bound to the API address and the OTLP/gRPC address, and the OTLP/HTTP
receiver. Background threads: Neo4j health, pairing expiry (``Ingestor.tick``),
retention pruning and the read-cache warmer (``WindowReader.warm``). ``stop`` drains
in-flight RPCs first (grace period), then flushes the waiting span halves so they are
written, not lost.

``role`` splits it in two processes when ingest and queries should not share a GIL
(issue 8: RankCauses callers slowed sustained ingest): ``ingest`` serves only the OTLP
receivers (plus health), ``api`` only ``RootCause`` (plus health). Neo4j is the only
state they share; the API's read cache stays coherent through the bucket stamps the
ingest process writes (``graph/window_cache.py``). Ingest may use several cores:
``settings.ingest_workers`` processes sharded by trace id (``server/workers.py``); several
ingest replicas need a trace-id-routing Collector in front (README "Scale-out").
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from neo4j import Driver
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from rootgraph import __version__
from rootgraph.config import Settings
from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.alerts import AlertStore
from rootgraph.graph.connect import transaction_retries
from rootgraph.graph.incident_events import IncidentEventLog
from rootgraph.graph.remediation import RemediationLog
from rootgraph.graph.incidents import IncidentStore
from rootgraph.graph.records import GraphDelta
from rootgraph.graph.model_versions import ModelStore
from rootgraph.graph.reader import WindowReader
from rootgraph.graph.writer import GraphWriter
from rootgraph.ingest.group import GroupCommitter
from rootgraph.ingest.pipeline import Ingestor
from rootgraph.server.alerts import AlertReceiver
from rootgraph.server.auth import TokenAuthInterceptor, server_credentials
from rootgraph.server.gc_tuning import tune_gc
from rootgraph.server.detector import Detector, detector_config, load_slos
from rootgraph.server.health import HealthMonitor
from rootgraph.ingest.templates import Templates
from rootgraph.server.otlp import IngestConsumer, LogsServiceServicer, MetricsServiceServicer, TraceServiceServicer
from rootgraph.server.otlp_http import OtlpHttpServer
from rootgraph.server.registry import ModelRegistry
from rootgraph.server.rootcause import RootCauseServicer
from rootgraph.server.services import add_service
from rootgraph.server.telemetry import prometheus_text, setup_telemetry
from rootgraph.server.whatif import WhatIf
from rootgraph.server.wiring import ingest_config
from rootgraph.v1 import rootgraph_pb2

__all__ = ["App", "ROLES", "TlsFiles"]

ROLES = ("all", "ingest", "api")
#: The read-cache warmer's period and how far back it keeps statistics in memory.
WARM_EVERY_S = 15.0
WARM_SPAN_S = 90 * 60

log = logging.getLogger("rootgraph.server")


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None


class _TimedSink:
    """Measures Neo4j write latency around the writer's ``apply_deltas`` (a ``DeltaSink``),
    and sets ``newer_bucket`` once a committed write carried a bucket newer than any
    before it: the moment a bucket may have become complete, which wakes the detector."""

    def __init__(self, writer: GraphWriter) -> None:
        self._writer = writer
        self.count = 0
        self.batches = 0
        self.total_ms = 0.0
        self.max_ms = 0.0
        self.newest_bucket = 0
        self.newer_bucket = threading.Event()

    def apply_deltas(self, deltas: list[GraphDelta]) -> list[bool]:
        t0 = time.perf_counter()
        try:
            applied = self._writer.apply_deltas(deltas)
        finally:
            ms = (time.perf_counter() - t0) * 1000
            self.count += 1
            self.batches += len(deltas)
            self.total_ms += ms
            self.max_ms = max(self.max_ms, ms)
        newest = max((k[1] for d in deltas for k in (*d.service_buckets, *d.log_buckets, *d.metric_buckets)),
                     default=0)
        newest = max(newest, max((k[2] for d in deltas for k in d.edge_buckets), default=0))
        if newest > self.newest_bucket:  # (a race between two writers only wakes once more)
            self.newest_bucket = newest
            self.newer_bucket.set()
        return applied


class App:
    """The running service. ``start()`` binds everything; ``stop()`` drains and closes."""

    def __init__(self, settings: Settings, driver: Driver, *, tls: TlsFiles | None = None,
                 max_workers: int = 16, role: str = "all") -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        self.role = role
        ingest, api = role in ("all", "ingest"), role in ("all", "api")
        self.settings = settings
        db = settings.neo4j_database
        self.admin = GraphAdmin(driver, db)
        self.admin.ensure_schema()
        self.writer = GraphWriter(driver, db)
        self.reader = WindowReader(driver, db, cache_buckets=settings.window_cache_buckets)
        self.incidents = IncidentStore(driver, db)
        self.events = IncidentEventLog(driver, db)
        self.remediation = RemediationLog(driver, db)
        self.alerts = AlertStore(driver, db)
        self._sink = _TimedSink(self.writer)
        # the log template miner resumes from its snapshot in the graph (ingest/templates.py)
        templates = Templates(*self.writer.load_miner_state()) if ingest else None
        self._sharded = ingest and settings.ingest_worker_count > 1
        if self._sharded:  # spans sharded by trace id over worker processes (server/workers.py)
            from rootgraph.server.workers import ShardedIngest

            self.ingestor = self.committer = ShardedIngest(  # type: ignore[assignment]
                settings, settings.ingest_worker_count, sink=self._sink, group_max=settings.ingest_group_max,
                available=lambda: self.health.serving, templates=templates)
        else:
            self.ingestor = Ingestor(self._sink, ingest_config(settings), templates=templates)
            self.committer = GroupCommitter(self.ingestor, max_requests=settings.ingest_group_max,
                                            available=lambda: self.health.serving)
        consumer = IngestConsumer(self.committer)
        # The current (:ModelVersion), looked up every model_check_seconds: promote/rollback
        # from another process need no restart.
        self.ranker = ModelRegistry(ModelStore(driver, settings.neo4j_database),
                                    check_interval_s=settings.model_check_seconds)
        setup_telemetry(self.stats, __version__)

        interceptors = [TokenAuthInterceptor(settings.api_token.value)] if settings.api_token else []
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", settings.max_request_bytes),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ],
            # Back-pressure: beyond this many RPCs in flight, new ones get
            # RESOURCE_EXHAUSTED at once instead of queueing without bound.
            maximum_concurrent_rpcs=max_workers * 4,
        )
        self.whatif = WhatIf()
        # Our services decode their own requests (server/services.py): a malformed
        # protobuf is INVALID_ARGUMENT naming the type, not grpcio's INTERNAL.
        hosted: list[str] = []
        if api:
            hosted.append(add_service(self._grpc, rootgraph_pb2.DESCRIPTOR.services_by_name["RootCause"],
                                      RootCauseServicer(self.reader, self.incidents, self.ranker, self.whatif,
                                                        deployments=self.writer, events=self.events,
                                                        remediation=self.remediation,
                                                        # half the threads: watchers never starve unary calls
                                                        max_watch_streams=max(1, max_workers // 2),
                                                        bucket_seconds=settings.bucket_seconds)))
        if ingest:
            hosted.append(add_service(self._grpc, trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"],
                                      # sharded: the front cuts the bytes by trace id (server/workers.py)
                                      TraceServiceServicer(consumer), raw=self._sharded))
            hosted.append(add_service(self._grpc, logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"],
                                      LogsServiceServicer(consumer)))
            hosted.append(add_service(self._grpc, metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"],
                                      MetricsServiceServicer(consumer)))
        self._health_servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health_servicer, self._grpc)
        reflection.enable_server_reflection((  # only the services this role serves
            *hosted,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ), self._grpc)
        self._api = api
        self.health = HealthMonitor(self._health_servicer, self.admin.ping, ready=not api)

        creds = server_credentials(tls.cert, tls.key, tls.client_ca) if tls else None
        self.ports: dict[str, int] = {}
        binds = ([("api", settings.api_address)] if api else []) + \
            ([("otlp_grpc", settings.otlp_grpc_address)] if ingest else [])
        for name, addr in binds:
            if name == "otlp_grpc" and api and addr == settings.api_address and not addr.endswith(":0"):
                self.ports[name] = self.ports["api"]  # one port serves both
                continue
            port = self._grpc.add_secure_port(addr, creds) if creds else self._grpc.add_insecure_port(addr)
            if port == 0:
                raise OSError(f"{name}: cannot bind {addr} (address in use?)")
            self.ports[name] = port
        self._http: OtlpHttpServer | None = None
        if ingest:
            self._http = OtlpHttpServer(settings.otlp_http_address, consumer,
                                        max_bytes=settings.max_request_bytes,
                                        metrics=lambda: prometheus_text(self.stats()),
                                        healthy=lambda: self.health.serving,
                                        # the same bearer token as the gRPC Export (issue 8)
                                        token=settings.api_token.value if settings.api_token else None,
                                        alerts=self._receive_alerts)
            self.ports["otlp_http"] = self._http.port
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._every, args=(1.0, self._tick), name="pairing-expiry", daemon=True),
            threading.Thread(target=self._every, args=(600.0, self._prune), name="retention", daemon=True),
        ] if ingest else []
        # The detector (server/detector.py) runs beside the API; the lease makes one
        # replica act at a time.
        self.detector: Detector | None = None
        if api and settings.detector_interval_seconds > 0:
            self.detector = Detector(self.reader, self.ranker, self.events, self.alerts, detector_config(settings),
                                     bucket_seconds=settings.bucket_seconds,
                                     lateness_s=settings.detector_lateness_seconds,
                                     lease_s=settings.detector_lease_seconds, slos=load_slos(settings.slo_file))
            # It wakes when ingest in this process commits a newer bucket (the one that
            # may complete a bucket: issue 15's "opened event <= 1 s after the bucket's
            # data"), and polls every interval for data another process writes.
            self._threads.append(threading.Thread(target=self._every, args=(settings.detector_interval_seconds,
                                                                           self._detect, self._sink.newer_bucket),
                                                  name="detector", daemon=True))
        if api and settings.window_cache_buckets:
            self._threads.append(threading.Thread(target=self._every, args=(WARM_EVERY_S, self._warm),
                                                  name="read-cache-warmer", daemon=True))

    def stats(self) -> dict[str, float]:
        out: dict[str, float] = dict(self.ingestor.stats())
        out["neo4j_writes"] = self._sink.count
        out["neo4j_write_batches"] = self._sink.batches
        out["neo4j_write_ms_total"] = round(self._sink.total_ms, 3)
        out["neo4j_write_ms_max"] = round(self._sink.max_ms, 3)
        out["neo4j_transaction_retries"] = transaction_retries()
        if self.detector is not None:  # is detection keeping up with the data?
            out["detector_buckets_judged"] = self.detector.judged
            out["detector_buckets_behind"] = self.detector.behind_buckets
            out["detector_last_bucket_ms"] = round(self.detector.last_bucket_s * 1e3, 1)
        return out

    def _every(self, interval_s: float, fn, wake: threading.Event | None = None) -> None:  # noqa: ANN001
        """Call ``fn`` every ``interval_s``, and at once whenever ``wake`` is set."""
        while True:
            if wake is None:
                if self._stop.wait(interval_s):
                    return
            else:
                wake.wait(interval_s)
                wake.clear()
                if self._stop.is_set():
                    return
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - keep the loop alive; retried next round
                log.warning("%s failed: %s", getattr(fn, "__name__", fn), type(exc).__name__)

    def _receive_alerts(self, body: bytes) -> bytes:
        """``POST /v1/alerts`` (server/alerts.py): stored for whichever replica detects."""
        receiver = AlertReceiver(self.alerts, self.reader.resolve_service,
                                 lambda e: self.reader.entity(e) is not None)
        return receiver.receive(body).to_json()

    def _detect(self) -> None:
        if self.health.serving and self.detector is not None:
            self.detector.step()

    def _tick(self) -> None:
        if self.health.serving:
            self.ingestor.tick()

    def _warm(self) -> None:
        """Keep the recent past's statistics in the read cache (RankCauses' default 45
        minutes, BlastRadius's hour): only bucket times whose stamp changed are re-read."""
        if self.health.serving:
            now = int(time.time())
            span = min(WARM_SPAN_S, self.settings.window_cache_buckets * self.settings.bucket_seconds)
            self.reader.warm(now - span, now + self.settings.bucket_seconds, timeout_s=10.0)

    def _warm_up(self) -> None:
        """Pay at start-up what the first RankCauses / BlastRadius would pay (issue 13:
        1.2-1.5 s first vs 40-300 ms later): the recent past's statistics into the read
        cache, the window queries once (the driver's connections, Neo4j's plans after a
        restart), and the inference path once on a tiny built window (the current
        model's ranker, pgmpy, the what-if model, orjson and protobuf JSON encoding of
        the audit record). Best effort: a failure is logged and health still turns
        SERVING (the periodic warmer retries the cache)."""
        from google.protobuf import json_format

        from rootgraph.graph.records import Window, window_json
        from rootgraph.inference.synthetic import WindowBuilder
        from rootgraph.server.convert import RankQuery, ranking_to_proto

        t0 = time.perf_counter()
        try:
            wb = WindowBuilder(incident_minutes=2, baseline_minutes=4)
            wb.serve("a").serve("b").call("user", "a").call("a", "b").call("b", "db:postgresql/x")
            w = wb.build()
            ranking = self.ranker.rank(w, (), 5)
            self.whatif(w, "b", None)  # a built window has no version: not cached
            window_json({"window": w, "symptoms": [], "top_k": 5})
            json_format.MessageToJson(ranking_to_proto(ranking, "warm-up", RankQuery(w.incident, w.baseline, 5, ())))
            if self.health.check_now():
                self._warm()
                b = self.settings.bucket_seconds
                end = (int(time.time()) // b + 1) * b
                self.reader.read_window(Window(end - 900, end), Window(end - 2700, end - 900), b, timeout_s=10.0)
        except Exception as exc:  # noqa: BLE001 - warm-up only speeds things up
            log.warning("start-up warm-up incomplete: %s", type(exc).__name__)
        log.info("start-up warm-up took %.0f ms", (time.perf_counter() - t0) * 1000)

    def _warm_then_serve(self) -> None:
        try:
            self._warm_up()
        finally:
            self.health.mark_ready()

    def _prune(self) -> None:
        now = time.time()
        cutoff = int(now - self.settings.retention_hours * 3600)
        self.admin.prune(older_than_s=cutoff, batch_ids_older_than_ms=int((now - 86400) * 1000))

    def start(self) -> "App":
        tune_gc()
        self.health.start()  # first: ingest refuses while health has not seen Neo4j yet
        self._grpc.start()
        if self._http is not None:
            self._http.start()
        for t in self._threads:
            t.start()
        if self._api:  # health says SERVING for the API once this is done (server/health.py)
            threading.Thread(target=self._warm_then_serve, name="warm-up", daemon=True).start()
        return self

    def stop(self, grace_s: float = 10.0) -> None:
        """Graceful: refuse new RPCs, finish in-flight ones, then flush waiting halves."""
        self._stop.set()
        self._sink.newer_bucket.set()  # a detector waiting for data stops now
        # The background loops finish the round they are in (bounded by the grace): a
        # loop still reading when the caller closes the driver fails inside the driver
        # (bench/detection.py died of a BufferError from exactly that).
        for t in self._threads:
            if t.is_alive():
                t.join(timeout=grace_s)
        if self.detector is not None:
            self.detector.stop()
        if self._http is not None:
            self._http.stop()
        self._grpc.stop(grace_s).wait()
        self.committer.close()
        try:
            self.ingestor.flush_all()
            self.ingestor.save_templates()
        except Exception as exc:  # noqa: BLE001 - Neo4j gone at shutdown: say so
            log.warning("could not flush waiting span halves or log templates at shutdown: %s",
                        type(exc).__name__)
        self.health.stop()

    def wait(self) -> None:
        self._grpc.wait_for_termination()
