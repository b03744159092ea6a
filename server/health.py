"""gRPC health checking driven by Neo4j reachability.

A background thread pings Neo4j every ``interval_s`` and flips the standard
``grpc.health.v1`` status of the whole server (``""``) and of ``rootgraph.v1.RootCause``
between SERVING and NOT_SERVING, so load balancers and Kubernetes probes take the
replica out while its storage is unreachable and back in when it returns.

Built with ``ready=False`` (an API process), ``""`` and ``RootCause`` stay NOT_SERVING
until :meth:`mark_ready` -- after the start-up warm-up (``App._warm_up``), so the first
RankCauses a balancer sends does not pay for it (issue 13). The OTLP ``TraceService``
and ``serving`` (what ingest checks) follow Neo4j alone: ingest needs no warm-up.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from grpc_health.v1 import health, health_pb2

__all__ = ["HealthMonitor"]

log = logging.getLogger("rootgraph.server")

_INGEST = "opentelemetry.proto.collector.trace.v1.TraceService"
SERVICES = ("", "rootgraph.v1.RootCause", _INGEST)


class HealthMonitor:
    def __init__(self, servicer: health.HealthServicer, ping: Callable[[], bool],
                 interval_s: float = 2.0, *, ready: bool = True) -> None:
        self._servicer = servicer
        self._ping = ping
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        self.serving = False
        self._ready = threading.Event()
        if ready:
            self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def mark_ready(self) -> None:
        """Warm-up done: the API's statuses may say SERVING from now on."""
        self._ready.set()
        self.check_now()

    def check_now(self) -> bool:
        # Any failure of the probe means "not serving" — it must never end the thread:
        # a dead health thread would leave the status frozen at its last value (issue 8:
        # a Neo4j shutdown raised TimeoutError here and health stayed NOT_SERVING).
        try:
            ok = bool(self._ping())
        except Exception as exc:  # noqa: BLE001 - any probe failure is "unhealthy"
            log.info("health probe failed: %s", type(exc).__name__)
            ok = False
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        for name in SERVICES:
            up = ok and (name == _INGEST or self._ready.is_set())
            self._servicer.set(name, serving if up else not_serving)
        self.serving = ok
        return ok

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.check_now()

    def start(self) -> None:
        self.check_now()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for name in SERVICES:
            self._servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
