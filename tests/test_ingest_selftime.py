"""Self (exclusive) time and exclusive errors of entry spans."""

from __future__ import annotations

import pytest
from test_ingest_helpers import CLIENT, INTERNAL, PRODUCER, SERVER, payload, resource_spans, span

from rootgraph.graph.records import latency_bucket
from rootgraph.ingest.pipeline import Ingestor
from rootgraph.ingest.sink import InMemorySink


def _run(*batches: bytes) -> InMemorySink:
    sink = InMemorySink()
    ingestor = Ingestor(sink)
    for b in batches:
        ingestor.ingest_request(b)
    return sink


def _children() -> list:  # type: ignore[type-arg]
    # server 0..100 → internal 0..100 → clients [10,40] [20,50] (overlap) and [60,70];
    # union = [10,50] + [60,70] = 50 ms, so self = 100 - 50 = 50 ms (a sum would say 30).
    return [
        span(1, 3, 2, CLIENT, 10, 30), span(1, 4, 2, CLIENT, 20, 30), span(1, 5, 2, PRODUCER, 60, 10),
        span(1, 6, 5, CLIENT, 61, 2),  # nested under an outbound span: already covered
    ]


def test_self_time_subtracts_union_of_parallel_children() -> None:
    sink = _run(payload(resource_spans(
        "a", *_children(), span(1, 2, 1, INTERNAL, 0, 100), span(1, 1, None, SERVER, 0, 100))))
    total = sink.service_total("a")
    assert (total.requests, total.duration_ms_sum, total.self_ms_sum) == (1, 100.0, pytest.approx(50.0))


def test_self_time_uses_children_from_earlier_batches() -> None:
    sink = _run(
        payload(resource_spans("a", *_children())),
        payload(resource_spans("a", span(1, 2, 1, INTERNAL, 0, 100))),
        payload(resource_spans("a", span(1, 1, None, SERVER, 0, 100))),
    )
    assert sink.service_total("a").self_ms_sum == pytest.approx(50.0)


def test_children_are_clipped_to_the_entry_span() -> None:
    sink = _run(payload(resource_spans(
        "a", span(1, 1, None, SERVER, 0, 10), span(1, 2, 1, PRODUCER, 5, 100))))
    assert sink.service_total("a").self_ms_sum == pytest.approx(5.0)


@pytest.mark.parametrize(("server_err", "child_err", "exclusive"), [
    (True, False, 1), (True, True, 0), (False, True, 0), (False, False, 0)])
def test_exclusive_error_only_when_no_outbound_call_failed(server_err: bool, child_err: bool, exclusive: int) -> None:
    sink = _run(payload(resource_spans(
        "a", span(1, 2, 1, CLIENT, 1, 3, child_err), span(1, 1, None, SERVER, 0, 10, server_err))))
    total = sink.service_total("a")
    assert (total.errors, total.exclusive_errors) == (int(server_err), exclusive)


def test_root_client_span_is_a_request_with_zero_self_time() -> None:
    sink = _run(payload(resource_spans("job", span(1, 1, None, CLIENT, 0, 20, True, attrs={"peer.service": "x"}))))
    total = sink.service_total("job")
    assert (total.requests, total.self_ms_sum, total.errors, total.exclusive_errors) == (1, 0.0, 1, 0)


def test_server_span_downstream_is_its_own_scope() -> None:
    # b's server span is a child of a's client span: it must not reduce a's self time twice
    sink = _run(payload(resource_spans("a", span(1, 1, None, SERVER, 0, 100), span(1, 2, 1, CLIENT, 10, 50))),
                payload(resource_spans("b", span(1, 3, 2, SERVER, 12, 40), span(1, 4, 3, INTERNAL, 13, 30))))
    assert sink.service_total("a").self_ms_sum == pytest.approx(50.0)
    assert sink.service_total("b").self_ms_sum == pytest.approx(40.0)


@pytest.mark.parametrize("ms", [0.0, 0.05, 0.1, 0.1414, 0.2, 0.3, 1.0, 7.3, 100.0, 1e4, 6e4, 1e9])
def test_inlined_histogram_bucket_matches_model(ms: float) -> None:
    sink = _run(payload(resource_spans("a", span(1, 1, None, SERVER, 0, ms))))
    hist = sink.service_total("a").histogram
    decoded_ms = int(ms * 1_000_000) / 1e6
    assert hist.index(1) == latency_bucket(decoded_ms)
