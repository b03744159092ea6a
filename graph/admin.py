"""Administration of the graph: schema, retention, health, counts, resets.

:class:`GraphAdmin` serves start-up (``ensure_schema``), the retention thread
(``prune``), the health probe (``ping``), and the checks of tests, benchmarks and the
demo (``counts``, ``ingest_totals``, ``clear``). Driver errors are translated by the base
:class:`~rootgraph.graph.repository.Repository`.
"""

from __future__ import annotations

import uuid

from neo4j import ManagedTransaction

from rootgraph.graph.errors import StoreUnavailable
from rootgraph.graph.repository import Repository
from rootgraph.graph.schema import ensure_schema
from rootgraph.graph.window_cache import STAMP_BUCKETS

__all__ = ["GraphAdmin"]


class GraphAdmin(Repository):
    """Schema, pruning, health and counts of one Neo4j database."""

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
                            STAMP_BUCKETS, ts=ts, v=uuid.uuid4().hex).consume())

    def ping(self) -> bool:
        """True when Neo4j answers a trivial query (used by health checking)."""
        try:
            self._read(lambda tx: tx.run("RETURN 1").consume(), timeout_s=3.0)
        except (StoreUnavailable, TimeoutError):  # e.g. "Terminated" while Neo4j shuts down
            return False
        return True

    def clear(self) -> None:
        """Delete every node and relationship (tests, benchmarks and the demo's reset only)."""
        # CALL … IN TRANSACTIONS needs an implicit (auto-commit) transaction.
        with self._translate(), self._driver.session(database=self._db) as session:
            session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
        # Readers' caches need no telling: the stamps are gone with the rows, so their
        # blocks no longer validate (graph/window_cache.py).

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
                "MATCH (b:LogBucket) WHERE b.t < $t WITH b LIMIT 50000 "
                "WITH b, b.t AS t DETACH DELETE b RETURN count(*) AS n, collect(DISTINCT t) AS ts",
                "MATCH (b:MetricBucket) WHERE b.t < $t WITH b LIMIT 50000 "
                "WITH b, b.t AS t DETACH DELETE b RETURN count(*) AS n, collect(DISTINCT t) AS ts",
                # templates no bucket has counted since the cutoff (text is quoted from these)
                "MATCH (b:LogTemplate) WHERE b.last < $t WITH b LIMIT 50000 "
                "WITH b, null AS t DETACH DELETE b RETURN count(*) AS n, collect(t) AS ts",
            ):
                rec = tx.run(q, t=older_than_s).single()
                n += rec["n"]
                touched.update(rec["ts"])
            if touched:
                tx.run(STAMP_BUCKETS, ts=sorted(touched), v=uuid.uuid4().hex).consume()
            tx.run("MATCH (s:BucketStamp) WHERE s.t < $t "
                   "AND NOT EXISTS { MATCH (b:ServiceBucket {t: s.t}) } "
                   "AND NOT EXISTS { MATCH (b:EdgeBucket {t: s.t}) } "
                   "AND NOT EXISTS { MATCH (b:LogBucket {t: s.t}) } "
                   "AND NOT EXISTS { MATCH (b:MetricBucket {t: s.t}) } DELETE s", t=older_than_s).consume()
            n += tx.run(
                "MATCH (b:IngestBatch) WHERE b.at < $at WITH b LIMIT 50000 DELETE b RETURN count(*) AS n",
                at=batch_ids_older_than_ms,
            ).single()["n"]
            return n

        return self._write(work)

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
                ("log_buckets", "MATCH (n:LogBucket) RETURN count(n)"),
                ("metric_buckets", "MATCH (n:MetricBucket) RETURN count(n)"),
                ("log_templates", "MATCH (n:LogTemplate) RETURN count(n)"),
                ("deployments", "MATCH (n:Deployment) RETURN count(n)"),
                ("incidents", "MATCH (n:Incident) RETURN count(n)"),
            ):
                out[label] = tx.run(q).single()[0]
            return out

        return self._read(work)
