"""What the API reads of the graph: the :class:`WindowSource` protocol and its fake.

:class:`~rootgraph.graph.reader.WindowReader` implements :class:`WindowSource` over
Neo4j; the servicer knows nothing else about it (STYLE.md #2). :class:`InMemoryWindows`
is the fake for unit tests of pure logic (STYLE.md #9): it keeps the deltas it is given
and answers the same questions with the same rules as the real reader — which
``tests/test_graph_window_source.py`` checks on the same data against the real Neo4j.
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Iterable, Protocol, runtime_checkable

from rootgraph.graph.errors import NotFound
from rootgraph.graph.records import (
    ERROR_SPAN_KEYS, LOG_TEMPLATES_PER_BUCKET, BucketRow, Deployment, EdgeInfo, Entity, EntityKind, GraphDelta,
    LogCounts, LogRow, MetricAgg, MetricRow, StatsBucket, Window, WindowData, add_into,
)

__all__ = ["InMemoryWindows", "ServiceGraph", "WindowSource", "resolve_service_name"]

#: (entities by id, CALLS edges as (caller, callee, calls, errors, async), RUNS_ON pairs)
ServiceGraph = tuple[list[Entity], list[tuple[str, str, int, int, bool]], list[tuple[str, str]]]

#: Entity kinds that carry the ``Infra`` label (``graph/writer.py``): hosts a service runs on.
_INFRA = frozenset({EntityKind.HOST, EntityKind.NODE, EntityKind.POD})


@runtime_checkable
class WindowSource(Protocol):
    """The graph as the API reads it: one window of statistics, entity lookups, the graph."""

    def read_window(self, incident: Window, baseline: Window, bucket_seconds: int,
                    *, timeout_s: float | None = None) -> WindowData:
        """Subgraph and statistics of the entities active in ``baseline`` or ``incident``.

        Entities with statistics rows in ``[min start, max end)``, the infra entities they
        run on, every series as rows in time order, call edges sorted by (caller, callee),
        and deployments in the same span. Two reads with the same non-empty ``version``
        returned equal windows. Raises a retryable error when storage is unavailable and
        ``TimeoutError`` past ``timeout_s``.
        """
        ...

    def entity(self, entity_id: str) -> Entity | None:
        """The stored entity of that id, or None."""
        ...

    def bucket_range(self) -> tuple[int, int] | None:
        """(first, newest) bucket start time with statistics; None before any data."""
        ...

    def service_graph(self) -> ServiceGraph:
        """Every entity (by id), CALLS edge (by caller, callee) and RUNS_ON pair (by entity)."""
        ...

    def resolve_service(self, name: str) -> str:
        """The id of the known service ``name`` means (:func:`resolve_service_name`)."""
        ...

    def first_traffic(self, entity_id: str, from_s: int) -> int | None:
        """Start of the first bucket at or after ``from_s`` with traffic of ``entity_id``:
        its own requests, calls to or from it, or (infrastructure) of a service on it."""
        ...


def resolve_service_name(name: str, services: Iterable[tuple[str, str]]) -> str:
    """The id of the service ``name`` names among ``services`` ((id, service.name) pairs):
    its id, or its bare ``service.name`` when that is unique (``orders`` for
    ``sock-shop/orders``).

    Why: a deployment of a service the graph does not know is linked to nothing and never
    seen by inference, so a typo must fail loudly instead (issue 13). Raises
    :class:`NotFound` naming the close matches (``difflib``, its default 0.6 cutoff), the
    services an ambiguous bare name could mean, or, with neither, that no such service has
    sent traffic yet.
    """
    known = list(services)
    if any(sid == name for sid, _ in known):
        return name
    exact = sorted(sid for sid, short in known if short == name)
    if len(exact) == 1:
        return exact[0]
    if exact:
        raise NotFound(f"service: {name!r} names several services, give its namespace: {', '.join(exact)}")
    by_key: dict[str, set[str]] = {}
    for sid, short in known:
        by_key.setdefault(sid, set()).add(sid)
        by_key.setdefault(short or sid, set()).add(sid)
    close = sorted({sid for key in difflib.get_close_matches(name, list(by_key), n=5, cutoff=0.6)
                    for sid in by_key[key]})
    if close:
        raise NotFound(f"service: unknown service {name!r}; did you mean: {', '.join(close[:5])}")
    raise NotFound(f"service: unknown service {name!r}: no service of that name has sent traffic yet "
                   "(deployments are recorded for services seen in traces; retry once it has)")


class InMemoryWindows:
    """A :class:`WindowSource` over deltas held in memory, for tests.

    Fill it with :meth:`apply_deltas` (the ``DeltaSink`` method, so an ``Ingestor`` can
    write into it) and :meth:`record_deployment`. It applies the writer's rules: batches
    deduplicated by ``batch_id``; an entity's name, kind and an edge's ``async`` fixed
    when first written; statistics summed; a service's new version after another one is
    an implicit deployment unless one of that version is recorded; an explicit record
    replaces the implicit one of the same rollout.
    """

    def __init__(self) -> None:
        self._batches: set[str] = set()
        self._entities: dict[str, Entity] = {}
        self._edges: dict[tuple[str, str], StatsBucket] = {}
        self._async: dict[tuple[str, str], bool] = {}
        self._service_buckets: dict[tuple[str, int], StatsBucket] = {}
        self._edge_buckets: dict[tuple[str, str, int], StatsBucket] = {}
        self._runs_on: set[tuple[str, str]] = set()
        self._versions: dict[str, list[str]] = {}
        self._deployments: dict[str, Deployment] = {}
        #: (entity, t) -> [counts, error-span keys kept, overflow, template ids in slot order]
        self._logs: dict[tuple[str, int], tuple[LogCounts, list[int], list[int], list[str]]] = {}
        self._templates: dict[tuple[str, str], str] = {}
        self._metrics: dict[tuple[str, int, str], MetricAgg] = {}

    # -- writes (the DeltaSink method, and deployments) ---------------------------------

    def apply_deltas(self, deltas: list[GraphDelta]) -> list[bool]:
        out = []
        for d in deltas:
            fresh = d.batch_id not in self._batches
            if fresh:
                self._batches.add(d.batch_id)
                self._apply(d)
            out.append(fresh)
        return out

    def record_deployment(self, deployment: Deployment) -> bool:
        if deployment.id in self._deployments:
            return False
        self._entities.setdefault(deployment.service, Entity(deployment.service, deployment.service,
                                                             EntityKind.SERVICE))
        self._deployments[deployment.id] = deployment
        for key, d in list(self._deployments.items()):
            if (d.source == "span-version" and d.service == deployment.service
                    and d.version == deployment.version and key != deployment.id):
                del self._deployments[key]
        return True

    def _apply(self, d: GraphDelta) -> None:
        for e in d.entities.values():
            self._entities.setdefault(e.id, e)
        for (s, t), b in d.edges.items():
            if s in self._entities and t in self._entities:
                self._async.setdefault((s, t), (s, t) in d.async_edges)
                add_into(self._edges, (s, t), b)
        for skey, b in d.service_buckets.items():
            add_into(self._service_buckets, skey, b)
        for ekey, b in d.edge_buckets.items():
            add_into(self._edge_buckets, ekey, b)
        self._runs_on |= {(s, i) for s, i in d.runs_on if s in self._entities and i in self._entities}
        for (svc, version), at in sorted(d.versions.items(), key=lambda kv: kv[1]):
            seen = self._versions.setdefault(svc, []) if svc in self._entities else None
            if seen is None or version in seen:
                continue
            old = seen[-1] if seen else None
            seen.append(version)
            recorded = any(x.service == svc and x.version == version for x in self._deployments.values())
            if old is not None and not recorded:
                key = f"span-version:{svc}:{version}"
                self._deployments.setdefault(key, Deployment(key, svc, version, at, old, "", "span-version"))
        for dep in d.deployments:
            self.record_deployment(dep)
        for key, c in d.log_buckets.items():  # the writer's bounds (graph/writer.py)
            total, kept, overflow, slots = self._logs.setdefault(key, (LogCounts(), [], [0], []))
            total.records += c.records
            total.severity = [a + b for a, b in zip(total.severity, c.severity)]
            new_es = [k for k in sorted(c.error_spans) if k not in kept]
            room = ERROR_SPAN_KEYS - len(kept)
            kept.extend(new_es[:room])
            overflow[0] += max(0, len(new_es) - room)
            total.other_templates += c.other_templates
            for tid, n in sorted(c.templates.items(), key=lambda kv: (-kv[1], kv[0])):
                if tid in total.templates:
                    total.templates[tid] += n
                elif len(slots) < LOG_TEMPLATES_PER_BUCKET:
                    slots.append(tid)
                    total.templates[tid] = n
                else:
                    total.other_templates += n
        self._templates.update(d.log_templates)
        for mkey, agg in d.metric_buckets.items():
            add_into(self._metrics, mkey, agg)

    # -- the WindowSource protocol -------------------------------------------------------

    def read_window(self, incident: Window, baseline: Window, bucket_seconds: int,
                    *, timeout_s: float | None = None) -> WindowData:
        lo, hi = min(incident.start_s, baseline.start_s), max(incident.end_s, baseline.end_s)
        services: dict[str, list[BucketRow]] = {}
        edge_rows: dict[tuple[str, str], list[BucketRow]] = {}
        for (e, t), b in sorted(self._service_buckets.items(), key=lambda kv: kv[0][1]):
            if lo <= t < hi:
                services.setdefault(e, []).append(BucketRow(
                    t, b.requests, b.errors, b.duration_ms_sum, b.self_ms_sum, b.exclusive_errors,
                    tuple(b.histogram)))
        for (s, c, t), b in sorted(self._edge_buckets.items(), key=lambda kv: kv[0][2]):
            if lo <= t < hi:
                edge_rows.setdefault((s, c), []).append(BucketRow(
                    t, b.requests, b.errors, b.duration_ms_sum, 0.0, 0, tuple(b.histogram), b.paired, b.gap_ms_sum))
        active = set(services) | {x for pair in edge_rows for x in pair}
        entities = {i: self._entities[i] for i in active if i in self._entities}
        async_edges = {pair for pair, is_async in self._async.items() if is_async and pair[0] in entities}
        runs_on: dict[str, tuple[str, ...]] = {}
        for svc in entities:
            hosts = sorted(h for s, h in self._runs_on if s == svc and self._entities[h].kind in _INFRA)
            if hosts:
                runs_on[svc] = tuple(hosts)
        for h in {h for hosts in runs_on.values() for h in hosts}:
            entities[h] = self._entities[h]
        deployments = tuple(sorted((d for d in self._deployments.values() if lo * 1000 <= d.at_ms < hi * 1000),
                                   key=lambda d: (d.at_ms, d.id)))
        edges = tuple(EdgeInfo(s, c, (s, c) in async_edges, tuple(edge_rows[(s, c)]))
                      for s, c in sorted(edge_rows))
        log_rows: dict[str, list[LogRow]] = {}
        for (e, t), (c, kept, overflow, _) in sorted(self._logs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            if lo <= t < hi:
                log_rows.setdefault(e, []).append(LogRow(
                    t, c.records, tuple(c.severity), len(kept) + overflow[0],
                    tuple(sorted(c.templates.items(), key=lambda p: (-p[1], p[0]))), c.other_templates))
        metric_rows: dict[str, dict[str, list[MetricRow]]] = {}
        for (e, t, m), a in sorted(self._metrics.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
            if lo <= t < hi:
                metric_rows.setdefault(e, {}).setdefault(m, []).append(MetricRow(t, a.sum, a.count, a.min, a.max))
        templates: dict[str, dict[str, str]] = {}
        for e, rows in sorted(log_rows.items()):
            for row in rows:
                for tid, _ in row.templates:
                    if (e, tid) in self._templates:
                        templates.setdefault(e, {})[tid] = self._templates[(e, tid)]
        templates = {e: dict(sorted(ts.items())) for e, ts in templates.items()}
        window = WindowData(incident, baseline, bucket_seconds, entities,
                            {e: tuple(rows) for e, rows in services.items()}, edges, runs_on, deployments,
                            log_buckets={e: tuple(rows) for e, rows in sorted(log_rows.items())},
                            metric_buckets={e: {m: tuple(rs) for m, rs in sorted(ms.items())}
                                            for e, ms in sorted(metric_rows.items())},
                            log_templates=templates)
        # Same content, same version: what the real reader promises of its versions.
        content = repr((window, sorted(entities), sorted(window.service_buckets.items())))
        version = hashlib.blake2b(content.encode(), digest_size=16).hexdigest()
        return WindowData(incident, baseline, bucket_seconds, entities, window.service_buckets, edges,
                          runs_on, deployments, version, window.log_buckets, window.metric_buckets,
                          window.log_templates)

    def entity(self, entity_id: str) -> Entity | None:
        return self._entities.get(entity_id)

    def bucket_range(self) -> tuple[int, int] | None:
        ts = [t for _, t in self._service_buckets] + [t for _, _, t in self._edge_buckets]
        return (min(ts), max(ts)) if ts else None

    def service_graph(self) -> ServiceGraph:
        return (
            [self._entities[i] for i in sorted(self._entities)],
            [(s, c, b.requests, b.errors, self._async[(s, c)]) for (s, c), b in sorted(self._edges.items())],
            sorted(self._runs_on),
        )

    def resolve_service(self, name: str) -> str:
        return resolve_service_name(name, ((e.id, e.name) for e in self._entities.values()
                                           if e.kind == EntityKind.SERVICE))

    def first_traffic(self, entity_id: str, from_s: int) -> int | None:
        ids = {entity_id} | {a for a, b in self._runs_on if b == entity_id}
        found = [t for (e, t), b in self._service_buckets.items() if e in ids and t >= from_s]
        found += [t for (a, b, t), _ in self._edge_buckets.items() if (a in ids or b in ids) and t >= from_s]
        return min(found, default=None)
