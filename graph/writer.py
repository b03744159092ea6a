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

from rootgraph.graph.records import (
    ERROR_SPAN_KEYS, LOG_TEMPLATES_PER_BUCKET, Deployment, EntityKind, GraphDelta, LogCounts, MetricAgg, StatsBucket,
    add_into,
)
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


# Log evidence of one entity-bucket. ``sev``: counts per severity class; ``es``: distinct
# error-span keys (at most $ES, later new keys count in ``eso``); ``tk``/``tn``: template
# ids and counts, at most $K ids (the batch's ids come by descending count; ids new to
# the bucket beyond the bound add to ``other``). SET items run in order: ``tn`` is
# computed from the old ``tk``, then ``tk`` extended.
_MERGE_LOG_BUCKETS = """
UNWIND $rows AS r
MERGE (b:LogBucket {entity: r.e, t: r.t})
  ON CREATE SET b.n = 0, b.sev = r.zero, b.es = [], b.eso = 0, b.tk = [], b.tn = [], b.other = 0
WITH b, r, [k IN r.es WHERE NOT k IN b.es] AS new_es, [k IN r.tk WHERE NOT k IN b.tk] AS new_tk
WITH b, r, new_es, new_tk, $ES - size(b.es) AS es_room, $K - size(b.tk) AS tk_room
SET b.n = b.n + r.n,
    b.sev = [i IN range(0, size(r.sev) - 1) | coalesce(b.sev[i], 0) + r.sev[i]],
    b.eso = b.eso + CASE WHEN size(new_es) > es_room THEN size(new_es) - es_room ELSE 0 END,
    b.es = b.es + new_es[0..es_room],
    b.other = b.other + r.other + reduce(s = 0, k IN new_tk[tk_room..] | s + r.tm[k]),
    b.tn = [j IN range(0, size(b.tk) - 1) | b.tn[j] + coalesce(r.tm[b.tk[j]], 0)]
           + [k IN new_tk[0..tk_room] | r.tm[k]],
    b.tk = b.tk + new_tk[0..tk_room]
"""

_MERGE_LOG_TEMPLATES = """
UNWIND $rows AS r
MERGE (x:LogTemplate {entity: r.e, id: r.id})
SET x.text = r.text, x.last = CASE WHEN x.last > r.t THEN x.last ELSE r.t END
"""

_MERGE_METRIC_BUCKETS = """
UNWIND $rows AS r
MERGE (b:MetricBucket {entity: r.e, t: r.t, metric: r.m})
  ON CREATE SET b.sum = 0.0, b.n = 0, b.min = r.min, b.max = r.max
SET b.sum = b.sum + r.sum, b.n = b.n + r.n,
    b.min = CASE WHEN r.min < b.min THEN r.min ELSE b.min END,
    b.max = CASE WHEN r.max > b.max THEN r.max ELSE b.max END
"""

_SAVE_MINER = "MERGE (s:LogMinerState {id: 'drain3'}) SET s.state = $state, s.at = $now"


def _log_row(e: str, t: int, c: LogCounts) -> dict[str, Any]:
    ranked = sorted(c.templates.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"e": e, "t": t, "n": c.records, "sev": list(c.severity), "zero": [0] * len(c.severity),
            "es": sorted(c.error_spans), "tk": [k for k, _ in ranked], "tm": dict(ranked),
            "other": c.other_templates}


def _metric_row(e: str, t: int, m: str, a: MetricAgg) -> dict[str, Any]:
    return {"e": e, "t": t, "m": m, "sum": a.sum, "n": a.count, "min": a.min, "max": a.max}


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
                add_into(target, key, bucket)
        out.runs_on |= d.runs_on
        for key, at in d.versions.items():
            out.versions[key] = min(at, out.versions.get(key, at))
        out.deployments.extend(d.deployments)
        out.async_edges |= d.async_edges
        out.spans += d.spans
        for lkey, counts in d.log_buckets.items():
            add_into(out.log_buckets, lkey, counts)
        out.log_templates.update(d.log_templates)
        for mkey, agg in d.metric_buckets.items():
            add_into(out.metric_buckets, mkey, agg)
        out.miner_state = d.miner_state or out.miner_state
        out.records += d.records
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
    if delta.log_buckets:
        tx.run(_MERGE_LOG_BUCKETS, K=LOG_TEMPLATES_PER_BUCKET, ES=ERROR_SPAN_KEYS, rows=[
            _log_row(e, t, c) for (e, t), c in delta.log_buckets.items()
        ]).consume()
    if delta.log_templates:
        last = {}
        for (e, t), c in delta.log_buckets.items():
            for tid in c.templates:
                last[(e, tid)] = max(t, last.get((e, tid), t))
        tx.run(_MERGE_LOG_TEMPLATES, rows=[
            {"e": e, "id": tid, "text": text, "t": last.get((e, tid), 0)}
            for (e, tid), text in delta.log_templates.items()
        ]).consume()
    if delta.metric_buckets:
        tx.run(_MERGE_METRIC_BUCKETS, rows=[
            _metric_row(e, t, m, a) for (e, t, m), a in delta.metric_buckets.items()
        ]).consume()
    times = {t for _, t in delta.service_buckets} | {t for _, _, t in delta.edge_buckets} | \
        {t for _, t in delta.log_buckets} | {t for _, t, _ in delta.metric_buckets}
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
                tx.run("UNWIND $rows AS r CREATE (:IngestBatch {id: r.id, at: $now, spans: r.spans, "
                       "records: r.records})",
                       rows=[{"id": d.batch_id, "spans": d.spans, "records": d.records} for d in fresh],
                       now=now).consume()
                _write_rows(tx, merge_deltas(fresh), now)
            # the template miner's snapshot, even if its carrier was a duplicate
            state = next((d.miner_state for d in reversed(deltas) if d.miner_state), "")
            if state:
                tx.run(_SAVE_MINER, state=state, now=now).consume()
            return [any(d is f for f in fresh) for d in deltas]

        return self._write(work)

    def load_miner_state(self) -> tuple[str, int]:
        """The stored log template miner snapshot ("" if none) and the largest stored
        template id (``ingest/templates.py``: ids after a crash must not be reused)."""
        def work(tx: ManagedTransaction) -> tuple[str, int]:
            rec = tx.run("OPTIONAL MATCH (s:LogMinerState {id: 'drain3'}) RETURN s.state AS state").single()
            top = tx.run("MATCH (x:LogTemplate) RETURN coalesce(max(toInteger(x.id)), 0) AS m").single()
            return (rec["state"] or "", int(top["m"]))

        return self._read(work)

    def record_deployment(self, deployment: Deployment) -> bool:
        """Store a deployment; False when its id was already stored (idempotent)."""
        def work(tx: ManagedTransaction) -> bool:
            existed = tx.run("OPTIONAL MATCH (d:Deployment {id: $id}) RETURN d IS NOT NULL AS e",
                             id=deployment.id).single()["e"]
            tx.run(_MERGE_DEPLOYMENTS, rows=[_deployment_row(deployment)],
                   now=int(time.time() * 1000)).consume()
            return not existed

        return self._write(work)
