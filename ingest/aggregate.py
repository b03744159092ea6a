"""Spans and calls of one batch → one :class:`~rootgraph.graph.records.GraphDelta`.

What goes where:

* ``service_buckets[(entity, bucket)]``: every *entry* span (SERVER, CONSUMER, or root
  of any kind; see ``selftime.py``) is one request to its service, with duration, self
  time and exclusive error;
* ``edge_buckets[(caller, callee, bucket)]`` / ``edges``: every :class:`Call` from
  pairing (measured on the outbound side when paired; failed if either half failed);
  edges carry no self time, but paired sync calls add client minus server duration to
  ``gap_ms_sum`` (and count in ``paired``);
* ``entities``: every service seen, every virtual node and ``user`` on a call, and the
  infrastructure entities of the resources; ``runs_on`` links services to them;
* ``versions``: first start (ms) of every ``(service, service.version)`` in the batch;
* ``async_edges``: calls through a PRODUCER/CONSUMER pair.

A bucket key is ``floor(start_s / width) * width`` of the span's (or call's) *start*,
so a request is in one bucket whatever batch brings it; durations are milliseconds and
histograms use :func:`~rootgraph.graph.records.latency_bucket` (inlined; a test checks
they agree).
"""

from __future__ import annotations

from collections.abc import Iterable

from math import ceil as _ceil
from math import log2 as _log2

from rootgraph.graph.records import HISTOGRAM_BUCKETS, Deployment, Entity, EntityKind, GraphDelta, StatsBucket
from rootgraph.ingest.pairing import Call
from rootgraph.ingest.spans import Span, is_entry

__all__ = ["aggregate"]

_LAST = HISTOGRAM_BUCKETS - 1
_INFRA_KINDS = {"host": EntityKind.HOST, "node": EntityKind.NODE, "pod": EntityKind.POD}


def aggregate(
    batch_id: str,
    spans: Iterable[Span],
    calls: Iterable[Call],
    *,
    bucket_seconds: int = 60,
    deployments: Iterable[Deployment] = (),
    span_count: int | None = None,
) -> GraphDelta:
    """Build the delta; ``spans`` must be traffic spans with self time already filled."""
    delta = GraphDelta(batch_id=batch_id, deployments=list(deployments))
    entities = delta.entities
    service_buckets = delta.service_buckets
    versions = delta.versions
    width_ns = bucket_seconds * 1_000_000_000
    last_resource: tuple[str, tuple[str, ...]] | None = None
    n = 0
    for s in spans:
        n += 1
        service = s.service
        if last_resource is None or last_resource[0] is not service or last_resource[1] is not s.infra:
            last_resource = (service, s.infra)
            if service not in entities:
                entities[service] = Entity(service, s.service_name, EntityKind.SERVICE, s.namespace)
            for infra in s.infra:
                if infra not in entities:
                    prefix, _, name = infra.partition(":")
                    entities[infra] = Entity(infra, name, _INFRA_KINDS[prefix])
                delta.runs_on.add((service, infra))
        start = s.start_ns
        if s.version:
            key = (service, s.version)
            start_ms = start // 1_000_000
            seen = versions.get(key)
            if seen is None or start_ms < seen:
                versions[key] = start_ms
        if not is_entry(s):
            continue
        bucket_key = (service, (start // width_ns) * bucket_seconds)
        bucket = service_buckets.get(bucket_key)
        if bucket is None:
            bucket = service_buckets[bucket_key] = StatsBucket()
        duration_ns = s.end_ns - start
        duration_ms = duration_ns / 1e6
        bucket.requests += 1
        bucket.duration_ms_sum += duration_ms
        bucket.self_ms_sum += (duration_ns - s.child_ns) / 1e6
        if s.error:
            bucket.errors += 1
            if not s.child_error:
                bucket.exclusive_errors += 1
        bucket.histogram[
            0 if duration_ms <= 0.1 else min(_ceil(2.0 * _log2(duration_ms / 0.1)), _LAST)
        ] += 1  # = latency_bucket(duration_ms), inlined: this loop is the hot path
    delta.spans = n if span_count is None else span_count
    _add_calls(delta, calls, bucket_seconds, width_ns)
    return delta


def _add_calls(delta: GraphDelta, calls: Iterable[Call], bucket_seconds: int, width_ns: int) -> None:
    entities = delta.entities
    edge_buckets = delta.edge_buckets
    for c in calls:
        caller = c.caller.id
        callee = c.callee.id
        if caller not in entities:
            entities[caller] = c.caller
        if callee not in entities:
            entities[callee] = c.callee
        key = (caller, callee, (c.start_ns // width_ns) * bucket_seconds)
        bucket = edge_buckets.get(key)
        if bucket is None:
            bucket = edge_buckets[key] = StatsBucket()
        duration_ms = c.duration_ns / 1e6
        bucket.requests += 1
        bucket.duration_ms_sum += duration_ms
        if c.error:
            bucket.errors += 1
        if c.server_duration_ns >= 0:
            bucket.paired += 1
            bucket.gap_ms_sum += (c.duration_ns - c.server_duration_ns) / 1e6
        bucket.histogram[
            0 if duration_ms <= 0.1 else min(_ceil(2.0 * _log2(duration_ms / 0.1)), _LAST)
        ] += 1
        if c.is_async:
            delta.async_edges.add((caller, callee))
    edges = delta.edges
    for (caller, callee, _), bucket in edge_buckets.items():
        total = edges.get((caller, callee))
        if total is None:
            edges[(caller, callee)] = StatsBucket(
                bucket.requests, bucket.errors, bucket.duration_ms_sum, 0.0, 0, list(bucket.histogram)
            )
        else:
            total.requests += bucket.requests
            total.errors += bucket.errors
            total.duration_ms_sum += bucket.duration_ms_sum
            total.histogram = [a + b for a, b in zip(total.histogram, bucket.histogram)]
