"""Bounded, transactional memory of span halves waiting for their partner.

Why it exists: the two halves of a call (CLIENT and SERVER span, PRODUCER and CONSUMER
span) are exported by different processes, so they arrive in different requests and
often seconds apart; children of a request arrive before the request's entry span. This
store keeps what is still waiting:

* ``clients``: CLIENT/PRODUCER halves keyed by ``(trace_id, span_id)``;
* ``servers``: SERVER/CONSUMER halves keyed by the ``(trace_id, span_id)`` of the
  outbound span they wait for (their parent, or a span link);
* ``children``: outbound-call intervals keyed by the ``(trace_id, span_id)`` of the
  ancestor whose self time they reduce (see ``selftime.py``);
* ``expired``: keys of halves that degraded unpaired, so a partner arriving after
  that is counted (``late_after_expiry``) instead of passing unnoticed.

Why it is transactional: a batch's pairing must not change this memory unless the graph
write of that batch succeeded; otherwise a client that retries the batch after a Neo4j
outage would find its halves already consumed. :meth:`PendingStore.begin` returns a
:class:`PairingTxn`, a copy-on-write overlay; :meth:`PairingTxn.commit` applies it and
simply dropping it discards it. One transaction at a time (the caller serialises).

Bounds: each map has a max entry count and a TTL on the injected clock (arrival time,
not span time, because services' clocks disagree and a skewed one would expire everyone
else's halves). When a map is full the *oldest* entries are pushed out early and
counted, instead of new spans being dropped as the Collector's store does.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Key", "Overlay", "PairingTxn", "PendingStore", "StoreConflict"]

#: (trace_id, span_id)
Key = tuple[bytes, bytes]
V = TypeVar("V")
#: base maps hold (inserted_at, value); dict order is insertion (= time) order
Entry = tuple[float, Any]


class StoreConflict(RuntimeError):
    """A transaction was committed after another one changed the store (a caller bug)."""

    retryable = False


class Overlay(Generic[V]):
    """Copy-on-write view over a ``{key: (t, value)}`` dict kept in time order.

    Reads see the overlay's own writes; the base dict is untouched until
    :meth:`apply`. Replacing an entry keeps its original time, so expiry may see it at
    most one TTL late (it is appended at the end of the base order on commit).
    """

    __slots__ = ("base", "added", "removed", "size", "_iter", "_head")

    def __init__(self, base: dict[Key, Entry]) -> None:
        self.base = base
        self.added: dict[Key, Entry] = {}
        self.removed: set[Key] = set()
        self.size = len(base)
        self._iter: Iterator[tuple[Key, Entry]] = iter(base.items())
        self._head: tuple[Key, Entry] | None = None

    def get(self, key: Key) -> Entry | None:
        entry = self.added.get(key)
        if entry is not None:
            return entry
        if key in self.removed:
            return None
        return self.base.get(key)

    def pop(self, key: Key) -> Entry | None:
        entry = self.added.pop(key, None)
        if entry is not None:
            self.size -= 1
            return entry
        if key in self.removed:
            return None
        entry = self.base.get(key)
        if entry is not None:
            self.removed.add(key)
            self.size -= 1
        return entry

    def put(self, key: Key, t: float, value: V) -> None:
        """Insert or replace ``key``."""
        if key not in self.added:
            if key not in self.removed and key in self.base:
                self.removed.add(key)  # replaced: the new entry lives in `added`
            else:
                self.size += 1
        self.added[key] = (t, value)

    def oldest(self) -> tuple[Key, Entry] | None:
        """The live entry inserted first, without removing it."""
        head = self._head
        while head is None or head[0] in self.removed:
            head = next(self._iter, None)
            if head is None:
                self._head = None
                for item in self.added.items():
                    return item
                return None
        self._head = head
        return head

    def apply(self) -> None:
        base = self.base
        for key in self.removed:
            base.pop(key, None)
        base.update(self.added)


class PairingTxn:
    """One batch's view of the store; ``commit()`` applies it, dropping it discards it.

    ``counters`` collects what the batch's pairing observed (paired, expired, …); they
    are merged into the store's counters only on commit, so a retried batch is counted
    once.
    """

    def __init__(self, store: PendingStore, now: float) -> None:
        self.store = store
        self.now = now
        self.clients: Overlay[Any] = Overlay(store._clients)
        self.servers: Overlay[Any] = Overlay(store._servers)
        self.children: Overlay[Any] = Overlay(store._children)
        #: keys of halves that degraded unpaired, kept to count a partner that comes late
        self.expired: Overlay[Any] = Overlay(store._expired)
        self.counters: Counter[str] = Counter()
        self._generation = store._generation
        self._done = False

    @property
    def pending_size(self) -> int:
        return self.clients.size + self.servers.size

    def oldest_pending(self) -> tuple[Overlay[Any], Key, Entry] | None:
        """Oldest live half across ``clients`` and ``servers``."""
        a = self.clients.oldest()
        b = self.servers.oldest()
        if a is not None and (b is None or a[1][0] <= b[1][0]):
            return self.clients, a[0], a[1]
        if b is not None:
            return self.servers, b[0], b[1]
        return None

    def trim_children(self, cutoff: float) -> None:
        """Drop self-time entries older than ``cutoff`` or beyond the count bound."""
        children = self.children
        limit = self.store.max_child_entries
        while True:
            head = children.oldest()
            if head is None:
                return
            if head[1][0] <= cutoff:
                self.counters["self_time_expired"] += 1
            elif children.size > limit:
                self.counters["self_time_evicted"] += 1
            else:
                return
            children.pop(head[0])

    def trim_expired(self, cutoff: float) -> None:
        """Forget degraded halves' keys older than ``cutoff`` or beyond the count bound."""
        expired = self.expired
        while True:
            head = expired.oldest()
            if head is None or (head[1][0] > cutoff and expired.size <= self.store.max_entries):
                return
            expired.pop(head[0])

    def commit(self) -> None:
        if self._done:
            raise StoreConflict("transaction already committed")
        if self.store._generation != self._generation:
            raise StoreConflict("store changed since this transaction began")
        self.clients.apply()
        self.servers.apply()
        self.children.apply()
        self.expired.apply()
        self.store.counters.update(self.counters)
        self.store._generation += 1
        self._done = True


class PendingStore:
    """Unpaired halves and pending self-time children, bounded by count and TTL."""

    def __init__(
        self,
        max_entries: int = 100_000,
        ttl_s: float = 10.0,
        *,
        max_child_entries: int = 100_000,
        child_ttl_s: float = 60.0,
        expired_key_memory_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.max_child_entries = max_child_entries
        self.child_ttl_s = child_ttl_s
        self.expired_key_memory_s = expired_key_memory_s
        self.clock = clock
        self._clients: dict[Key, Entry] = {}
        self._servers: dict[Key, Entry] = {}
        self._children: dict[Key, Entry] = {}
        self._expired: dict[Key, Entry] = {}
        self._generation = 0
        self.counters: Counter[str] = Counter()

    def begin(self) -> PairingTxn:
        return PairingTxn(self, self.clock())

    def sizes(self) -> dict[str, int]:
        return {
            "pending_clients": len(self._clients),
            "pending_servers": len(self._servers),
            "pending_self_time": len(self._children),
            "expired_keys_remembered": len(self._expired),
        }
