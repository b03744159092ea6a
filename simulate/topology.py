"""The shape of a simulated application: services, operations, calls, backends.

A topology is plain frozen data so that it can be built by hand in a test, shipped as
a named benchmark system (``topologies.py``) or generated at any size, and so that the
traffic engine (``traffic.py``) never has to guess: every call says whether it is
sync or async, retried, or guarded by a fallback.

Entity ids follow rootgraph's identity rules (``graph/records.py``) so that labels written
by the simulator compare directly with what inference ranks:

* a service is ``"<namespace>/<name>"`` when the namespace is set, else ``name``;
* an uninstrumented database is ``"db:<db.system>/<db.namespace>"``, a queue
  ``"queue:<messaging.system>/<messaging.destination.name>"``, an external API
  ``"ext:<server.address>"``;
* infrastructure is ``"host:<host.name>"``, ``"node:<k8s.node.name>"``,
  ``"pod:<k8s.pod.name>"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "Backend",
    "BackendKind",
    "Call",
    "Entry",
    "Operation",
    "Service",
    "Topology",
    "TopologyError",
    "service_id",
]


class TopologyError(ValueError):
    """A topology refers to something it does not define (names the offending field)."""


def service_id(name: str, namespace: str = "") -> str:
    """rootgraph's service id: ``namespace/name`` when a namespace is set."""
    return f"{namespace}/{name}" if namespace else name


@dataclass(frozen=True, slots=True)
class Call:
    """One outbound call made by an operation.

    ``target`` is a service id or a backend key of the same topology. For a service
    target ``operation`` names the callee's operation; for a database it is the
    ``db.operation.name`` (e.g. ``SELECT``); for an external API an HTTP route.

    Attributes:
        probability: chance that a request makes this call at all; < 1 keeps traces of
            large graphs bounded and lets a cycle end without hitting the depth bound.
        fanout: how many times the call is made when it is made (e.g. N item lookups).
        parallel: consecutive parallel calls start together; the caller waits for the
            slowest, so only the slowest one's extra latency reaches the caller.
        fallback: the caller swallows a failure of this call (its own span stays OK),
            which is how real systems hide a callee's errors from upstream.
        retry: a failed attempt is retried once, as a second CLIENT span.
    """

    target: str
    operation: str = ""
    probability: float = 1.0
    fanout: int = 1
    parallel: bool = False
    fallback: bool = False
    retry: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    """An endpoint of a service with its self-time distribution and calls.

    Self (exclusive) time is lognormal with median ``latency_ms`` and shape ``sigma``;
    a span's duration is its self time plus the time spent waiting on its calls.
    ``error_rate`` is the background rate of exclusive errors (never zero in real
    systems, so detectors must cope with noise).
    """

    name: str
    latency_ms: float = 5.0
    sigma: float = 0.35
    error_rate: float = 0.001
    calls: tuple[Call, ...] = ()


class BackendKind(str, Enum):
    """Kinds of uninstrumented peers: seen only through their callers' spans."""

    DATABASE = "database"
    QUEUE = "queue"
    EXTERNAL = "external"


@dataclass(frozen=True, slots=True)
class Backend:
    """An uninstrumented database, queue or external API.

    A database is described by ``system`` (``db.system``/``db.system.name``),
    ``namespace`` (``db.namespace``/``db.name``) and ``address`` (``server.address``).
    A queue uses ``system`` as ``messaging.system`` and ``namespace`` as
    ``messaging.destination.name``; its ``consumers`` (service id, operation) receive
    every published message as a CONSUMER span. An external API only has ``address``.
    """

    key: str
    kind: BackendKind
    system: str = ""
    namespace: str = ""
    address: str = ""
    port: int = 0
    latency_ms: float = 2.0
    sigma: float = 0.3
    error_rate: float = 0.0
    consumers: tuple[tuple[str, str], ...] = ()

    @property
    def id(self) -> str:
        """rootgraph's virtual-node id for this backend."""
        if self.kind is BackendKind.DATABASE:
            return f"db:{self.system}/{self.namespace}"
        if self.kind is BackendKind.QUEUE:
            return f"queue:{self.system}/{self.namespace}"
        return f"ext:{self.address}"


@dataclass(frozen=True, slots=True)
class Service:
    """An instrumented service: its resource identity and its operations.

    ``host`` is ``host.name``; ``node``/``pod`` are the Kubernetes names (empty when
    not on Kubernetes). ``protocol`` (``http`` or ``grpc``) decides span names and
    attributes. The pod name changes with the version, as it does on a rollout.
    """

    name: str
    operations: tuple[Operation, ...]
    namespace: str = ""
    version: str = "1.0.0"
    host: str = ""
    node: str = ""
    pod: str = ""
    protocol: str = "http"

    @property
    def id(self) -> str:
        return service_id(self.name, self.namespace)

    def operation(self, name: str) -> Operation:
        for op in self.operations:
            if op.name == name:
                return op
        raise TopologyError(f"service {self.id!r} has no operation {name!r}")

    def infra_ids(self) -> tuple[str, ...]:
        """Infrastructure entity ids this service runs on (host, node)."""
        ids = []
        if self.host:
            ids.append(f"host:{self.host}")
        if self.node:
            ids.append(f"node:{self.node}")
        return tuple(ids)


@dataclass(frozen=True, slots=True)
class Entry:
    """An operation called by ``user`` (a root span), with its share of traffic."""

    service: str
    operation: str
    weight: float = 1.0


@dataclass(frozen=True)
class Topology:
    """A whole application. Build with :meth:`of` to get id-keyed mappings validated.

    ``max_depth`` bounds call chains: service-level cycles (A→B→A) are legal and the
    engine stops descending past this depth instead of recursing forever.
    """

    name: str
    services: Mapping[str, Service]
    backends: Mapping[str, Backend]
    entries: tuple[Entry, ...]
    max_depth: int = 12
    _by_infra: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(
        cls,
        name: str,
        services: list[Service],
        backends: list[Backend],
        entries: list[Entry],
        max_depth: int = 12,
    ) -> "Topology":
        svc = {s.id: s for s in services}
        if len(svc) != len(services):
            raise TopologyError(f"topology {name!r}: duplicate service ids")
        be = {b.key: b for b in backends}
        if len(be) != len(backends) or set(svc) & set(be):
            raise TopologyError(f"topology {name!r}: backend keys must be unique and not service ids")
        by_infra: dict[str, list[str]] = {}
        for s in services:
            for infra in s.infra_ids():
                by_infra.setdefault(infra, []).append(s.id)
        topo = cls(name, svc, be, tuple(entries), max_depth,
                   {k: tuple(v) for k, v in by_infra.items()})
        topo.validate()
        return topo

    def validate(self) -> None:
        """Check every reference; raises :class:`TopologyError` naming the field."""
        if not self.entries:
            raise TopologyError(f"topology {self.name!r}: entries must not be empty")
        if self.max_depth < 1:
            raise TopologyError(f"topology {self.name!r}: max_depth must be >= 1")
        for e in self.entries:
            self._check_op(e.service, e.operation, "entries")
        for s in self.services.values():
            if s.protocol not in ("http", "grpc"):
                raise TopologyError(f"service {s.id!r}: protocol must be http or grpc")
            for op in s.operations:
                if not (op.latency_ms > 0 and op.sigma >= 0 and 0 <= op.error_rate <= 1):
                    raise TopologyError(f"{s.id} {op.name}: latency_ms/sigma/error_rate out of range")
                for c in op.calls:
                    where = f"{s.id} {op.name} calls"
                    if not (0 < c.probability <= 1 and c.fanout >= 1):
                        raise TopologyError(f"{where} {c.target!r}: probability/fanout out of range")
                    if c.target in self.services:
                        self._check_op(c.target, c.operation, where)
                    elif c.target not in self.backends:
                        raise TopologyError(f"{where}: unknown target {c.target!r}")
        for b in self.backends.values():
            for svc, op in b.consumers:
                self._check_op(svc, op, f"backend {b.key!r} consumers")
            if b.kind is not BackendKind.EXTERNAL and not (b.system and b.namespace):
                raise TopologyError(f"backend {b.key!r}: system and namespace are required")
            if b.kind is BackendKind.EXTERNAL and not b.address:
                raise TopologyError(f"backend {b.key!r}: address is required")

    def _check_op(self, service: str, operation: str, where: str) -> None:
        if service not in self.services:
            raise TopologyError(f"{where}: unknown service {service!r}")
        self.services[service].operation(operation)

    def services_on(self, infra_id: str) -> tuple[str, ...]:
        """Service ids running on ``host:…`` or ``node:…`` (empty if unknown)."""
        return self._by_infra.get(infra_id, ())

    def backend_by_id(self, entity_id: str) -> Backend | None:
        """The backend whose rootgraph id is ``entity_id``, if any."""
        for b in self.backends.values():
            if b.id == entity_id:
                return b
        return None

    def entity_ids(self) -> set[str]:
        """Every entity id the topology can produce (services, backends, infra)."""
        ids = set(self.services) | {b.id for b in self.backends.values()} | set(self._by_infra)
        return ids
