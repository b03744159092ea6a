"""Deterministic two-service traffic and graph dumps for the sharding and replica tests.

Each trace is ``frontend`` (SERVER root → CLIENT) → ``checkout`` (SERVER → CLIENT to
PostgreSQL). Each service exports its own spans, many traces per request, as SDKs do,
so a trace's CLIENT and SERVER halves always travel in different requests.
"""

from __future__ import annotations

import random
from typing import Any

from test_ingest_helpers import CLIENT, SERVER, payload, resource_spans, span


def two_service_requests(traces: int = 120, per_request: int = 20, seed: int = 7) -> list[tuple[int, bytes]]:
    """``[(first_trace_of_the_request, payload)]``, frontend and checkout requests mixed."""
    rng = random.Random(seed)
    out: list[tuple[int, bytes]] = []
    for first in range(1, traces + 1, per_request):
        front, checkout = [], []
        for t in range(first, min(first + per_request, traces + 1)):
            start = (t % 50) * 1_000.0 + rng.random() * 100  # spread over 50 s, several buckets
            err = rng.random() < 0.1
            b = 4 * t
            front += [span(t, b + 1, None, SERVER, start, 40, err, "GET /"),
                      span(t, b + 2, b + 1, CLIENT, start + 2, 30, err, "POST checkout",
                           attrs={"server.address": "checkout"})]
            checkout += [span(t, b + 3, b + 2, SERVER, start + 4, 25 + rng.random() * 5, err, "POST /checkout"),
                         span(t, b + 4, b + 3, CLIENT, start + 6, 10 + rng.random() * 10, err and rng.random() < .5,
                              "SELECT", attrs={"db.system": "postgresql", "db.name": "orders"})]
        pair = [(first, payload(resource_spans("frontend", *front))),
                (first, payload(resource_spans("checkout", *checkout)))]
        rng.shuffle(pair)  # sometimes the server halves come first
        out += pair
    return out


def graph_rows(driver: Any, database: str = "neo4j") -> dict[str, list[dict[str, Any]]]:
    """Every statistic ingest writes, in a canonical order: buckets, CALLS, entities."""
    queries = {
        "ServiceBucket": "MATCH (b:ServiceBucket) RETURN properties(b) AS p ORDER BY b.entity, b.t",
        "EdgeBucket": "MATCH (b:EdgeBucket) RETURN properties(b) AS p ORDER BY b.src, b.dst, b.t",
        "CALLS": "MATCH (a)-[c:CALLS]->(b) RETURN {src: a.id, dst: b.id, calls: c.calls, errors: c.errors, "
                 "duration_ms: c.duration_ms} AS p ORDER BY a.id, b.id",
        "Entity": "MATCH (e:Entity) RETURN {id: e.id, kind: e.kind} AS p ORDER BY e.id",
    }
    with driver.session(database=database) as s:
        return {name: [dict(r["p"]) for r in s.run(q)] for name, q in queries.items()}


def diff_rows(want: dict[str, list[dict[str, Any]]], got: dict[str, list[dict[str, Any]]]) -> list[str]:
    """What differs. Integers and lists must be equal byte for byte; float sums (``dur``,
    ``self``, ``duration_ms``) only to 1e-9 relative: addition in another order (other
    groups, other shards) rounds differently in the last bits."""
    problems: list[str] = []
    for name in want:
        a, b = want[name], got[name]
        if len(a) != len(b):
            problems.append(f"{name}: {len(a)} rows vs {len(b)}")
            continue
        for ra, rb in zip(a, b):
            if ra.keys() != rb.keys():
                problems.append(f"{name}: keys {sorted(ra)} vs {sorted(rb)}")
                continue
            for key, va in ra.items():
                vb = rb[key]
                if isinstance(va, float) and isinstance(vb, float):
                    if abs(va - vb) > 1e-9 * max(1.0, abs(va)):
                        problems.append(f"{name} {key}: {va} vs {vb} in {ra}")
                elif va != vb:
                    problems.append(f"{name} {key}: {va!r} vs {vb!r} in {ra}")
    return problems


def route_by_trace(body: bytes, endpoint_for: Any) -> dict[str, bytes]:
    """Split one OTLP request per endpoint the way the Collector's ``loadbalancing``
    exporter does with ``routing_key: traceID``: each span goes to
    ``endpoint_for(trace_id)``, keeping its resource and scope."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest.FromString(body)
    out: dict[str, ExportTraceServiceRequest] = {}
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for sp in ss.spans:
                part = out.setdefault(endpoint_for(sp.trace_id), ExportTraceServiceRequest())
                if not part.resource_spans or part.resource_spans[-1].resource != rs.resource:
                    part.resource_spans.add(resource=rs.resource, schema_url=rs.schema_url)
                dst = part.resource_spans[-1]
                if not dst.scope_spans or dst.scope_spans[-1].scope != ss.scope:
                    dst.scope_spans.add(scope=ss.scope, schema_url=ss.schema_url)
                dst.scope_spans[-1].spans.append(sp)
    return {e: r.SerializeToString() for e, r in out.items()}
