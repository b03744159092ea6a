"""Service-graph pairing through the Ingestor: edges, errors, expiry, eviction, links."""

from __future__ import annotations

import pytest
from test_ingest_helpers import BUCKET0, CLIENT, CONSUMER, INTERNAL, PRODUCER, SERVER, payload, resource_spans, span

from rootgraph.graph.records import EntityKind
from rootgraph.ingest.config import IngestConfig
from rootgraph.ingest.pipeline import Ingestor
from rootgraph.ingest.sink import InMemorySink


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ingestor(**cfg: object) -> tuple[Ingestor, InMemorySink, Clock]:
    sink, clock = InMemorySink(), Clock()
    return Ingestor(sink, IngestConfig(**cfg), clock), sink, clock  # type: ignore[arg-type]


def _edges(sink: InMemorySink) -> dict[tuple[str, str], tuple[int, int, float]]:
    return {k: (b.requests, b.errors, b.duration_ms_sum) for k, b in sink.edges.items()}


def _chain_batches() -> list[bytes]:
    """user → frontend → backend → inventory → postgres; one batch per service."""
    return [
        payload(resource_spans("frontend", span(1, 1, None, SERVER, 0, 100), span(1, 2, 1, CLIENT, 10, 80))),
        payload(resource_spans("backend", span(1, 3, 2, SERVER, 12, 70), span(1, 4, 3, CLIENT, 20, 40))),
        payload(resource_spans(
            "inventory", span(1, 5, 4, SERVER, 22, 30),
            span(1, 6, 5, CLIENT, 25, 5, attrs={"db.system.name": "postgresql", "db.namespace": "stock"}),
        )),
    ]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_chain_with_db_call_gives_exact_edges_in_any_batch_order(order: tuple[int, ...]) -> None:
    ingestor, sink, _ = _ingestor()
    batches = _chain_batches()
    for i in order:
        ingestor.ingest_request(batches[i])
    assert _edges(sink) == {
        ("user", "frontend"): (1, 0, 100.0),
        ("frontend", "backend"): (1, 0, 80.0),  # measured on the client side
        ("backend", "inventory"): (1, 0, 40.0),
        ("inventory", "db:postgresql/stock"): (1, 0, 5.0),
    }
    assert sink.entities["db:postgresql/stock"].kind is EntityKind.DATABASE
    assert sink.entities["user"].kind is EntityKind.USER
    stats = ingestor.stats()
    assert (stats["paired"], stats["virtual"], stats["pending_clients"], stats["pending_servers"]) == (2, 1, 0, 0)
    assert {k[0]: v.requests for k, v in sink.service_buckets.items()} == {"frontend": 1, "backend": 1, "inventory": 1}
    assert all(k[2] == BUCKET0 for k in sink.edge_buckets)


@pytest.mark.parametrize(("client_err", "server_err"), [(True, False), (False, True), (True, True)])
def test_edge_fails_when_client_or_server_span_failed(client_err: bool, server_err: bool) -> None:
    ingestor, sink, _ = _ingestor()
    ingestor.ingest_request(payload(resource_spans("a", span(1, 2, 1, CLIENT, 0, 10, client_err))))
    ingestor.ingest_request(payload(resource_spans("b", span(1, 3, 2, SERVER, 1, 8, server_err))))
    assert _edges(sink)[("a", "b")] == (1, 1, 10.0)


def test_expired_client_becomes_edge_to_virtual_node_or_is_counted() -> None:
    ingestor, sink, clock = _ingestor(pending_ttl_s=10.0)
    ingestor.ingest_request(payload(resource_spans(
        "shop",
        span(1, 2, 1, CLIENT, 0, 30, attrs={"server.address": "api.stripe.com", "server.port": 443}),
        span(1, 3, 1, CLIENT, 0, 30, attrs={"url.full": "http://localhost:9090/x"}),
        span(1, 4, 1, CLIENT, 0, 30),
    )))
    clock.now += 10.5
    assert ingestor.tick() == 2
    assert _edges(sink) == {("shop", "ext:api.stripe.com"): (1, 0, 30.0), ("shop", "ext:localhost:9090"): (1, 0, 30.0)}
    assert sink.entities["ext:api.stripe.com"].kind is EntityKind.EXTERNAL
    stats = ingestor.stats()
    assert (stats["expired"], stats["virtual"], stats["unpaired_client"]) == (3, 2, 1)
    assert ingestor.tick() == 0  # nothing left; nothing emitted twice


def test_expired_server_with_parent_becomes_edge_from_user_and_is_counted() -> None:
    ingestor, sink, clock = _ingestor()
    ingestor.ingest_request(payload(resource_spans("api", span(1, 3, 2, SERVER, 0, 7, True))))
    assert sink.edges == {}
    clock.now += 11
    # expiry is also emitted with the next batch, not only by tick()
    ingestor.ingest_request(payload(resource_spans("other", span(2, 1, None, SERVER, 0, 1))))
    assert _edges(sink)[("user", "api")] == (1, 1, 7.0)
    assert ingestor.stats()["unpaired_server"] == 1


def test_peer_precedence_db_then_queue_then_peer_service_then_address() -> None:
    ingestor, sink, clock = _ingestor()
    attrs = [
        {"db.system": "redis", "server.address": "cache", "peer.service": "x"},
        {"messaging.system": "kafka", "messaging.destination.name": "orders", "peer.service": "x"},
        {"peer.service": "billing", "server.address": "10.0.0.1"},
        {"net.peer.name": "legacy.local", "server.port": 8080},
        {"rpc.service": "grpc.health.v1.Health"},
    ]
    kinds = [CLIENT, PRODUCER, CLIENT, CLIENT, CLIENT]
    ingestor.ingest_request(payload(resource_spans(
        "a", *(span(1, 10 + i, 1, k, 0, 1, attrs=a) for i, (k, a) in enumerate(zip(kinds, attrs))),
    )))
    ingestor.flush_all()
    assert set(sink.edges) == {
        ("a", "db:redis/cache"), ("a", "queue:kafka/orders"), ("a", "billing"),
        ("a", "ext:legacy.local:8080"), ("a", "ext:grpc.health.v1.Health"),
    }
    assert ("a", "queue:kafka/orders") in sink.async_edges
    assert sink.entities["billing"].kind is EntityKind.SERVICE


def test_full_store_evicts_oldest_half_early_and_counts_it() -> None:
    ingestor, sink, clock = _ingestor(pending_max_entries=2)
    for i in range(3):
        clock.now += 1
        ingestor.ingest_request(payload(resource_spans(
            "a", span(1, 10 + i, 1, CLIENT, 0, 5, attrs={"peer.service": f"p{i}"}))))
    stats = ingestor.stats()
    assert (stats["evicted_when_full"], stats["pending_clients"]) == (1, 2)
    assert set(sink.edges) == {("a", "p0")}  # the oldest degraded; the new ones are kept
    ingestor.ingest_request(payload(resource_spans("p2", span(1, 3, 12, SERVER, 1, 2))))
    assert ("a", "p2") in sink.edges and ingestor.stats()["paired"] == 1


@pytest.mark.parametrize("producer_first", [True, False])
def test_consumer_pairs_with_producer_through_span_link(producer_first: bool) -> None:
    ingestor, sink, _ = _ingestor()
    producer = payload(resource_spans("orders", span(
        1, 2, 1, PRODUCER, 0, 3, attrs={"messaging.system": "kafka", "messaging.destination.name": "t"})))
    consumer = payload(resource_spans("mailer", span(
        9, 7, None, CONSUMER, 50, 20, links=((1, 2),), attrs={"messaging.system": "kafka"})))
    for p in ([producer, consumer] if producer_first else [consumer, producer]):
        ingestor.ingest_request(p)
    assert _edges(sink)[("orders", "mailer")] == (1, 0, 3.0)
    assert ("orders", "mailer") in sink.async_edges
    # the broker is a dependency of the producer: its queue edge is there, once
    assert _edges(sink)[("orders", "queue:kafka/t")] == (1, 0, 3.0)
    assert ("orders", "queue:kafka/t") in sink.async_edges
    ingestor.flush_all()  # the matched producer expires silently; no fallback edges
    assert set(sink.edges) == {("orders", "mailer"), ("orders", "queue:kafka/t")}
    assert _edges(sink)[("orders", "queue:kafka/t")] == (1, 0, 3.0)
    assert ingestor.stats()["unpaired_server"] == 0 and ingestor.stats()["unpaired_client"] == 0


def test_cycle_a_b_a_gives_both_edges() -> None:
    ingestor, sink, _ = _ingestor()
    ingestor.ingest_request(payload(resource_spans(
        "a", span(1, 1, None, SERVER, 0, 100), span(1, 2, 1, CLIENT, 10, 50), span(1, 5, 4, SERVER, 30, 10))))
    ingestor.ingest_request(payload(resource_spans(
        "b", span(1, 3, 2, SERVER, 12, 40), span(1, 4, 3, CLIENT, 28, 14, True))))
    assert _edges(sink) == {
        ("user", "a"): (1, 0, 100.0), ("a", "b"): (1, 0, 50.0), ("b", "a"): (1, 1, 14.0),
    }


def test_internal_spans_make_no_edges() -> None:
    ingestor, sink, _ = _ingestor()
    ingestor.ingest_request(payload(resource_spans("a", span(1, 1, None, SERVER, 0, 9), span(1, 2, 1, INTERNAL, 1, 5))))
    assert set(sink.edges) == {("user", "a")}


def test_partner_arriving_after_ttl_but_before_expiry_still_pairs() -> None:
    ingestor, sink, clock = _ingestor(pending_ttl_s=10.0)
    ingestor.ingest_request(payload(resource_spans("a", span(1, 2, 1, CLIENT, 0, 10, attrs={"peer.service": "b"}))))
    clock.now += 30  # no tick() ran meanwhile
    ingestor.ingest_request(payload(resource_spans("b", span(1, 3, 2, SERVER, 1, 8))))
    assert _edges(sink) == {("a", "b"): (1, 0, 10.0)}
    assert ingestor.stats()["expired"] == 0
