"""Faults to inject, and the per-span effect lookup the traffic engine asks.

A :class:`Fault` names its target with a rootgraph entity id, so the ground truth in
the labels is exactly the id inference is expected to rank first. Intensity depends on
the kind (see :data:`DEFAULT_INTENSITY`):

=================  ==================================================================
kind               intensity
=================  ==================================================================
error              probability that a span of the service fails on its own
latency            milliseconds added to the service's self time
backend_error      probability that a CLIENT/PRODUCER span to the db/queue/ext fails
backend_latency    milliseconds added to every call to the db/queue/ext
host               factor applied to the self time of every service on the host/node
bad_deploy         probability that a span of the *new version* fails on its own
=================  ==================================================================

Fault times are offsets (seconds) from the start of the incident period, so a suite
case reads the same whatever the scenario's epoch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .topology import Topology

__all__ = ["DEFAULT_INTENSITY", "Fault", "FaultEffects", "FaultError", "FaultKind", "bump_version"]


class FaultKind(str, Enum):
    ERROR = "error"
    LATENCY = "latency"
    BACKEND_ERROR = "backend_error"
    BACKEND_LATENCY = "backend_latency"
    HOST = "host"
    BAD_DEPLOY = "bad_deploy"


DEFAULT_INTENSITY: dict[FaultKind, float] = {
    FaultKind.ERROR: 0.3,
    FaultKind.LATENCY: 250.0,
    FaultKind.BACKEND_ERROR: 0.3,
    FaultKind.BACKEND_LATENCY: 250.0,
    FaultKind.HOST: 6.0,
    FaultKind.BAD_DEPLOY: 0.4,
}

_SERVICE_KINDS = (FaultKind.ERROR, FaultKind.LATENCY, FaultKind.BAD_DEPLOY)
_BACKEND_KINDS = (FaultKind.BACKEND_ERROR, FaultKind.BACKEND_LATENCY)


class FaultError(ValueError):
    """A fault that does not fit its topology (message names the field)."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault; ``onset_s``/``duration_s`` are relative to incident start.

    ``duration_s=None`` lasts until the scenario ends. ``version`` is the new version of
    a bad deployment (default: the current one with its patch number bumped); when the
    fault has a duration, the service is rolled back at its end.
    """

    entity: str
    kind: FaultKind
    intensity: float | None = None
    onset_s: float = 0.0
    duration_s: float | None = None
    version: str = ""

    @property
    def strength(self) -> float:
        return DEFAULT_INTENSITY[self.kind] if self.intensity is None else self.intensity


def bump_version(version: str) -> str:
    """Next patch version: ``1.4.2`` → ``1.4.3``; anything else gets ``-next``."""
    m = re.fullmatch(r"(.*?)(\d+)", version)
    return f"{m.group(1)}{int(m.group(2)) + 1}" if m else f"{version}-next"


@dataclass(frozen=True, slots=True)
class _Active:
    start_ns: int
    end_ns: int
    error_p: float = 0.0
    factor: float = 1.0
    add_ms: float = 0.0
    version: str = ""  # only for bad deployments: the effect follows the version


#: Returned for the vast majority of spans, which no fault touches.
NO_EFFECT = (0.0, 1.0, 0.0)


class FaultEffects:
    """Answers "what does the fault do to this span?" in O(faults on that entity).

    Built once per scenario from absolute fault windows; the engine calls
    :meth:`service` for every SERVER/CONSUMER span and :meth:`backend` for every call to
    an uninstrumented backend.
    """

    def __init__(self, topology: Topology, faults: list[tuple[Fault, int, int, str]]) -> None:
        """``faults``: (fault, start ns, end ns, new version for bad deploys)."""
        self._svc: dict[str, list[_Active]] = {}
        self._backend: dict[str, list[_Active]] = {}
        for fault, start, end, version in faults:
            self._add(topology, fault, start, end, version)

    def _add(self, topo: Topology, fault: Fault, start: int, end: int, version: str) -> None:
        kind, x = fault.kind, fault.strength
        if x < 0 or (kind in (FaultKind.ERROR, FaultKind.BACKEND_ERROR, FaultKind.BAD_DEPLOY) and x > 1):
            raise FaultError(f"fault {fault.entity!r}: intensity {x} out of range for {kind.value}")
        if kind in _SERVICE_KINDS:
            if fault.entity not in topo.services:
                raise FaultError(f"fault entity {fault.entity!r}: not a service of {topo.name!r}")
            act = {
                FaultKind.ERROR: _Active(start, end, error_p=x),
                FaultKind.LATENCY: _Active(start, end, add_ms=x),
                FaultKind.BAD_DEPLOY: _Active(start, end, error_p=x, version=version),
            }[kind]
            self._svc.setdefault(fault.entity, []).append(act)
        elif kind in _BACKEND_KINDS:
            backend = topo.backend_by_id(fault.entity)
            if backend is None:
                raise FaultError(f"fault entity {fault.entity!r}: not a backend of {topo.name!r}")
            act = (_Active(start, end, error_p=x) if kind is FaultKind.BACKEND_ERROR
                   else _Active(start, end, add_ms=x))
            self._backend.setdefault(backend.key, []).append(act)
        else:  # host / node saturation
            victims = topo.services_on(fault.entity)
            if not victims:
                raise FaultError(f"fault entity {fault.entity!r}: no service runs on it")
            if x < 1:
                raise FaultError(f"fault {fault.entity!r}: host factor must be >= 1")
            for svc in victims:
                self._svc.setdefault(svc, []).append(_Active(start, end, factor=x))

    def service(self, service: str, version: str, t_ns: int) -> tuple[float, float, float]:
        """(extra exclusive-error probability, self-time factor, self-time added ms)."""
        acts = self._svc.get(service)
        if not acts:
            return NO_EFFECT
        err, factor, add = 0.0, 1.0, 0.0
        for a in acts:
            if a.start_ns <= t_ns < a.end_ns and (not a.version or a.version == version):
                err = 1.0 - (1.0 - err) * (1.0 - a.error_p)
                factor *= a.factor
                add += a.add_ms
        return err, factor, add

    def backend(self, key: str, t_ns: int) -> tuple[float, float]:
        """(failure probability, added ms) of a call to backend ``key`` at ``t_ns``."""
        acts = self._backend.get(key)
        if not acts:
            return 0.0, 0.0
        err, add = 0.0, 0.0
        for a in acts:
            if a.start_ns <= t_ns < a.end_ns:
                err = 1.0 - (1.0 - err) * (1.0 - a.error_p)
                add += a.add_ms
        return err, add
