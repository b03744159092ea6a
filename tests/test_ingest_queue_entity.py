"""A message queue is a node of the graph while it is healthy, not only once it fails.

Regression (BENCHMARKS.md "Bugs found" 1, sockshop-07 / trainticket-33): a PRODUCER that
paired with its consumer gave only the edge producer → consumer, and the queue node was
the fallback of an *unpaired* producer. A broker failing the publish leaves no consumer
span, so the queue appeared in the graph only from the fault's onset on; RankCauses named
it, but ``BlastRadius(queue, at=onset)`` (traffic shares from the hour before) found no
such entity and answered NOT_FOUND "unknown entity".

Through the real path: the simulator's spans leave the real OpenTelemetry SDK's OTLP/HTTP
exporter into a running server over the real Neo4j; the answers come through gRPC.
"""

from __future__ import annotations

import pytest
from test_ingest_helpers import CONSUMER, PRODUCER, payload, resource_spans, span

from rootgraph.client import RootGraphClient
from rootgraph.ingest.config import IngestConfig
from rootgraph.ingest.pipeline import Ingestor
from rootgraph.ingest.sink import InMemorySink
from rootgraph.simulate import Fault, FaultKind, ScenarioSpec, run_live

QUEUE = "queue:kafka/order-events"  # tiny: shop/orders publishes, mailer consumes


def test_queue_fault_blast_radius_answers_at_the_onset(app, reader) -> None:  # noqa: ANN001
    spec = ScenarioSpec("queue-fault", "tiny", (Fault(QUEUE, FaultKind.BACKEND_ERROR, 0.5),), seed=11,
                        baseline_s=300, incident_s=120, rate_rps=4)
    labels = run_live(spec, f"http://127.0.0.1:{app.ports['otlp_http']}", protocol="http")
    assert labels.extra["export_failed"] == 0
    app.ingestor.flush_all()

    with RootGraphClient(f"127.0.0.1:{app.ports['api']}", timeout_s=60) as rg:
        answer = rg.rank_causes(*labels.incident, top_k=3)
        assert answer.causes[0].entity == QUEUE
        br = rg.blast_radius(QUEUE, at=labels.onset_s)  # was NOT_FOUND "unknown entity"
        assert br.entity == QUEUE
        assert "shop/orders" in {i.entity for i in br.impacts}
        assert "mailer" not in {i.entity for i in br.impacts}  # consumers are not callers

    # Why it answers: the queue has its traffic from before the onset, i.e. while healthy.
    assert reader.entity(QUEUE) is not None
    onset = int(labels.onset_s)
    before = reader.read_window(*_windows(onset - 240, onset), 60)
    assert QUEUE in before.entities
    edge = next(e for e in before.edges if (e.caller, e.callee) == ("shop/orders", QUEUE))
    assert edge.is_async and sum(b.requests for b in edge.buckets) > 0
    assert sum(b.errors for b in edge.buckets) == 0


def _windows(start: int, end: int):  # noqa: ANN202
    from rootgraph.graph.records import Window

    return Window(start, end), Window(start - 60, start)


@pytest.mark.parametrize("consumers", [0, 1, 2])
def test_producer_gives_its_queue_edge_exactly_once(consumers: int) -> None:
    """Once per published message: paired, fanned out to several groups, or unpaired."""
    sink = InMemorySink()
    ingestor = Ingestor(sink, IngestConfig())
    attrs = {"messaging.system": "kafka", "messaging.destination.name": "order-events"}
    ingestor.ingest_request(payload(resource_spans("orders", span(1, 2, 1, PRODUCER, 0, 3, True, attrs=attrs))))
    for i in range(consumers):
        ingestor.ingest_request(payload(resource_spans(
            f"mailer{i}", span(1, 10 + i, 2, CONSUMER, 5, 4, attrs=attrs))))
    ingestor.flush_all()
    ingestor.flush_all()
    edges = {k: (b.requests, b.errors) for k, b in sink.edges.items()}
    assert edges.pop(("orders", QUEUE)) == (1, 1)  # the failed publish counts on the queue edge
    assert edges == {("orders", f"mailer{i}"): (1, 1) for i in range(consumers)}
    assert ("orders", QUEUE) in sink.async_edges
    stats = ingestor.stats()
    assert stats["virtual"] == 1 and stats["unpaired_client"] == 0
    assert stats["expired"] == (1 if consumers == 0 else 0)
