"""The read side of the graph: windows of statistics for inference, and lookups.

:class:`WindowReader` is what the API reads through (``graph/window_source.py`` has the
protocol it satisfies and an in-memory fake). It keeps statistics rows in memory,
validated against the bucket stamps the writer sets (``graph/window_cache.py``), and
the last few assembled windows by version.

Read transactions only (``execute_read``), constant parameterised queries; driver
errors are translated by the base :class:`~rootgraph.graph.repository.Repository`.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from neo4j import Driver, ManagedTransaction

from rootgraph.graph.records import (
    BucketRow, Deployment, EdgeInfo, Entity, EntityKind, LogRow, MetricRow, Window, WindowData,
)
from rootgraph.graph.repository import Repository
from rootgraph.graph.window_cache import Block, BucketCache
from rootgraph.graph.window_source import resolve_service_name

__all__ = ["WindowReader"]


def _deployment_from(rec: Any) -> Deployment:
    attrs = tuple(tuple(a.split("=", 1)) for a in rec["attributes"] or [])
    return Deployment(
        id=rec["id"], service=rec["service"], version=rec["version"], at_ms=rec["at"],
        previous_version=rec["previous_version"] or "", commit=rec["commit"] or "",
        source=rec["source"] or "", attributes=attrs,  # type: ignore[arg-type]
    )


def _ranked(ids: list[str], counts: list[int]) -> tuple[tuple[str, int], ...]:
    """A LogBucket's template ids and counts as ((id, count), …), by descending count."""
    return tuple(sorted(zip(ids, counts), key=lambda p: (-p[1], p[0])))


class WindowReader(Repository):
    """Windows, entity lookups, the service graph and deployments, read from Neo4j.

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

    def drop_caches(self) -> None:
        """Forget every cached read (benchmarks measure first calls this way)."""
        self.cache.clear()
        with self._assembled_lock:
            self._assembled.clear()

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
                "RETURN b.t, collect([b.src, b.dst, b.n, b.err, b.dur, b.h, "
                "coalesce(b.np, 0), coalesce(b.gap, 0.0)])", ts=stale,
            ).values():
                edg[t] = [(a, d, BucketRow(t, n, err, dur, 0.0, 0, tuple(h), np_, gap))
                          for a, d, n, err, dur, h, np_, gap in rows]
            logs: dict[int, list] = {t: [] for t in stale}
            mets: dict[int, list] = {t: [] for t in stale}
            for t, rows in tx.run(
                "MATCH (b:LogBucket) WHERE b.t IN $ts "
                "RETURN b.t, collect([b.entity, b.n, b.sev, size(b.es) + b.eso, b.tk, b.tn, b.other])", ts=stale,
            ).values():
                logs[t] = [(e, LogRow(t, n, tuple(sev), es, _ranked(tk, tn), other))
                           for e, n, sev, es, tk, tn, other in rows]
            for t, rows in tx.run(
                "MATCH (b:MetricBucket) WHERE b.t IN $ts "
                "RETURN b.t, collect([b.entity, b.metric, b.sum, b.n, b.min, b.max])", ts=stale,
            ).values():
                mets[t] = [(e, m, MetricRow(t, sm, n, lo, hi)) for e, m, sm, n, lo, hi in rows]
            for t in stale:
                blocks[t] = Block(stamps[t], tuple(svc[t]), tuple(edg[t]), tuple(logs[t]), tuple(mets[t]))
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
            # Template texts are not in the stamped blocks (a text can be generalised by a
            # write to another bucket): read fresh, and part of the version below.
            pairs = sorted({(e, tid) for b in blocks.values() for e, row in b.logs for tid, _ in row.templates})
            tpl_rows = tx.run(
                "UNWIND $pairs AS p MATCH (x:LogTemplate {entity: p[0], id: p[1]}) RETURN x.entity, x.id, x.text",
                pairs=[list(p) for p in pairs],
            ).values() if pairs else []
            return stamps, blocks, stale, ent_rows, infra_rows, dep_rows, tpl_rows

        stamps, blocks, stale, ent_rows, infra_rows, dep_rows, tpl_rows = self._read(work, timeout_s=timeout_s)
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
            sorted(runs_on.items()), sorted(async_edges), [d.id for d in deployments], sorted(tpl_rows),
        )).encode(), digest_size=16).hexdigest()
        with self._assembled_lock:
            hit = self._assembled.get(version)
        if hit is not None:
            return hit
        service_rows: dict[str, list[BucketRow]] = {}
        edge_rows: dict[tuple[str, str], list[BucketRow]] = {}
        log_rows: dict[str, list[LogRow]] = {}
        metric_rows: dict[str, dict[str, list[MetricRow]]] = {}
        for t in sorted(blocks):  # time order: every series comes out sorted by start
            b = blocks[t]
            for e, row in b.services:
                service_rows.setdefault(e, []).append(row)
            for a, d, row in b.edges:
                edge_rows.setdefault((a, d), []).append(row)
            for e, lrow in b.logs:
                log_rows.setdefault(e, []).append(lrow)
            for e, m, mrow in b.metrics:
                metric_rows.setdefault(e, {}).setdefault(m, []).append(mrow)
        service_buckets = {e: tuple(rows) for e, rows in service_rows.items()}
        edges = tuple(EdgeInfo(s, d, (s, d) in async_edges, tuple(edge_rows[(s, d)]))
                      for s, d in sorted(edge_rows))
        templates: dict[str, dict[str, str]] = {}
        for e, tid, text in sorted(tpl_rows):
            templates.setdefault(e, {})[tid] = text
        window = WindowData(incident, baseline, bucket_seconds, entities, service_buckets,
                            edges, runs_on, deployments, version,
                            log_buckets={e: tuple(rows) for e, rows in sorted(log_rows.items())},
                            metric_buckets={e: {m: tuple(rs) for m, rs in sorted(ms.items())}
                                            for e, ms in sorted(metric_rows.items())},
                            log_templates=templates)
        if self.cache.max_blocks:
            with self._assembled_lock:
                self._assembled[version] = window
                while len(self._assembled) > 4:
                    self._assembled.pop(next(iter(self._assembled)))
        return window

    def bucket_range(self) -> tuple[int, int] | None:
        """(first, newest) bucket start with statistics, or None (no data yet); from the
        bucket stamps (one per bucket time with rows, ``graph/window_cache.py``)."""
        rec = self._read(lambda tx: tx.run(
            "MATCH (s:BucketStamp) RETURN min(s.t) AS lo, max(s.t) AS hi").single())
        return None if rec is None or rec["hi"] is None else (int(rec["lo"]), int(rec["hi"]))

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

    def resolve_service(self, name: str) -> str:
        """The id of the known service ``name`` means (``resolve_service_name``)."""
        rows = self._read(lambda tx: tx.run("MATCH (e:Service) RETURN e.id, e.name").values())
        return resolve_service_name(name, ((sid, short or sid) for sid, short in rows))

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

    def deployments(self, since_ms: int = 0, until_ms: int | None = None) -> list[Deployment]:
        until = until_ms if until_ms is not None else 2**62
        rows = self._read(lambda tx: tx.run(
            "MATCH (d:Deployment) WHERE d.at >= $lo AND d.at < $hi RETURN d ORDER BY d.at",
            lo=since_ms, hi=until,
        ).values())
        return [_deployment_from(r[0]) for r in rows]
