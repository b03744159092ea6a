"""The write side of the graph: ingest's sink and recorded deployments.

:class:`GraphWriter` is the :class:`~rootgraph.ingest.sink.DeltaSink` of the ingest
stage and the servicer's deployment recorder; nothing here reads statistics back.

Habits (DESIGN.md, STYLE.md #7):

* managed transactions only (``execute_write``), short-lived sessions;
* every query is a constant string with parameters — no label, type or property name
  is ever built from input (labels per entity kind come from a fixed table);
* writes are ``UNWIND $rows … MERGE`` batches, additive, and guarded by an
  ``(:IngestBatch {id})`` node created in the same transaction, so a batch re-sent
  after a lost acknowledgement is applied once;
* every transaction that adds statistics stamps their bucket times
  (``graph/window_cache.py``), so readers' caches see the change;
* driver errors are translated to :mod:`rootgraph.graph.errors` by the base
  :class:`~rootgraph.graph.repository.Repository`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from neo4j import ManagedTransaction

from rootgraph.graph.records import Deployment, EntityKind, GraphDelta, StatsBucket
from rootgraph.graph.repository import Repository
from rootgraph.graph.window_cache import STAMP_BUCKETS

__all__ = ["GraphWriter", "merge_deltas"]

#: Secondary label per entity kind, for the Browser style and readable queries. Set in
#: the same statement as the MERGE (one round trip, not one per kind): labels cannot be
#: parameters, so each kind has a constant ``FOREACH … SET`` branch.
_KIND_LABELS: dict[EntityKind, str] = {
    EntityKind.SERVICE: "Service", EntityKind.DATABASE: "Database", EntityKind.MESSAGING: "Queue",
    EntityKind.EXTERNAL: "External", EntityKind.USER: "User", EntityKind.HOST: "Infra:Host",
    EntityKind.NODE: "Infra:K8sNode", EntityKind.POD: "Infra:Pod",
}

_MERGE_ENTITIES = """
UNWIND $rows AS r
MERGE (e:Entity {id: r.id})
  ON CREATE SET e.name = r.name, e.namespace = r.namespace, e.kind = r.kind,
                e.first_seen = $now
SET e.last_seen = $now
""" + "".join(
    f"FOREACH (_ IN CASE WHEN r.kind = '{kind.value}' THEN [1] ELSE [] END | SET e:{label})\n"
    for kind, label in _KIND_LABELS.items()
)

_MERGE_EDGES = """
UNWIND $rows AS r
MATCH (a:Entity {id: r.src}), (b:Entity {id: r.dst})
MERGE (a)-[c:CALLS]->(b)
  ON CREATE SET c.calls = 0, c.errors = 0, c.duration_ms = 0.0, c.first_seen = $now,
                c.async = r.async
SET c.calls = c.calls + r.n, c.errors = c.errors + r.err,
    c.duration_ms = c.duration_ms + r.dur, c.last_seen = $now
"""

_MERGE_SERVICE_BUCKETS = """
UNWIND $rows AS r
MERGE (b:ServiceBucket {entity: r.e, t: r.t})
  ON CREATE SET b.n = 0, b.err = 0, b.dur = 0.0, b.self = 0.0, b.xerr = 0, b.h = r.zero
SET b.n = b.n + r.n, b.err = b.err + r.err, b.dur = b.dur + r.dur,
    b.self = b.self + r.self, b.xerr = b.xerr + r.xerr,
    b.h = [i IN range(0, size(r.h) - 1) | coalesce(b.h[i], 0) + r.h[i]]
"""

_MERGE_EDGE_BUCKETS = """
UNWIND $rows AS r
MERGE (b:EdgeBucket {src: r.src, dst: r.dst, t: r.t})
  ON CREATE SET b.n = 0, b.err = 0, b.dur = 0.0, b.h = r.zero
SET b.n = b.n + r.n, b.err = b.err + r.err, b.dur = b.dur + r.dur,
    b.np = coalesce(b.np, 0) + r.np, b.gap = coalesce(b.gap, 0.0) + r.gap,
    b.h = [i IN range(0, size(r.h) - 1) | coalesce(b.h[i], 0) + r.h[i]]
"""

_MERGE_RUNS_ON = """
UNWIND $rows AS r
MATCH (s:Entity {id: r.svc}), (h:Entity {id: r.infra})
MERGE (s)-[:RUNS_ON]->(h)
"""

# A version never seen before on a service is an implicit deployment, timestamped at
# the first span of the new version. Versions already seen (a rolling update sends
# both for a while) change nothing, so the rule is idempotent and order-insensitive.
_VERSIONS = """
UNWIND $rows AS r
MATCH (s:Entity {id: r.svc})
WITH s, r, s.version AS old, coalesce(s.versions, []) AS seen
WHERE NOT r.version IN seen
SET s.versions = seen + r.version, s.version = r.version, s.version_since = r.at
WITH s, r, old
WHERE old IS NOT NULL
  // A CI/CD system may have reported this rollout already: one event, one record.
  AND NOT EXISTS { MATCH (x:Deployment {service: r.svc, version: r.version}) }
MERGE (d:Deployment {id: 'span-version:' + r.svc + ':' + r.version})
  ON CREATE SET d.service = r.svc, d.version = r.version, d.previous_version = old,
                d.at = r.at, d.commit = '', d.source = 'span-version', d.attributes = []
MERGE (d)-[:OF]->(s)
"""

_MERGE_DEPLOYMENTS = """
UNWIND $rows AS r
MERGE (s:Entity {id: r.service})
  ON CREATE SET s.name = r.service, s.namespace = '', s.kind = 'service', s:Service,
                s.first_seen = $now, s.last_seen = $now
MERGE (d:Deployment {id: r.id})
  ON CREATE SET d.service = r.service, d.version = r.version,
                d.previous_version = r.previous_version, d.at = r.at, d.commit = r.commit,
                d.source = r.source, d.attributes = r.attributes
MERGE (d)-[:OF]->(s)
WITH d, r
// The explicit record (commit, attributes) replaces an implicit one of the same rollout.
OPTIONAL MATCH (x:Deployment {service: r.service, version: r.version, source: 'span-version'})
WHERE x.id <> d.id
DETACH DELETE x
RETURN count(*) AS n
"""


def _bucket_row(b: StatsBucket) -> dict[str, Any]:
    return {
        "n": b.requests, "err": b.errors, "dur": b.duration_ms_sum, "self": b.self_ms_sum,
        "xerr": b.exclusive_errors, "h": list(b.histogram), "zero": [0] * len(b.histogram),
        "np": b.paired, "gap": b.gap_ms_sum,
    }


def _deployment_row(d: Deployment) -> dict[str, Any]:
    return {
        "id": d.id, "service": d.service, "version": d.version, "at": d.at_ms,
        "previous_version": d.previous_version, "commit": d.commit, "source": d.source,
        "attributes": [f"{k}={v}" for k, v in d.attributes],
    }

def merge_deltas(deltas: list[GraphDelta]) -> GraphDelta:
    """Sum several deltas into one (every statistic is additive; versions keep the first)."""
    if len(deltas) == 1:
        return deltas[0]
    out = GraphDelta(batch_id="group")
    for d in deltas:
        out.entities.update(d.entities)
        for target, source in ((out.edges, d.edges), (out.service_buckets, d.service_buckets),
                               (out.edge_buckets, d.edge_buckets)):
            for key, bucket in source.items():
                total = target.get(key)
                if total is None:
                    target[key] = bucket.copy()
                else:
                    total.add(bucket)
        out.runs_on |= d.runs_on
        for key, at in d.versions.items():
            out.versions[key] = min(at, out.versions.get(key, at))
        out.deployments.extend(d.deployments)
        out.async_edges |= d.async_edges
        out.spans += d.spans
    return out


def _write_rows(tx: ManagedTransaction, delta: GraphDelta, now: int) -> None:
    """The additive MERGE statements of one (possibly merged) delta."""
    if delta.entities:
        tx.run(_MERGE_ENTITIES, now=now, rows=[
            {"id": e.id, "name": e.name, "namespace": e.namespace, "kind": e.kind.value}
            for e in delta.entities.values()
        ]).consume()
    if delta.edges:
        tx.run(_MERGE_EDGES, now=now, rows=[
            {"src": s, "dst": d, "n": b.requests, "err": b.errors, "dur": b.duration_ms_sum,
             "async": (s, d) in delta.async_edges}
            for (s, d), b in delta.edges.items()
        ]).consume()
    if delta.service_buckets:
        tx.run(_MERGE_SERVICE_BUCKETS, rows=[
            {"e": e, "t": t, **_bucket_row(b)} for (e, t), b in delta.service_buckets.items()
        ]).consume()
    if delta.edge_buckets:
        tx.run(_MERGE_EDGE_BUCKETS, rows=[
            {"src": s, "dst": d, "t": t, **_bucket_row(b)} for (s, d, t), b in delta.edge_buckets.items()
        ]).consume()
    times = {t for _, t in delta.service_buckets} | {t for _, _, t in delta.edge_buckets}
    if times:  # same transaction as the rows: readers' caches see the change (window_cache.py)
        tx.run(STAMP_BUCKETS, ts=sorted(times), v=uuid.uuid4().hex).consume()
    if delta.runs_on:
        tx.run(_MERGE_RUNS_ON, rows=[{"svc": s, "infra": i} for s, i in sorted(delta.runs_on)]).consume()
    if delta.versions:
        tx.run(_VERSIONS, rows=sorted(
            ({"svc": s, "version": v, "at": at} for (s, v), at in delta.versions.items()),
            key=lambda r: r["at"],
        )).consume()
    if delta.deployments:
        tx.run(_MERGE_DEPLOYMENTS, rows=[_deployment_row(d) for d in delta.deployments], now=now).consume()


class GraphWriter(Repository):
    """Idempotent, additive writes: ingest batches (group commit) and deployments."""

    def apply_deltas(self, deltas: list[GraphDelta]) -> list[bool]:
        """Write several ingest batches in ONE transaction (group commit).

        Why: a transaction's fixed cost (a dozen round trips, the commit's fsync) is
        most of the write time for one request's delta, and the rows of many deltas
        merge (same entities, edges and buckets) — so N requests cost about one.
        Members whose ``batch_id`` is already stored are skipped (False), the others
        are summed and written with an ``(:IngestBatch)`` node each (True).
        """
        now = int(time.time() * 1000)
        ids = [d.batch_id for d in deltas]

        def work(tx: ManagedTransaction) -> list[bool]:
            seen = set(tx.run(
                "UNWIND $ids AS id MATCH (b:IngestBatch {id: id}) RETURN collect(b.id) AS seen", ids=ids,
            ).single()["seen"])
            fresh: list[GraphDelta] = []
            for d in deltas:
                if d.batch_id not in seen:
                    seen.add(d.batch_id)  # a batch repeated within the group counts once
                    fresh.append(d)
            if fresh:
                tx.run("UNWIND $rows AS r CREATE (:IngestBatch {id: r.id, at: $now, spans: r.spans})",
                       rows=[{"id": d.batch_id, "spans": d.spans} for d in fresh], now=now).consume()
                _write_rows(tx, merge_deltas(fresh), now)
            return [any(d is f for f in fresh) for d in deltas]

        return self._write(work)

    def record_deployment(self, deployment: Deployment) -> bool:
        """Store a deployment; False when its id was already stored (idempotent)."""
        def work(tx: ManagedTransaction) -> bool:
            existed = tx.run("OPTIONAL MATCH (d:Deployment {id: $id}) RETURN d IS NOT NULL AS e",
                             id=deployment.id).single()["e"]
            tx.run(_MERGE_DEPLOYMENTS, rows=[_deployment_row(deployment)],
                   now=int(time.time() * 1000)).consume()
            return not existed

        return self._write(work)
