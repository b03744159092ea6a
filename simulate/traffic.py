"""The traffic engine: walks a request through the topology emitting real SDK spans.

Every span is a real ``opentelemetry.sdk`` span started with ``Tracer.start_span(...,
start_time=, kind=)`` under the parent's context (``trace.set_span_in_context``) and
ended with an explicit ``end_time``: the clock is simulated, so an hour of traffic
takes seconds and the output is reproducible from the seed.

Timing model: a SERVER/CONSUMER span's duration is its lognormal self time (split
before/after its calls) plus its calls; sequential calls add up, a run of consecutive
``parallel`` calls costs its slowest member. A CLIENT span encloses the callee's SERVER
span plus network time. A failed call aborts the caller's remaining calls and fails
the caller, unless the call has a fallback (the caller's span stays OK) — so errors
travel upstream the way they do in real services, and stop where they are handled.

Each walk returns ``(end_ns, error, fault_error, fault_delay_ns)``; the last two are
the per-span counterfactual that ``truth.py`` turns into the blast-radius truth.
"""

from __future__ import annotations

import math
import random

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from .ambient import Ambient
from .faults import FaultEffects
from .providers import ProviderPool
from .topology import Backend, BackendKind, Call, Entry, Operation, Service, Topology
from .truth import TruthRecorder

__all__ = ["TrafficEngine"]

_ERROR = Status(StatusCode.ERROR)
_MS = 1_000_000
_RETRY_BACKOFF_NS = 10 * _MS
_Outcome = tuple[int, bool, bool, int]


def _call_groups(calls: tuple[Call, ...]) -> list[list[Call]]:
    """Split calls into sequential steps; consecutive parallel calls share a step."""
    groups: list[list[Call]] = []
    for c in calls:
        if c.parallel and groups and groups[-1][0].parallel:
            groups[-1].append(c)
        else:
            groups.append([c])
    return groups


class TrafficEngine:
    """Generates the spans of one request at a time (single-threaded, deterministic)."""

    def __init__(self, topology: Topology, pool: ProviderPool, effects: FaultEffects,
                 recorder: TruthRecorder, rng: random.Random, ambient: Ambient | None = None) -> None:
        self._topo, self._pool, self._fx = topology, pool, effects
        self._amb = ambient
        self._rec, self._rng = recorder, rng
        self._groups = {
            (s.id, op.name): _call_groups(op.calls)
            for s in topology.services.values() for op in s.operations
        }
        self._mu = {(s.id, op.name): math.log(op.latency_ms) for s in topology.services.values()
                    for op in s.operations}
        # Attribute dicts are built once per (entity, operation); the SDK copies them.
        self._attrs: dict[tuple, dict] = {}
        self.spans = 0

    # -- entry ---------------------------------------------------------------------
    def request(self, entry: Entry, start_ns: int) -> _Outcome:
        """One user request: a root SERVER span at ``entry`` and everything below it."""
        return self._serve(entry.service, entry.operation, None, start_ns, 1, SpanKind.SERVER, None)

    # -- services ------------------------------------------------------------------
    def _serve(self, sid: str, op_name: str, parent_ctx, start: int, depth: int,
               kind: SpanKind, queue: Backend | None) -> _Outcome:
        svc = self._topo.services[sid]
        op = svc.operation(op_name)
        version = self._pool.version(sid, start)
        tracer = self._pool.tracer(sid, version)
        span = tracer.start_span(_server_name(svc, op, kind, queue), context=parent_ctx, kind=kind,
                                 start_time=start, attributes=_server_attrs(self._attrs, svc, op, kind, queue))
        ctx = trace.set_span_in_context(span)
        err_p, factor, add_ms = self._fx.service(sid, version, start)
        # healthy noise (ambient.py) is part of the baseline, never of the fault
        noise_err, noise_lat = self._amb.service(sid, start) if self._amb is not None else (1.0, 1.0)
        rng = self._rng
        base_self = rng.lognormvariate(self._mu[(sid, op_name)], op.sigma) * _MS * noise_lat
        self_ns = base_self * factor + add_ms * _MS
        fault_delay = self_ns - base_self
        t = start + int(self_ns * 0.4)
        error = fault_error = False
        if depth < self._topo.max_depth:
            for group in self._groups[(sid, op_name)]:
                t, g_err, g_ferr, g_delay = self._group(tracer, group, ctx, t, depth)
                fault_delay += g_delay
                if g_err:
                    error, fault_error = True, g_ferr
                    break
        if not error:
            u = rng.random()
            if u < err_p:
                error = fault_error = True
            elif u < err_p + op.error_rate * noise_err:
                error = True
        end = t + int(self_ns * 0.6)
        if error:
            span.set_status(_ERROR)
        if kind is SpanKind.SERVER:
            span.set_attribute(*_status_attr(svc, error))
        span.end(end_time=end)
        self.spans += 1
        self._rec.record(sid, start, end - start, error, fault_error, int(fault_delay))
        return end, error, fault_error, int(fault_delay)

    def _group(self, tracer: Tracer, group: list[Call], ctx, t: int, depth: int) -> _Outcome:
        """Run one step of calls; returns (end, failed, fault-caused, fault delay)."""
        rng = self._rng
        if len(group) == 1:
            call = group[0]
            failed = ffail = False
            delay = 0
            if call.probability < 1.0 and rng.random() >= call.probability:
                return t, False, False, 0
            for _ in range(call.fanout):
                t, err, ferr, d = self._call(tracer, call, ctx, t, depth)
                delay += d
                if err and not call.fallback:
                    failed, ffail = True, ferr
                    break
            return t, failed, ffail, delay
        # Parallel step: every call starts at t; the step ends with the slowest one, and
        # the fault's share of the step is actual minus counterfactual slowest.
        end, cf_end = t, t
        failed = ffail = False
        for call in group:
            if call.probability < 1.0 and rng.random() >= call.probability:
                continue
            for _ in range(call.fanout):
                e, err, ferr, d = self._call(tracer, call, ctx, t, depth)
                end, cf_end = max(end, e), max(cf_end, e - d)
                if err and not call.fallback and not failed:
                    failed, ffail = True, ferr
        return end, failed, ffail, end - cf_end

    # -- calls ---------------------------------------------------------------------
    def _call(self, tracer: Tracer, call: Call, ctx, t: int, depth: int) -> _Outcome:
        """One call with its optional retry; the outcome is the last attempt's."""
        end, err, ferr, delay = self._attempt(tracer, call, ctx, t, depth)
        if err and call.retry:
            first_dur = end - t
            end, err, ferr2, delay2 = self._attempt(tracer, call, ctx, end + _RETRY_BACKOFF_NS, depth)
            # A retry forced by a fault error is entirely the fault's time.
            delay = (first_dur + _RETRY_BACKOFF_NS if ferr else delay) + delay2
            ferr = ferr2
        return end, err, ferr, delay

    def _attempt(self, tracer: Tracer, call: Call, ctx, t: int, depth: int) -> _Outcome:
        target = self._topo.services.get(call.target)
        rng = self._rng
        if target is not None:
            span = tracer.start_span(_client_name(target, call), context=ctx, kind=SpanKind.CLIENT,
                                     start_time=t, attributes=_client_attrs(self._attrs, target, call))
            net = int((0.2 + 0.3 * rng.random()) * _MS)
            s_end, err, ferr, delay = self._serve(
                target.id, call.operation, trace.set_span_in_context(span), t + net, depth + 1,
                SpanKind.SERVER, None)
            end = s_end + net
            if err:
                span.set_status(_ERROR)
            span.set_attribute(*_status_attr(target, err))
            span.end(end_time=end)
            self.spans += 1
            return end, err, ferr, delay
        backend = self._topo.backends[call.target]
        err_p, add_ms = self._fx.backend(backend.key, t)
        base = rng.lognormvariate(math.log(backend.latency_ms), backend.sigma) * _MS
        dur = int(base + add_ms * _MS)
        u = rng.random()
        ferr = u < err_p
        err = ferr or u < err_p + backend.error_rate
        end = t + dur
        kind = SpanKind.PRODUCER if backend.kind is BackendKind.QUEUE else SpanKind.CLIENT
        span = tracer.start_span(_backend_name(backend, call), context=ctx, kind=kind,
                                 start_time=t, attributes=_backend_attrs(self._attrs, backend, call))
        if err:
            span.set_status(_ERROR)
            span.set_attribute("error.type", "timeout" if add_ms else "unavailable")
        span.end(end_time=end)
        self.spans += 1
        delay = end - t - int(base)
        self._rec.record(backend.id, t, dur, err, ferr, delay)
        if backend.kind is BackendKind.QUEUE and not err:
            # Async: consumers run later under the producer's context; their outcome
            # never reaches the producer's caller.
            pctx = trace.set_span_in_context(span)
            for sid, op in backend.consumers:
                lag = int(rng.lognormvariate(math.log(3.0), 0.5) * _MS + add_ms * _MS)
                self._serve(sid, op, pctx, end + lag, depth + 1, SpanKind.CONSUMER, backend)
        return end, err, ferr, delay


# -- span names and attributes (semantic conventions) ----------------------------------
def _address(svc: Service) -> str:
    return f"{svc.name}.{svc.namespace}" if svc.namespace else svc.name


def _split_http(op_name: str) -> tuple[str, str]:
    method, _, route = op_name.partition(" ")
    return (method, route) if route else ("GET", op_name)


def _server_name(svc: Service, op: Operation, kind: SpanKind, queue: Backend | None) -> str:
    if kind is SpanKind.CONSUMER and queue is not None:
        return f"process {queue.namespace}"
    return op.name


def _server_attrs(cache: dict, svc: Service, op: Operation, kind: SpanKind, queue: Backend | None) -> dict:
    key = ("s", svc.id, op.name, kind, queue.key if queue else "")
    attrs = cache.get(key)
    if attrs is None:
        if queue is not None:
            attrs = {"messaging.system": queue.system, "messaging.destination.name": queue.namespace,
                     "messaging.operation.type": "process", "messaging.operation.name": op.name}
        elif svc.protocol == "grpc":
            rpc_service, _, method = op.name.partition("/")
            attrs = {"rpc.system": "grpc", "rpc.service": rpc_service, "rpc.method": method,
                     "server.address": _address(svc), "server.port": 50051}
        else:
            method, route = _split_http(op.name)
            attrs = {"http.request.method": method, "http.route": route, "url.path": route,
                     "url.scheme": "http", "server.address": _address(svc), "server.port": 8080}
        cache[key] = attrs
    return attrs


def _status_attr(svc: Service, error: bool) -> tuple[str, int]:
    if svc.protocol == "grpc":
        return "rpc.grpc.status_code", 2 if error else 0
    return "http.response.status_code", 500 if error else 200


def _client_name(target: Service, call: Call) -> str:
    return call.operation if target.protocol == "grpc" else _split_http(call.operation)[0]


def _client_attrs(cache: dict, target: Service, call: Call) -> dict:
    key = ("c", target.id, call.operation)
    attrs = cache.get(key)
    if attrs is None:
        if target.protocol == "grpc":
            rpc_service, _, method = call.operation.partition("/")
            attrs = {"rpc.system": "grpc", "rpc.service": rpc_service, "rpc.method": method,
                     "server.address": _address(target), "server.port": 50051,
                     "peer.service": target.name}
        else:
            method, route = _split_http(call.operation)
            attrs = {"http.request.method": method, "server.address": _address(target),
                     "server.port": 8080, "url.full": f"http://{_address(target)}:8080{route}",
                     "peer.service": target.name}
        cache[key] = attrs
    return attrs


def _backend_name(b: Backend, call: Call) -> str:
    if b.kind is BackendKind.DATABASE:
        return f"{call.operation or 'query'} {b.namespace}"
    if b.kind is BackendKind.QUEUE:
        return f"publish {b.namespace}"
    return _split_http(call.operation or "GET /")[0]


def _backend_attrs(cache: dict, b: Backend, call: Call) -> dict:
    key = ("b", b.key, call.operation)
    attrs = cache.get(key)
    if attrs is None:
        addr = b.address or b.key
        if b.kind is BackendKind.DATABASE:
            # Both the stable (db.system.name, db.namespace) and the older (db.system,
            # db.name) conventions, as real instrumentations emit either.
            attrs = {"db.system": b.system, "db.system.name": b.system, "db.namespace": b.namespace,
                     "db.name": b.namespace, "db.operation.name": call.operation or "query",
                     "server.address": addr, "server.port": b.port or 5432}
        elif b.kind is BackendKind.QUEUE:
            attrs = {"messaging.system": b.system, "messaging.destination.name": b.namespace,
                     "messaging.operation.type": "publish", "messaging.operation.name": "publish",
                     "server.address": addr, "server.port": b.port or 5672}
        else:
            method, route = _split_http(call.operation or "GET /")
            attrs = {"http.request.method": method, "server.address": addr,
                     "server.port": b.port or 443, "url.full": f"https://{addr}{route}"}
        cache[key] = attrs
    return attrs
