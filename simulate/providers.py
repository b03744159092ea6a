"""One real SDK ``TracerProvider`` per service *version*, switched at deployment times.

A deployment in OpenTelemetry terms is a new process with a new ``Resource`` (a new
``service.version``, usually a new pod), so each (service, version) gets its own
provider; rootgraph detects implicit deployments exactly from that change. Ids come from
a seeded generator so the same scenario seed yields byte-identical output.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from dataclasses import dataclass

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Tracer

from .topology import Service, Topology

__all__ = ["DeploymentEvent", "ProviderPool", "SeededIdGenerator", "resource_attributes"]

_SDK_ATTRS = {
    k: v for k, v in Resource.create({}).attributes.items() if k.startswith("telemetry.sdk.")
}


class SeededIdGenerator(IdGenerator):
    """Random ids from a private seeded RNG (the SDK default uses the global one)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._rng.getrandbits(128) or 1


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    """``service`` runs ``version`` from ``at_ns`` on (replacing ``previous``)."""

    service: str
    version: str
    previous: str
    at_ns: int
    decoy: bool = False
    rollback: bool = False


def _short_hash(text: str, n: int) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:n]


def resource_attributes(svc: Service, version: str) -> dict[str, str]:
    """Resource of one service version: identity, version, host and k8s placement.

    Built directly (not ``Resource.create``) so ``OTEL_RESOURCE_ATTRIBUTES`` and
    ``OTEL_SERVICE_NAME`` in the environment cannot leak into simulated data.
    """
    attrs = dict(_SDK_ATTRS)
    attrs["service.name"] = svc.name
    if svc.namespace:
        attrs["service.namespace"] = svc.namespace
    attrs["service.version"] = version
    if svc.host:
        attrs["host.name"] = svc.host
    if svc.node:
        attrs["k8s.node.name"] = svc.node
        base = svc.pod or svc.name
        # A rollout replaces the pod, so the pod name follows the version (ReplicaSet hash).
        attrs["k8s.pod.name"] = f"{base}-{_short_hash(svc.id + version, 10)}-{_short_hash(version, 5)}"
        if svc.namespace:
            attrs["k8s.namespace.name"] = svc.namespace
    return attrs


class ProviderPool:
    """Hands the engine the tracer of the version a service runs at a given time."""

    def __init__(
        self,
        topology: Topology,
        processor: SpanProcessor,
        deployments: list[DeploymentEvent],
        seed: int,
    ) -> None:
        self._topo = topology
        self._processor = processor
        self._ids = SeededIdGenerator(seed)
        self._providers: dict[tuple[str, str], TracerProvider] = {}
        self._tracers: dict[tuple[str, str], Tracer] = {}
        self._timeline: dict[str, tuple[list[int], list[str]]] = {}
        for ev in sorted(deployments, key=lambda e: e.at_ns):
            times, versions = self._timeline.setdefault(ev.service, ([], []))
            times.append(ev.at_ns)
            versions.append(ev.version)

    def version(self, service: str, t_ns: int) -> str:
        """Version of ``service`` running at ``t_ns``."""
        line = self._timeline.get(service)
        if line is not None:
            i = bisect.bisect_right(line[0], t_ns)
            if i:
                return line[1][i - 1]
        return self._topo.services[service].version

    def tracer(self, service: str, version: str) -> Tracer:
        """The tracer of (service, version), creating its provider on first use."""
        key = (service, version)
        tracer = self._tracers.get(key)
        if tracer is None:
            svc = self._topo.services[service]
            provider = TracerProvider(
                resource=Resource(resource_attributes(svc, version)),
                id_generator=self._ids,
                shutdown_on_exit=False,  # the processor is shared; the pool shuts it down once
            )
            provider.add_span_processor(self._processor)
            self._providers[key] = provider
            tracer = self._tracers[key] = provider.get_tracer("rootgraph.simulate", "0.1.0")
        return tracer

    @property
    def provider_count(self) -> int:
        return len(self._providers)

    def shutdown(self) -> None:
        """Flush and shut the shared processor down once (not once per provider)."""
        self._processor.force_flush()
        self._processor.shutdown()
