"""Self (exclusive) time and exclusive errors of entry spans.

Why: a slow or failing service makes all its callers slow or failing too; inference
localises the fault by looking at what a service spends and breaks *itself*:

* an *entry span* is a SERVER or CONSUMER span, or a root span of any kind;
* its *outbound descendants* are the CLIENT/PRODUCER spans reached from it by walking
  down through INTERNAL spans only (nested outbound spans are covered by their outer
  one; an entry span starts a new scope);
* self time = duration − |union of the outbound descendants' intervals|, clipped to the
  entry span (parallel calls overlap: a union, not a sum);
* exclusive error = the entry span failed while none of its outbound descendants did;
* a root CLIENT/PRODUCER span (e.g. a job that makes one call) is its own outbound
  descendant: its time is the callee's, so its self time is 0.

Children end before their parents, so an entry span's descendants arrive in the same or
an *earlier* batch. Intervals that cannot be attributed within the batch are parked in
the store's ``children`` map under the nearest ancestor not yet seen, and forwarded when
that ancestor (an INTERNAL span) arrives; the map is part of the batch transaction and
bounded by count and TTL. A descendant that arrives *after* its entry span is not
subtracted (it is counted ``self_time_expired`` when its parking expires): async work
outliving the request, or batches *reordered* on the way -- one SDK exporter sends its
batches in order, but a Collector exporting on several consumers, or a client sending
batches concurrently, can deliver a later batch first, and the parent then keeps its
children's time as its own (measured: bench/accuracy.py replay, before it kept file
order). Correcting that needs the entry spans of the last TTL kept to subtract late
children from their bucket; not done.
"""

from __future__ import annotations

from rootgraph.ingest.spans import KIND_CLIENT, KIND_INTERNAL, KIND_PRODUCER, Span, is_entry
from rootgraph.ingest.store import Key, PairingTxn

__all__ = ["compute_self_time"]

Interval = tuple[int, int, bool]


def compute_self_time(spans: list[Span], txn: PairingTxn) -> None:
    """Fill ``child_ns``/``child_error`` of the batch's entry spans in place."""
    by_id: dict[Key, Span] = {(s.trace_id, s.span_id): s for s in spans}
    local: dict[Key, list[Interval]] = {}
    children = txn.children
    now = txn.now

    def route(trace_id: bytes, parent_id: bytes, items: tuple[Interval, ...]) -> None:
        while parent_id:
            key = (trace_id, parent_id)
            parent = by_id.get(key)
            if parent is None:  # not seen yet: park it
                prev = children.get(key)
                if prev is None:
                    children.put(key, now, items)
                else:
                    children.put(key, prev[0], prev[1] + items)
                return
            if parent.kind == KIND_INTERNAL and parent.parent_span_id:
                parent_id = parent.parent_span_id
                continue
            if is_entry(parent):
                bucket = local.get(key)
                if bucket is None:
                    local[key] = list(items)
                else:
                    bucket.extend(items)
            return  # else a nested outbound span: covered by that span's own interval

    # Membership pre-checks on the overlay's dicts avoid a method call per span in the
    # common case (nothing parked for this span); pop() still applies removal rules.
    added, base = children.added, children.base
    entries: list[Span] = []
    for s in spans:
        kind = s.kind
        if is_entry(s):
            entries.append(s)
            if not s.parent_span_id and (kind == KIND_CLIENT or kind == KIND_PRODUCER):
                key = (s.trace_id, s.span_id)
                local.setdefault(key, []).append((s.start_ns, s.end_ns, s.error))
        elif kind == KIND_CLIENT or kind == KIND_PRODUCER:
            route(s.trace_id, s.parent_span_id, ((s.start_ns, s.end_ns, s.error),))
            key = (s.trace_id, s.span_id)
            if key in added or key in base:
                children.pop(key)  # nested outbound: covered by s
        else:  # INTERNAL with a parent: forward what was parked on it
            key = (s.trace_id, s.span_id)
            if key in added or key in base:
                parked = children.pop(key)
                if parked is not None:
                    route(s.trace_id, s.parent_span_id, parked[1])

    for s in entries:
        key = (s.trace_id, s.span_id)
        items = local.get(key)
        if key in added or key in base:
            parked = children.pop(key)
            if parked is not None:
                items = (items or []) + list(parked[1])
        if items:
            s.child_ns, s.child_error = _union(items, s.start_ns, s.end_ns)


def _union(items: list[Interval], lo: int, hi: int) -> tuple[int, bool]:
    """Length of the union of intervals clipped to [lo, hi], and whether any failed."""
    failed = False
    clipped: list[tuple[int, int]] = []
    for start, end, error in items:
        failed = failed or error
        start = max(start, lo)
        end = min(end, hi)
        if end > start:
            clipped.append((start, end))
    clipped.sort()
    total = 0
    cur_start = cur_end = -1
    for start, end in clipped:
        if start > cur_end:
            total += cur_end - cur_start
            cur_start, cur_end = start, end
        elif end > cur_end:
            cur_end = end
    total += cur_end - cur_start
    return total, failed
