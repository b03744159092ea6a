"""Service-graph pairing: span halves → calls between entities.

Modelled on the OpenTelemetry Collector's ``servicegraphconnector`` and Tempo's
service-graph processor, minus their known failures (DESIGN.md "Deriving the dependency
graph from spans"): halves that arrive in different batches still pair because the
waiting half is kept in a :class:`~rootgraph.ingest.store.PendingStore` (transactional,
so a failed graph write does not consume it); a full store pushes out its *oldest*
halves instead of refusing new ones; everything unpaired degrades to a documented edge
or is counted.

Pairing keys:

* CLIENT ↔ SERVER and PRODUCER ↔ CONSUMER: ``(trace_id, outbound span_id)`` ==
  ``(trace_id, inbound parent_span_id)``;
* a CONSUMER with span links (batch receive, new trace) waits on every link and pairs
  with the first linked PRODUCER/CLIENT span; its first link (else its parent) is its
  *primary* key, the only one whose expiry produces a fallback edge.

A CLIENT pairs once (popped); a PRODUCER stays until expiry, marked matched, because a
message may be consumed by several consumer groups (fan-out), each its own edge.

Measurement: a paired call is measured on the outbound side (client/producer start and
duration: what the caller experienced); it failed if either half has error status. A
paired synchronous call also carries its server half's duration, so the time between
the two instrumented ends (client minus server: the network) is known per edge.

Unpaired halves, on expiry (TTL) or eviction (store full):

=====================================  ================================================
half                                   outcome (counter)
=====================================  ================================================
CLIENT/PRODUCER with peer attributes   edge to a virtual node (``virtual``); not for a
                                       PRODUCER with ``messaging.system``: its queue
                                       edge was emitted on arrival
CLIENT/PRODUCER without                no edge (``unpaired_client``)
SERVER with a parent                   edge ``user`` → service (``unpaired_server``)
CONSUMER with a parent or links        edge ``queue:…`` → service if it has messaging
                                       attributes, else ``user`` (``unpaired_server``)
=====================================  ================================================

A half whose partner degraded already (it arrived more than the pairing wait later,
e.g. from a Collector draining its retry queue) is counted ``late_after_expiry``: the
keys of degraded halves are remembered for ``IngestConfig.expired_key_memory_s``.

Not waited for at all: a root SERVER (edge from ``user``), a root CONSUMER without links
(from its queue node, else ``user``), and a CLIENT span with ``db.system``/
``db.system.name`` (databases are not instrumented with SERVER spans, so the edge to
the database node is emitted at once and counted ``virtual``).

A PRODUCER span with ``messaging.system`` gives *both*: the edge producer → its queue
node at once (counted ``virtual``; async), and it waits for its consumers, each of which
adds the edge producer → consumer when it pairs; on expiry nothing more is emitted. Why
both: the broker is a real dependency of the producer (a failing broker fails the
publish, and no consumer span ever exists), so the queue node must be in the graph, with
its traffic, while it is healthy; when it was only the fallback of an unpaired producer
it appeared only once it failed, and a what-if (``BlastRadius``) on it before that had
no such entity. A PRODUCER without messaging attributes waits as a CLIENT does.

Virtual node precedence (first match wins), on the outbound span's attributes:

====  =====================================  ==============================  ==========
rank  attributes                             node id                         kind
====  =====================================  ==============================  ==========
1     ``db.system.name`` or ``db.system``    ``db:<system>/<target>``;       database
                                             target = db.namespace, db.name,
                                             server.address, net.peer.name
2     ``messaging.system``                   ``queue:<system>/<destination>``  messaging
3     ``peer.service``                       ``<peer.service>`` (plain id)   service
4     ``server.address``, ``net.peer.name``,  ``ext:<host>[:<port>]``         external
      then ``url.full``/``http.url`` host    (port only if not 80/443)
5     ``rpc.service``                        ``ext:<rpc.service>``           external
====  =====================================  ==============================  ==========

``peer.service`` is the name the caller gives the callee (as in the Collector), so it is
an ordinary *service* id: the node merges with the real service once that service is
instrumented under the same name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from rootgraph.graph.records import Entity, EntityKind
from rootgraph.ingest.spans import KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER, Span
from rootgraph.ingest.store import Key, Overlay, PairingTxn

__all__ = ["Call", "Pairer", "USER", "virtual_peer"]

USER = Entity("user", "user", EntityKind.USER)
_CACHE_LIMIT = 50_000
#: Longest virtual-node name. Neo4j refuses index keys over ~8 KB (about 2040 four-byte
#: characters, shared by EdgeBucket's src + dst), and a refused key fails the whole
#: batch; two 1 KiB attributes (db.system + db.name) would exceed it (issue 8).
MAX_PEER_NAME = 1024


@dataclass(slots=True)
class Call:
    """One observed call from ``caller`` to ``callee`` (an edge sample)."""

    caller: Entity
    callee: Entity
    start_ns: int
    duration_ns: int
    error: bool
    is_async: bool
    #: trace_id + span_id of the measured span (identity for tick batch ids)
    origin: bytes
    #: duration of the SERVER half of a paired synchronous call; -1 when there is none
    #: (unpaired, virtual callee, or async: a consumer's time is not inside the producer's)
    server_duration_ns: int = -1


def virtual_peer(attrs: dict[str, str]) -> tuple[str, str, EntityKind] | None:
    """``(id, name, kind)`` of the uninstrumented peer named by span attributes."""
    if not attrs:
        return None
    peer = _virtual_peer(attrs)
    if peer is not None and len(peer[1]) > MAX_PEER_NAME:
        name = peer[1][:MAX_PEER_NAME]
        return peer[0][:len(peer[0]) - len(peer[1])] + name, name, peer[2]
    return peer


def _virtual_peer(attrs: dict[str, str]) -> tuple[str, str, EntityKind] | None:
    get = attrs.get
    system = get("db.system.name") or get("db.system")
    if system:
        target = get("db.namespace") or get("db.name") or get("server.address") or get("net.peer.name")
        name = f"{system}/{target}" if target else system
        return f"db:{name}", name, EntityKind.DATABASE
    system = get("messaging.system")
    if system:
        dest = get("messaging.destination.name")
        name = f"{system}/{dest}" if dest else system
        return f"queue:{name}", name, EntityKind.MESSAGING
    peer = get("peer.service")
    if peer:
        return peer, peer, EntityKind.SERVICE
    host = get("server.address") or get("net.peer.name")
    port = get("server.port") or get("net.peer.port")
    if not host:
        url = get("url.full") or get("http.url")
        if url:
            try:
                parts = urlsplit(url)
                host, port = parts.hostname or "", str(parts.port or "")
            except ValueError:
                host = ""
    if host:
        name = f"{host}:{port}" if port and port not in ("80", "443") else host
        return f"ext:{name}", name, EntityKind.EXTERNAL
    rpc = get("rpc.service")
    if rpc:
        return f"ext:{rpc}", rpc, EntityKind.EXTERNAL
    return None


class Pairer:
    """Applies the pairing rules above to one :class:`PairingTxn` at a time."""

    def __init__(self) -> None:
        self._entities: dict[str, Entity] = {}

    # entities -----------------------------------------------------------------------

    def service(self, span: Span) -> Entity:
        entity = self._entities.get(span.service)
        if entity is None or entity.kind is not EntityKind.SERVICE:
            if len(self._entities) > _CACHE_LIMIT:
                self._entities.clear()
            entity = Entity(span.service, span.service_name, EntityKind.SERVICE, span.namespace)
            self._entities[span.service] = entity
        return entity

    def _virtual(self, span: Span) -> Entity | None:
        peer = virtual_peer(span.attrs)
        if peer is None:
            return None
        entity = self._entities.get(peer[0])
        if entity is None:
            entity = Entity(peer[0], peer[1], peer[2])
            self._entities[peer[0]] = entity
        return entity

    def _queue(self, span: Span) -> Entity | None:
        """The queue node a PRODUCER/CONSUMER span names (``messaging.system``), if any."""
        if not span.attrs or "messaging.system" not in span.attrs:
            return None
        entity = self._virtual(span)
        return entity if entity is not None and entity.kind is EntityKind.MESSAGING else None

    def _inbound_source(self, span: Span) -> Entity:
        if span.kind == KIND_CONSUMER and "messaging.system" in span.attrs:
            return self._virtual(span) or USER
        return USER

    # pairing ------------------------------------------------------------------------

    def pair(self, txn: PairingTxn, spans: Iterable[Span]) -> list[Call]:
        """Pair a batch's spans with each other and with the store; returns calls."""
        calls: list[Call] = []
        clients, servers, now, counters = txn.clients, txn.servers, txn.now, txn.counters
        for s in spans:
            kind = s.kind
            if kind == KIND_CLIENT or kind == KIND_PRODUCER:
                attrs = s.attrs
                if kind == KIND_CLIENT and attrs and (attrs.get("db.system.name") or attrs.get("db.system")):
                    database = self._virtual(s)
                    if database is not None:
                        calls.append(self._outbound_to(s, database))
                        counters["virtual"] += 1
                        continue
                if kind == KIND_PRODUCER:
                    queue = self._queue(s)
                    if queue is not None:  # its queue edge now; its consumer edges when they pair
                        calls.append(self._outbound_to(s, queue))
                        counters["virtual"] += 1
                key = (s.trace_id, s.span_id)
                waiting = servers.pop(key)
                if waiting is None:
                    self._note_late(txn, (key,))
                    clients.put(key, now, (s, False))
                    continue
                self._pair_waiters(txn, s, waiting[1], calls)
                if kind == KIND_PRODUCER:  # fan-out: later consumers may still come
                    clients.put(key, now, (s, True))
            elif kind == KIND_SERVER and s.parent_span_id:  # fast path of the branch below
                key = (s.trace_id, s.parent_span_id)
                if clients.get(key) is None or not self._pair_inbound(txn, s, (key,), calls):
                    self._note_late(txn, (key,))
                    prev = servers.get(key)
                    if prev is None:
                        servers.put(key, now, ((s, True),))
                    else:
                        servers.put(key, prev[0], prev[1] + ((s, True),))
            elif kind == KIND_SERVER or kind == KIND_CONSUMER:
                keys = self._inbound_keys(s)
                if not keys:
                    calls.append(self._inbound_from(s, self._inbound_source(s)))
                    continue
                if not self._pair_inbound(txn, s, keys, calls):
                    self._note_late(txn, keys)
                    for i, key in enumerate(keys):
                        prev = servers.get(key)
                        waiter = (s, i == 0)
                        if prev is None:
                            servers.put(key, now, (waiter,))
                        else:
                            servers.put(key, prev[0], prev[1] + (waiter,))
        self._evict_when_full(txn, calls)
        return calls

    @staticmethod
    def _note_late(txn: PairingTxn, keys: Sequence[Key]) -> None:
        """Count a half whose partner already degraded (waited longer than the pairing
        wait): the call became a fallback edge, this half will become another."""
        expired = txn.expired
        if not expired.size:
            return
        for key in keys:
            if expired.pop(key) is not None:
                txn.counters["late_after_expiry"] += 1
                return

    @staticmethod
    def _inbound_keys(s: Span) -> list[Key]:
        keys: list[Key] = []
        if s.kind == KIND_CONSUMER and s.links:
            keys.extend(s.links)
        if s.parent_span_id:
            parent = (s.trace_id, s.parent_span_id)
            if parent not in keys:
                keys.append(parent)
        return keys

    def _pair_inbound(self, txn: PairingTxn, s: Span, keys: Sequence[Key], calls: list[Call]) -> bool:
        clients = txn.clients
        for key in keys:
            entry = clients.get(key)
            if entry is None:
                continue
            outbound: Span = entry[1][0]
            if outbound.kind == KIND_CLIENT:
                clients.pop(key)
            else:
                clients.put(key, entry[0], (outbound, True))
            calls.append(self._paired(outbound, s))
            txn.counters["paired"] += 1
            return True
        return False

    def _pair_waiters(self, txn: PairingTxn, out: Span, waiters: tuple[tuple[Span, bool], ...], calls: list[Call]) -> None:
        seen: set[str] = set()
        for inbound, _primary in waiters:
            if out.kind == KIND_CLIENT and inbound.service in seen:
                continue  # one client span is one request, however many servers saw it
            seen.add(inbound.service)
            calls.append(self._paired(out, inbound))
            txn.counters["paired"] += 1
            self._forget_other_keys(txn.servers, inbound, (out.trace_id, out.span_id))

    @staticmethod
    def _forget_other_keys(servers: Overlay[object], inbound: Span, matched: Key) -> None:
        """A linked consumer that paired must stop waiting on its other links."""
        if not inbound.links:
            return
        for key in Pairer._inbound_keys(inbound):
            if key == matched:
                continue
            entry = servers.get(key)
            if entry is None:
                continue
            rest = tuple(w for w in entry[1] if w[0] is not inbound)
            if rest:
                servers.put(key, entry[0], rest)
            else:
                servers.pop(key)

    def _paired(self, out: Span, inbound: Span) -> Call:
        entities = self._entities
        is_async = out.kind == KIND_PRODUCER or inbound.kind == KIND_CONSUMER
        return Call(
            entities.get(out.service) or self.service(out),
            entities.get(inbound.service) or self.service(inbound),
            out.start_ns, out.end_ns - out.start_ns,
            out.error or inbound.error, is_async, out.trace_id + out.span_id,
            -1 if is_async else inbound.end_ns - inbound.start_ns,
        )

    def _outbound_to(self, out: Span, callee: Entity) -> Call:
        return Call(
            self.service(out), callee, out.start_ns, out.end_ns - out.start_ns, out.error,
            out.kind == KIND_PRODUCER, out.trace_id + out.span_id,
        )

    def _inbound_from(self, inbound: Span, caller: Entity) -> Call:
        return Call(
            caller, self.service(inbound), inbound.start_ns, inbound.end_ns - inbound.start_ns,
            inbound.error, inbound.kind == KIND_CONSUMER, inbound.trace_id + inbound.span_id,
        )

    # expiry -------------------------------------------------------------------------

    def expire(self, txn: PairingTxn, *, everything: bool = False) -> list[Call]:
        """Degrade halves older than the TTL (or all of them) into fallback calls."""
        calls: list[Call] = []
        cutoff = float("inf") if everything else txn.now - txn.store.ttl_s
        while True:
            oldest = txn.oldest_pending()
            if oldest is None or oldest[2][0] > cutoff:
                break
            self._degrade(txn, oldest[0], oldest[1], "expired", calls)
        child_cutoff = float("inf") if everything else txn.now - txn.store.child_ttl_s
        txn.trim_children(child_cutoff)
        txn.trim_expired(txn.now - txn.store.expired_key_memory_s)
        return calls

    def _evict_when_full(self, txn: PairingTxn, calls: list[Call]) -> None:
        limit = txn.store.max_entries
        while txn.pending_size > limit:
            oldest = txn.oldest_pending()
            if oldest is None:
                break
            self._degrade(txn, oldest[0], oldest[1], "evicted_when_full", calls)
        txn.trim_children(txn.now - txn.store.child_ttl_s)

    def _degrade(self, txn: PairingTxn, overlay: Overlay[object], key: Key, why: str, calls: list[Call]) -> None:
        entry = overlay.pop(key)
        if entry is None:
            return
        counters = txn.counters
        if overlay is txn.clients:
            out, matched = entry[1]
            if matched:
                return  # a producer that found its consumers: nothing is missing
            counters[why] += 1
            txn.expired.put(key, txn.now, None)
            if out.kind == KIND_PRODUCER and self._queue(out) is not None:
                return  # its queue edge was emitted on arrival; only the consumer is missing
            callee = self._virtual(out)
            if callee is None:
                counters["unpaired_client"] += 1
            else:
                counters["virtual"] += 1
                calls.append(self._outbound_to(out, callee))
            return
        for inbound, primary in entry[1]:
            if primary:
                counters[why] += 1
                counters["unpaired_server"] += 1
                txn.expired.put(key, txn.now, None)
                calls.append(self._inbound_from(inbound, self._inbound_source(inbound)))
