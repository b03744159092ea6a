"""Where ingest hands its deltas: the :class:`DeltaSink` protocol and its fake.

``graph.writer.GraphWriter`` implements :class:`DeltaSink`; ingest knows nothing else about it
(STYLE.md #2). :class:`InMemorySink` is the fake for unit tests of pure logic (STYLE.md
#9): it keeps the sum of everything applied, deduplicated by ``batch_id`` exactly as the
real writer must be. A sink that cannot store raises the graph stage's
:class:`~rootgraph.graph.errors.StoreUnavailable` (retryable): one "storage
unavailable" concept for the store, the group committer and the edge to map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from rootgraph.graph.errors import StoreUnavailable
from rootgraph.graph.records import Deployment, Entity, GraphDelta, LogCounts, MetricAgg, StatsBucket, add_into

__all__ = ["DeltaSink", "InMemorySink"]




@runtime_checkable
class DeltaSink(Protocol):
    """Applies batches' :class:`GraphDelta` atomically and idempotently."""

    def apply_deltas(self, deltas: list[GraphDelta]) -> list[bool]:
        """Apply every delta whose ``batch_id`` is new, all in one transaction.

        Returns, per delta, True if applied now and False (changing nothing) if that
        ``batch_id`` was already applied. One batch is a list of one; several are a
        group commit (``ingest/group.py``). Raises an exception whose type has
        ``retryable = True`` (e.g. :class:`StoreUnavailable`) when storage is unavailable;
        then nothing was applied, or — if the failure hid a successful commit — a retry
        returns False.
        """
        ...


@dataclass
class InMemorySink:
    """A :class:`DeltaSink` that sums deltas in memory, for tests.

    ``fail_next`` makes the next N calls raise :class:`StoreUnavailable` before applying;
    ``fail_after_apply`` makes the next N calls apply *then* raise (a lost commit ack).
    """

    applied_batches: list[str] = field(default_factory=list)
    entities: dict[str, Entity] = field(default_factory=dict)
    edges: dict[tuple[str, str], StatsBucket] = field(default_factory=dict)
    service_buckets: dict[tuple[str, int], StatsBucket] = field(default_factory=dict)
    edge_buckets: dict[tuple[str, str, int], StatsBucket] = field(default_factory=dict)
    runs_on: set[tuple[str, str]] = field(default_factory=set)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)
    async_edges: set[tuple[str, str]] = field(default_factory=set)
    spans: int = 0
    log_buckets: dict[tuple[str, int], LogCounts] = field(default_factory=dict)
    metric_buckets: dict[tuple[str, int, str], MetricAgg] = field(default_factory=dict)
    miner_states: list[str] = field(default_factory=list)
    fail_next: int = 0
    fail_after_apply: int = 0
    calls: int = 0
    _seen: set[str] = field(default_factory=set, repr=False)

    def apply_deltas(self, deltas: list[GraphDelta]) -> list[bool]:
        """All or nothing, like the real writer's single transaction."""
        if self.fail_next > 0:
            self.fail_next -= 1
            self.calls += 1
            raise StoreUnavailable("in-memory sink told to fail")
        out = [self._apply(d) for d in deltas]
        if self.fail_after_apply > 0:
            self.fail_after_apply -= 1
            raise StoreUnavailable("in-memory sink applied, then lost the ack")
        return out

    def _apply(self, delta: GraphDelta) -> bool:
        self.calls += 1
        if delta.batch_id in self._seen:
            return False
        self._seen.add(delta.batch_id)
        self.applied_batches.append(delta.batch_id)
        self.entities.update(delta.entities)
        for key, bucket in delta.edges.items():
            add_into(self.edges, key, bucket)
        for skey, bucket in delta.service_buckets.items():
            add_into(self.service_buckets, skey, bucket)
        for ekey, bucket in delta.edge_buckets.items():
            add_into(self.edge_buckets, ekey, bucket)
        self.runs_on |= delta.runs_on
        for vkey, at_ms in delta.versions.items():
            self.versions[vkey] = min(at_ms, self.versions.get(vkey, at_ms))
        for deployment in delta.deployments:
            self.deployments.setdefault(deployment.id, deployment)
        self.async_edges |= delta.async_edges
        self.spans += delta.spans
        for lkey, counts in delta.log_buckets.items():
            add_into(self.log_buckets, lkey, counts)
        for mkey, agg in delta.metric_buckets.items():
            add_into(self.metric_buckets, mkey, agg)
        if delta.miner_state:
            self.miner_states.append(delta.miner_state)
        return True

    def service_total(self, service: str) -> StatsBucket:
        """Sum of a service's buckets (test convenience)."""
        total = StatsBucket()
        for (name, _), bucket in self.service_buckets.items():
            if name == service:
                total.add(bucket)
        return total
