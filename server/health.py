"""gRPC health checking driven by Neo4j reachability.

A background thread pings Neo4j every ``interval_s`` and flips the standard
``grpc.health.v1`` status of the whole server (``""``) and of ``rootgraph.v1.RootCause``
between SERVING and NOT_SERVING, so load balancers and Kubernetes probes take the
replica out while its storage is unreachable and back in when it returns.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from grpc_health.v1 import health, health_pb2

__all__ = ["HealthMonitor"]

log = logging.getLogger("rootgraph.server")

SERVICES = ("", "rootgraph.v1.RootCause", "opentelemetry.proto.collector.trace.v1.TraceService")


class HealthMonitor:
    def __init__(self, servicer: health.HealthServicer, ping: Callable[[], bool],
                 interval_s: float = 2.0) -> None:
        self._servicer = servicer
        self._ping = ping
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        self.serving = False

    def check_now(self) -> bool:
        # Any failure of the probe means "not serving" — it must never end the thread:
        # a dead health thread would leave the status frozen at its last value (issue 8:
        # a Neo4j shutdown raised TimeoutError here and health stayed NOT_SERVING).
        try:
            ok = bool(self._ping())
        except Exception as exc:  # noqa: BLE001 - any probe failure is "unhealthy"
            log.info("health probe failed: %s", type(exc).__name__)
            ok = False
        status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in SERVICES:
            self._servicer.set(name, status)
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
