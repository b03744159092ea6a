"""The repository layer: every read and write of the dependency graph.

Habits (DESIGN.md, STYLE.md #7):

* managed transactions only (``execute_read`` / ``execute_write``), short-lived sessions;
* every query is a constant string with parameters — no label, type or property name
  is ever built from input (labels per entity kind come from a fixed table);
* writes are ``UNWIND $rows … MERGE`` batches, additive, and guarded by an
  ``(:IngestBatch {id})`` node created in the same transaction, so a batch re-sent
  after a lost acknowledgement is applied once;
* driver errors are translated to :mod:`rootgraph.graph.errors` here and nowhere else.
"""

from __future__ import annotations

import time
from typing import Any

from neo4j import ManagedTransaction

from rootgraph.graph.errors import StoreUnavailable
from rootgraph.graph.model import (
    BucketRow,
    Deployment,
    EdgeInfo,
    Entity,
    EntityKind,
    GraphDelta,
    StatsBucket,
    Window,
    WindowData,
)
from rootgraph.graph.repository import Repository
from rootgraph.graph.schema import ensure_schema

__all__ = ["GraphStore", "merge_deltas"]

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
    }


def _deployment_row(d: Deployment) -> dict[str, Any]:
    return {
        "id": d.id, "service": d.service, "version": d.version, "at": d.at_ms,
        "previous_version": d.previous_version, "commit": d.commit, "source": d.source,
        "attributes": [f"{k}={v}" for k, v in d.attributes],
    }


def _deployment_from(rec: Any) -> Deployment:
    attrs = tuple(tuple(a.split("=", 1)) for a in rec["attributes"] or [])
    return Deployment(
        id=rec["id"], service=rec["service"], version=rec["version"], at_ms=rec["at"],
        previous_version=rec["previous_version"] or "", commit=rec["commit"] or "",
        source=rec["source"] or "", attributes=attrs,  # type: ignore[arg-type]
    )


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
    if delta.runs_on:
        tx.run(_MERGE_RUNS_ON, rows=[{"svc": s, "infra": i} for s, i in sorted(delta.runs_on)]).consume()
    if delta.versions:
        tx.run(_VERSIONS, rows=sorted(
            ({"svc": s, "version": v, "at": at} for (s, v), at in delta.versions.items()),
            key=lambda r: r["at"],
        )).consume()
    if delta.deployments:
        tx.run(_MERGE_DEPLOYMENTS, rows=[_deployment_row(d) for d in delta.deployments], now=now).consume()


class GraphStore(Repository):
    """Typed, idempotent access to the rootgraph graph in one Neo4j database."""

    def ensure_schema(self) -> None:
        with self._translate():
            ensure_schema(self._driver, self._db)

    def ping(self) -> bool:
        """True when Neo4j answers a trivial query (used by health checking)."""
        try:
            self._read(lambda tx: tx.run("RETURN 1").consume(), timeout_s=3.0)
        except (StoreUnavailable, TimeoutError):  # e.g. "Terminated" while Neo4j shuts down
            return False
        return True

    def clear(self) -> None:
        """Delete every node and relationship (tests and ``demo --reset`` only)."""
        # CALL … IN TRANSACTIONS needs an implicit (auto-commit) transaction.
        with self._translate(), self._driver.session(database=self._db) as session:
            session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()

    # -- ingest -------------------------------------------------------------------

    def apply_delta(self, delta: GraphDelta) -> bool:
        """Write one ingest batch; False when ``delta.batch_id`` was applied before."""
        return self.apply_deltas([delta])[0]

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

    def prune(self, older_than_s: int, batch_ids_older_than_ms: int) -> int:
        """Delete statistics buckets before ``older_than_s`` and old batch markers."""
        def work(tx: ManagedTransaction) -> int:
            n = 0
            for q in (
                "MATCH (b:ServiceBucket) WHERE b.t < $t WITH b LIMIT 50000 DETACH DELETE b RETURN count(*) AS n",
                "MATCH (b:EdgeBucket) WHERE b.t < $t WITH b LIMIT 50000 DETACH DELETE b RETURN count(*) AS n",
            ):
                n += tx.run(q, t=older_than_s).single()["n"]
            n += tx.run(
                "MATCH (b:IngestBatch) WHERE b.at < $at WITH b LIMIT 50000 DELETE b RETURN count(*) AS n",
                at=batch_ids_older_than_ms,
            ).single()["n"]
            return n

        return self._write(work)

    # -- reads --------------------------------------------------------------------

    def read_window(self, incident: Window, baseline: Window, bucket_seconds: int,
                    *, timeout_s: float | None = None) -> WindowData:
        """Subgraph and statistics of entities active in the baseline or incident window."""
        lo, hi = min(incident.start_s, baseline.start_s), max(incident.end_s, baseline.end_s)

        def work(tx: ManagedTransaction) -> WindowData:
            svc_rows = tx.run(
                "MATCH (b:ServiceBucket) WHERE b.t >= $lo AND b.t < $hi "
                "RETURN b.entity AS e, collect([b.t, b.n, b.err, b.dur, b.self, b.xerr, b.h]) AS rows",
                lo=lo, hi=hi,
            ).values()
            edge_rows = tx.run(
                "MATCH (b:EdgeBucket) WHERE b.t >= $lo AND b.t < $hi "
                "RETURN b.src AS s, b.dst AS d, collect([b.t, b.n, b.err, b.dur, b.h]) AS rows",
                lo=lo, hi=hi,
            ).values()
            ids = {e for e, _ in svc_rows} | {s for s, _, _ in edge_rows} | {d for _, d, _ in edge_rows}
            ent_rows = tx.run(
                "MATCH (e:Entity) WHERE e.id IN $ids "
                "OPTIONAL MATCH (e)-[:RUNS_ON]->(h:Infra) "
                "RETURN e.id, e.name, e.namespace, e.kind, collect(h.id), "
                "       [(e)-[c:CALLS]->(x) WHERE c.async | x.id]",
                ids=list(ids),
            ).values()
            infra_ids = {h for row in ent_rows for h in row[4]}
            infra_rows = tx.run(
                "MATCH (e:Entity) WHERE e.id IN $ids RETURN e.id, e.name, e.namespace, e.kind",
                ids=list(infra_ids),
            ).values()
            dep_rows = tx.run(
                "MATCH (d:Deployment) WHERE d.at >= $lo AND d.at < $hi RETURN d ORDER BY d.at",
                lo=lo * 1000, hi=hi * 1000,
            ).values()
            return ent_rows, infra_rows, svc_rows, edge_rows, dep_rows

        ent_rows, infra_rows, svc_rows, edge_rows, dep_rows = self._read(work, timeout_s=timeout_s)
        entities: dict[str, Entity] = {}
        runs_on: dict[str, tuple[str, ...]] = {}
        async_edges: set[tuple[str, str]] = set()
        for eid, name, ns, kind, hosts, async_to in ent_rows:
            entities[eid] = Entity(eid, name or eid, EntityKind(kind), ns or "")
            if hosts:
                runs_on[eid] = tuple(sorted(hosts))
            async_edges.update((eid, x) for x in async_to)
        for eid, name, ns, kind in infra_rows:
            entities[eid] = Entity(eid, name or eid, EntityKind(kind), ns or "")
        service_buckets = {
            e: tuple(sorted((BucketRow(t, n, err, dur, self_, xerr, tuple(h))
                             for t, n, err, dur, self_, xerr, h in rows), key=lambda r: r.start_s))
            for e, rows in svc_rows
        }
        edges = tuple(
            EdgeInfo(s, d, (s, d) in async_edges, tuple(sorted(
                (BucketRow(t, n, err, dur, 0.0, 0, tuple(h)) for t, n, err, dur, h in rows),
                key=lambda r: r.start_s)))
            for s, d, rows in sorted(edge_rows)
        )
        deployments = tuple(_deployment_from(rec[0]) for rec in dep_rows)
        return WindowData(incident, baseline, bucket_seconds, entities, service_buckets,
                          edges, runs_on, deployments)

    def entity(self, entity_id: str) -> Entity | None:
        rec = self._read(lambda tx: tx.run(
            "MATCH (e:Entity {id: $id}) RETURN e.id, e.name, e.namespace, e.kind", id=entity_id
        ).single())
        return None if rec is None else Entity(rec[0], rec[1] or rec[0], EntityKind(rec[3]), rec[2] or "")

    def service_graph(self) -> tuple[list[Entity], list[tuple[str, str, int, int, bool]], list[tuple[str, str]]]:
        """All entities, CALLS edges (src, dst, calls, errors, async) and RUNS_ON pairs."""
        def work(tx: ManagedTransaction):  # noqa: ANN202
            ents = tx.run("MATCH (e:Entity) RETURN e.id, e.name, e.namespace, e.kind ORDER BY e.id").values()
            calls = tx.run(
                "MATCH (a:Entity)-[c:CALLS]->(b:Entity) "
                "RETURN a.id, b.id, c.calls, c.errors, coalesce(c.async, false) ORDER BY a.id, b.id"
            ).values()
            runs = tx.run("MATCH (a:Entity)-[:RUNS_ON]->(b:Entity) RETURN a.id, b.id ORDER BY a.id").values()
            return ents, calls, runs

        ents, calls, runs = self._read(work)
        return (
            [Entity(i, n or i, EntityKind(k), ns or "") for i, n, ns, k in ents],
            [(a, b, int(c), int(e), bool(x)) for a, b, c, e, x in calls],
            [(a, b) for a, b in runs],
        )

    def deployments(self, since_ms: int = 0, until_ms: int | None = None) -> list[Deployment]:
        until = until_ms if until_ms is not None else 2**62
        rows = self._read(lambda tx: tx.run(
            "MATCH (d:Deployment) WHERE d.at >= $lo AND d.at < $hi RETURN d ORDER BY d.at",
            lo=since_ms, hi=until,
        ).values())
        return [_deployment_from(r[0]) for r in rows]

    def ingest_totals(self) -> dict[str, int]:
        """What ingest has committed: span batches, their spans, entry spans, calls.

        Why: "nothing lost, nothing doubled" is checked against these (benchmarks, load
        and fault drills). ``spans`` sums ``IngestBatch.spans`` (markers are pruned after a
        day); ``entries`` sums ``ServiceBucket.n`` (one per SERVER/CONSUMER/root span).
        """
        def work(tx: ManagedTransaction) -> dict[str, int]:
            b = tx.run("MATCH (b:IngestBatch) WHERE b.id STARTS WITH 'spans:' "
                       "RETURN count(b) AS n, coalesce(sum(b.spans), 0) AS spans").single()
            e = tx.run("MATCH (b:ServiceBucket) RETURN coalesce(sum(b.n), 0) AS n").single()
            c = tx.run("MATCH ()-[c:CALLS]->() RETURN coalesce(sum(c.calls), 0) AS n").single()
            return {"batches": b["n"], "spans": b["spans"], "entries": e["n"], "calls": c["n"]}

        return self._read(work)

    def counts(self) -> dict[str, int]:
        """Node counts per main label (the demo and tests print/check these)."""
        def work(tx: ManagedTransaction) -> dict[str, int]:
            out = {}
            for label, q in (
                ("entities", "MATCH (n:Entity) RETURN count(n)"),
                ("calls", "MATCH ()-[c:CALLS]->() RETURN count(c)"),
                ("service_buckets", "MATCH (n:ServiceBucket) RETURN count(n)"),
                ("edge_buckets", "MATCH (n:EdgeBucket) RETURN count(n)"),
                ("deployments", "MATCH (n:Deployment) RETURN count(n)"),
                ("incidents", "MATCH (n:Incident) RETURN count(n)"),
            ):
                out[label] = tx.run(q).single()[0]
            return out

        return self._read(work)
