"""Model versions: ``(:ModelVersion)`` nodes, one per learned parameter set.

``{version, created, parent, status: candidate|current|retired, params_json,
metrics_json, previous, promoted, retired_at, history}``. ``params_json`` is written
once (``CREATE`` under the uniqueness constraint) and never changed, so a recorded
incident's ``model_version`` always names the exact parameters that produced it; only
the lifecycle fields move. Exactly one version is ``current``:

* ``promote(v)``: v becomes current, the old current is retired, and ``v.previous``
  remembers which version v replaced;
* ``rollback()``: the current version is retired and its ``previous`` is current again
  (a stack: rolling back twice goes back two promotions).

Both run in one transaction that first writes a lock property on every version node,
so two concurrent promotions serialise instead of leaving two current versions (the
nodes are few: one per training run). Every lifecycle change appends to ``history``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from neo4j import ManagedTransaction

from rootgraph.graph.errors import Conflict, NotFound
from rootgraph.graph.repository import Repository

__all__ = ["ModelConflict", "ModelStore", "ModelVersionRecord"]

STATUSES = ("candidate", "current", "retired")


class ModelConflict(Conflict):
    """A lifecycle change that the versions' state does not allow (not retryable)."""


@dataclass(frozen=True)
class ModelVersionRecord:
    version: str
    created_ms: int
    parent: str
    status: str
    params_json: str
    metrics_json: str = "{}"
    previous: str = ""
    promoted_ms: int = 0
    history: tuple[str, ...] = ()


_LOCK = "MATCH (m:ModelVersion) SET m.lock = coalesce(m.lock, 0) + 1"


def _record(m) -> ModelVersionRecord:  # noqa: ANN001 - a neo4j Node
    return ModelVersionRecord(
        version=m["version"], created_ms=m["created"], parent=m["parent"] or "", status=m["status"],
        params_json=m["params_json"], metrics_json=m["metrics_json"] or "{}",
        previous=m.get("previous") or "", promoted_ms=m.get("promoted") or 0,
        history=tuple(m.get("history") or ()),
    )


class ModelStore(Repository):
    """Versions of the model's parameters and which one is current."""

    def ensure_default(self, version: str, params_json: str) -> None:
        """Create the built-in version once; it is current when nothing else is."""
        now = int(time.time() * 1000)

        def work(tx: ManagedTransaction) -> None:
            tx.run(_LOCK).consume()
            has_current = tx.run("MATCH (:ModelVersion {status: 'current'}) RETURN 1 LIMIT 1").single() is not None
            tx.run(
                "MERGE (m:ModelVersion {version: $v}) "
                "ON CREATE SET m.created = $now, m.parent = '', m.params_json = $p, m.metrics_json = '{}', "
                "  m.status = $status, m.history = ['created ' + toString($now)]",
                v=version, p=params_json, now=now, status="retired" if has_current else "current").consume()

        self._write(work)

    def create(self, version: str, parent: str, params_json: str, metrics_json: str = "{}") -> ModelVersionRecord:
        """Store a new candidate; ModelConflict if the version name is taken (never overwritten)."""
        now = int(time.time() * 1000)

        def work(tx: ManagedTransaction) -> bool:
            if tx.run("MATCH (m:ModelVersion {version: $v}) RETURN 1", v=version).single():
                return False
            tx.run("CREATE (:ModelVersion {version: $v, created: $now, parent: $parent, status: 'candidate', "
                   "params_json: $p, metrics_json: $metrics, history: ['created ' + toString($now)]})",
                   v=version, now=now, parent=parent, p=params_json, metrics=metrics_json).consume()
            return True

        if not self._write(work):
            raise ModelConflict(f"version: {version!r} exists; versions are never overwritten")
        return self.get(version)

    def get(self, version: str) -> ModelVersionRecord:
        rec = self._read(lambda tx: tx.run("MATCH (m:ModelVersion {version: $v}) RETURN m", v=version).single())
        if rec is None:
            raise NotFound(f"version: no model version {version!r}")
        return _record(rec["m"])

    def current(self) -> ModelVersionRecord | None:
        rec = self._read(lambda tx: tx.run(
            "MATCH (m:ModelVersion {status: 'current'}) RETURN m ORDER BY m.promoted DESC LIMIT 1").single())
        return None if rec is None else _record(rec["m"])

    def current_version(self) -> str | None:
        """Only the name: the per-request check of the server (cheap, index-backed)."""
        rec = self._read(lambda tx: tx.run(
            "MATCH (m:ModelVersion {status: 'current'}) RETURN m.version AS v "
            "ORDER BY m.promoted DESC LIMIT 1").single())
        return None if rec is None else rec["v"]

    def list(self) -> list[ModelVersionRecord]:
        rows = self._read(lambda tx: tx.run("MATCH (m:ModelVersion) RETURN m ORDER BY m.created, m.version").values())
        return [_record(r[0]) for r in rows]

    def set_metrics(self, version: str, metrics_json: str) -> None:
        """Evaluation results are bookkeeping, not parameters: they may be refreshed."""
        self._write(lambda tx: tx.run("MATCH (m:ModelVersion {version: $v}) SET m.metrics_json = $j",
                                      v=version, j=metrics_json).consume())

    def promote(self, version: str) -> ModelVersionRecord:
        now = int(time.time() * 1000)

        def work(tx: ManagedTransaction) -> str | None:
            tx.run(_LOCK).consume()
            target = tx.run("MATCH (m:ModelVersion {version: $v}) RETURN m.status AS s", v=version).single()
            if target is None:
                return "missing"
            if target["s"] == "current":
                return "already current"
            cur = tx.run("MATCH (c:ModelVersion {status: 'current'}) RETURN c.version AS v").single()
            prev = cur["v"] if cur is not None else ""
            tx.run("MATCH (c:ModelVersion {status: 'current'}) "
                   "SET c.status = 'retired', c.retired_at = $now, "
                   "    c.history = coalesce(c.history, []) + ('retired by promotion of ' + $v + ' ' + toString($now))",
                   v=version, now=now).consume()
            tx.run("MATCH (m:ModelVersion {version: $v}) "
                   "SET m.status = 'current', m.promoted = $now, m.previous = $prev, "
                   "    m.history = coalesce(m.history, []) + ('promoted ' + toString($now))",
                   v=version, now=now, prev=prev).consume()
            return None

        problem = self._write(work)
        if problem == "missing":
            raise NotFound(f"version: no model version {version!r}")
        if problem:
            raise ModelConflict(f"version: {version!r} is {problem}")
        return self.get(version)

    def rollback(self) -> ModelVersionRecord:
        """Back to the version the current one replaced; returns the new current."""
        now = int(time.time() * 1000)

        def work(tx: ManagedTransaction) -> tuple[str | None, str]:
            tx.run(_LOCK).consume()
            cur = tx.run("MATCH (c:ModelVersion {status: 'current'}) RETURN c.version AS v, c.previous AS p").single()
            if cur is None:
                return "no current version", ""
            if not cur["p"]:
                return f"{cur['v']} replaced no earlier version", ""
            if tx.run("MATCH (m:ModelVersion {version: $p}) RETURN 1", p=cur["p"]).single() is None:
                return f"previous version {cur['p']} is missing", ""
            tx.run("MATCH (c:ModelVersion {version: $v}) SET c.status = 'retired', c.retired_at = $now, "
                   "c.history = coalesce(c.history, []) + ('rolled back ' + toString($now))",
                   v=cur["v"], now=now).consume()
            tx.run("MATCH (m:ModelVersion {version: $p}) SET m.status = 'current', m.promoted = $now, "
                   "m.history = coalesce(m.history, []) + ('restored by rollback of ' + $v + ' ' + toString($now))",
                   p=cur["p"], v=cur["v"], now=now).consume()
            return None, cur["p"]

        problem, restored = self._write(work)
        if problem:
            raise ModelConflict(f"rollback: {problem}")
        return self.get(restored)
