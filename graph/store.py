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

import difflib
import hashlib
import threading
import time
import uuid
from typing import Any

from neo4j import Driver, ManagedTransaction

from rootgraph.graph.errors import NotFound, StoreUnavailable
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
from rootgraph.graph.window_cache import Block, BucketCache

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

_STAMP_BUCKETS = """
UNWIND $ts AS t
MERGE (s:BucketStamp {t: t})
SET s.v = $v
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
    times = {t for _, t in delta.service_buckets} | {t for _, _, t in delta.edge_buckets}
    if times:  # same transaction as the rows: readers' caches see the change (window_cache.py)
        tx.run(_STAMP_BUCKETS, ts=sorted(times), v=uuid.uuid4().hex).consume()
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
    """Typed, idempotent access to the rootgraph graph in one Neo4j database.

    ``cache_buckets``: how many bucket times of statistics ``read_window`` keeps in
    memory (``graph/window_cache.py``; 0 disables it).
    """

    def __init__(self, driver: Driver, database: str = "neo4j", *, timeout_s: float = 30.0,
                 cache_buckets: int = 150) -> None:
        super().__init__(driver, database, timeout_s=timeout_s)
        self.cache = BucketCache(cache_buckets)
        #: the last few assembled windows by version (read_window); insertion-ordered
        self._assembled: dict[str, WindowData] = {}
        self._assembled_lock = threading.Lock()

    def ensure_schema(self) -> None:
        with self._translate():
            ensure_schema(self._driver, self._db)
            with self._driver.session(database=self._db) as session:
                # Graphs written before bucket stamps existed: stamp their buckets once.
                if session.run("MATCH (s:BucketStamp) RETURN count(s) > 0 AS any").single()["any"]:
                    return
                for q in ("MATCH (b:ServiceBucket) RETURN DISTINCT b.t AS t",
                          "MATCH (b:EdgeBucket) RETURN DISTINCT b.t AS t"):
                    ts = [r["t"] for r in session.run(q)]
                    if ts:
                        session.execute_write(lambda tx, ts=ts: tx.run(
                            _STAMP_BUCKETS, ts=ts, v=uuid.uuid4().hex).consume())

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
        self.drop_caches()

    def drop_caches(self) -> None:
        """Forget every cached read (benchmarks measure first calls this way)."""
        self.cache.clear()
        with self._assembled_lock:
            self._assembled.clear()

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

    def resolve_service(self, name: str) -> str:
        """The id of the known service ``name`` names: its id, or its bare ``service.name``
        when that is unique (``orders`` for ``sock-shop/orders``).

        Why: a deployment of a service the graph does not know is linked to nothing and
        never seen by inference, so a typo must fail loudly instead (issue 13). Raises
        :class:`NotFound` naming the close matches, the services an ambiguous bare name
        could mean, or, with neither, that no such service has sent traffic yet.
        """
        def work(tx: ManagedTransaction) -> tuple[list[str], list[tuple[str, str]]]:
            exact = [r[0] for r in tx.run(
                "MATCH (e:Service) WHERE e.id = $name OR e.name = $name RETURN e.id ORDER BY e.id", name=name)]
            if exact:
                return exact, []
            return [], [(r[0], r[1] or r[0]) for r in tx.run("MATCH (e:Service) RETURN e.id, e.name")]

        exact, known = self._read(work)
        if name in exact:
            return name
        if len(exact) == 1:
            return exact[0]
        if exact:
            raise NotFound(f"service: {name!r} names several services, give its namespace: {', '.join(exact)}")
        by_key: dict[str, set[str]] = {}
        for sid, short in known:
            by_key.setdefault(sid, set()).add(sid)
            by_key.setdefault(short, set()).add(sid)
        close = sorted({sid for key in difflib.get_close_matches(name, list(by_key), n=5, cutoff=0.6)
                        for sid in by_key[key]})
        if close:
            raise NotFound(f"service: unknown service {name!r}; did you mean: {', '.join(close[:5])}")
        raise NotFound(f"service: unknown service {name!r}: no service of that name has sent traffic yet "
                       "(deployments are recorded for services seen in traces; retry once it has)")

    def prune(self, older_than_s: int, batch_ids_older_than_ms: int) -> int:
        """Delete statistics buckets before ``older_than_s`` and old batch markers.

        Bucket times touched get a new stamp (a partial delete changes their rows) and
        stamps of times left without rows are deleted, so caches re-read or drop them.
        """
        def work(tx: ManagedTransaction) -> int:
            n = 0
            touched: set[int] = set()
            for q in (
                "MATCH (b:ServiceBucket) WHERE b.t < $t WITH b LIMIT 50000 "
                "WITH b, b.t AS t DETACH DELETE b RETURN count(*) AS n, collect(DISTINCT t) AS ts",
                "MATCH (b:EdgeBucket) WHERE b.t < $t WITH b LIMIT 50000 "
                "WITH b, b.t AS t DETACH DELETE b RETURN count(*) AS n, collect(DISTINCT t) AS ts",
            ):
                rec = tx.run(q, t=older_than_s).single()
                n += rec["n"]
                touched.update(rec["ts"])
            if touched:
                tx.run(_STAMP_BUCKETS, ts=sorted(touched), v=uuid.uuid4().hex).consume()
            tx.run("MATCH (s:BucketStamp) WHERE s.t < $t "
                   "AND NOT EXISTS { MATCH (b:ServiceBucket {t: s.t}) } "
                   "AND NOT EXISTS { MATCH (b:EdgeBucket {t: s.t}) } DELETE s", t=older_than_s).consume()
            n += tx.run(
                "MATCH (b:IngestBatch) WHERE b.at < $at WITH b LIMIT 50000 DELETE b RETURN count(*) AS n",
                at=batch_ids_older_than_ms,
            ).single()["n"]
            return n

        return self._write(work)

    # -- reads --------------------------------------------------------------------

    def _blocks(self, tx: ManagedTransaction, lo: int, hi: int) -> tuple[dict[int, str], dict[int, Block], list[int]]:
        """(stamps, blocks, stale times) of ``[lo, hi)``: cached blocks whose stamp still
        matches, the others read from Neo4j (``graph/window_cache.py``)."""
        # Stamps first: rows read after them are at least as new (module doc).
        stamps = dict(tx.run("MATCH (s:BucketStamp) WHERE s.t >= $lo AND s.t < $hi RETURN s.t, s.v",
                             lo=lo, hi=hi).values())
        blocks: dict[int, Block] = {}
        stale = []
        for t, v in stamps.items():
            b = self.cache.get(t, v)
            if b is None:
                stale.append(t)
            else:
                blocks[t] = b
        if stale:
            svc: dict[int, list] = {t: [] for t in stale}
            edg: dict[int, list] = {t: [] for t in stale}
            for t, rows in tx.run(
                "MATCH (b:ServiceBucket) WHERE b.t IN $ts "
                "RETURN b.t, collect([b.entity, b.n, b.err, b.dur, b.self, b.xerr, b.h])", ts=stale,
            ).values():
                svc[t] = [(e, BucketRow(t, n, err, dur, self_, xerr, tuple(h)))
                          for e, n, err, dur, self_, xerr, h in rows]
            for t, rows in tx.run(
                "MATCH (b:EdgeBucket) WHERE b.t IN $ts "
                "RETURN b.t, collect([b.src, b.dst, b.n, b.err, b.dur, b.h])", ts=stale,
            ).values():
                edg[t] = [(a, d, BucketRow(t, n, err, dur, 0.0, 0, tuple(h)))
                          for a, d, n, err, dur, h in rows]
            for t in stale:
                blocks[t] = Block(stamps[t], tuple(svc[t]), tuple(edg[t]))
        return stamps, blocks, stale

    def _keep(self, lo: int, hi: int, stamps: dict[int, str], blocks: dict[int, Block], stale: list[int]) -> None:
        """Update the cache after a read transaction succeeded."""
        self.cache.discard_missing(lo, hi, set(stamps))
        for t in stale:
            self.cache.put(t, blocks[t])

    def warm(self, start_s: int, end_s: int, *, timeout_s: float | None = None) -> int:
        """Bring the cached statistics of ``[start_s, end_s)`` up to date; returns how many
        bucket times were (re-)read. The API runs this in the background so that a
        RankCauses for the recent past finds its rows in memory."""
        stamps, blocks, stale = self._read(lambda tx: self._blocks(tx, start_s, end_s), timeout_s=timeout_s)
        self._keep(start_s, end_s, stamps, blocks, stale)
        return len(stale)

    def read_window(self, incident: Window, baseline: Window, bucket_seconds: int,
                    *, timeout_s: float | None = None) -> WindowData:
        """Subgraph and statistics of entities active in the baseline or incident window.

        Statistics rows of bucket times whose stamp matches the cache come from memory
        (``graph/window_cache.py``); the others, and the entities, from Neo4j. A window
        whose ``version`` (stamps, entities, hosts, deployments) equals one assembled
        recently is returned as that same (immutable) object.
        """
        lo, hi = min(incident.start_s, baseline.start_s), max(incident.end_s, baseline.end_s)

        def work(tx: ManagedTransaction):  # noqa: ANN202
            stamps, blocks, stale = self._blocks(tx, lo, hi)
            ids = {e for b in blocks.values() for e, _ in b.services}
            ids.update(x for b in blocks.values() for a, d, _ in b.edges for x in (a, d))
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
            return stamps, blocks, stale, ent_rows, infra_rows, dep_rows

        stamps, blocks, stale, ent_rows, infra_rows, dep_rows = self._read(work, timeout_s=timeout_s)
        self._keep(lo, hi, stamps, blocks, stale)
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
        deployments = tuple(_deployment_from(rec[0]) for rec in dep_rows)
        # Rows are fixed by the stamps; entities, hosts and deployments are summarised.
        version = hashlib.blake2b(repr((
            incident, baseline, bucket_seconds, sorted(stamps.items()), sorted(entities),
            sorted(runs_on.items()), sorted(async_edges), [d.id for d in deployments],
        )).encode(), digest_size=16).hexdigest()
        with self._assembled_lock:
            hit = self._assembled.get(version)
        if hit is not None:
            return hit
        service_rows: dict[str, list[BucketRow]] = {}
        edge_rows: dict[tuple[str, str], list[BucketRow]] = {}
        for t in sorted(blocks):  # time order: every series comes out sorted by start
            b = blocks[t]
            for e, row in b.services:
                service_rows.setdefault(e, []).append(row)
            for a, d, row in b.edges:
                edge_rows.setdefault((a, d), []).append(row)
        service_buckets = {e: tuple(rows) for e, rows in service_rows.items()}
        edges = tuple(EdgeInfo(s, d, (s, d) in async_edges, tuple(edge_rows[(s, d)]))
                      for s, d in sorted(edge_rows))
        window = WindowData(incident, baseline, bucket_seconds, entities, service_buckets,
                            edges, runs_on, deployments, version)
        if self.cache.max_blocks:
            with self._assembled_lock:
                self._assembled[version] = window
                while len(self._assembled) > 4:
                    self._assembled.pop(next(iter(self._assembled)))
        return window

    def entity(self, entity_id: str) -> Entity | None:
        rec = self._read(lambda tx: tx.run(
            "MATCH (e:Entity {id: $id}) RETURN e.id, e.name, e.namespace, e.kind", id=entity_id
        ).single())
        return None if rec is None else Entity(rec[0], rec[1] or rec[0], EntityKind(rec[3]), rec[2] or "")

    def first_traffic(self, entity_id: str, from_s: int) -> int | None:
        """Start of the first bucket at or after ``from_s`` with traffic of ``entity_id``:
        its own requests, calls to or from it, or (infrastructure) of a service on it."""
        def work(tx: ManagedTransaction) -> list[int]:
            ids = [entity_id] + tx.run("MATCH (s:Entity)-[:RUNS_ON]->(:Entity {id: $id}) RETURN collect(s.id)",
                                       id=entity_id).single()[0]
            found = [tx.run("MATCH (b:ServiceBucket) WHERE b.t >= $lo AND b.entity IN $ids RETURN min(b.t)",
                            lo=from_s, ids=ids).single()[0],
                     tx.run("MATCH (b:EdgeBucket) WHERE b.t >= $lo AND (b.src IN $ids OR b.dst IN $ids) "
                            "RETURN min(b.t)", lo=from_s, ids=ids).single()[0]]
            return [t for t in found if t is not None]

        found = self._read(work)
        return min(found) if found else None

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
