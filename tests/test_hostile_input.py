"""Hostile and malformed OTLP input, explicit cases, into the real Neo4j (issue 8, part 2).

Decisions this file pins down (each asserted below):

* Cypher-looking names are data: stored verbatim, nothing else created or deleted.
* Over-long names reject the resource's spans with a reason; peer attributes that
  become entity ids are capped (``pairing.MAX_PEER_NAME``) so Neo4j's ~8 KB index-key
  limit can never fail a whole batch.
* Invalid UTF-8 in a protobuf *string* field makes the whole request malformed
  (protobuf refuses to parse it); OTLP/JSON cannot carry invalid UTF-8, and a lone
  surrogate escape (``\\udc80``) is malformed too. Control characters are stored verbatim
  (the API refuses them as *input* names, see test_hostile_rpc.py).
* A span id repeated inside one batch is counted as sent, once per copy: the decoder
  does not de-duplicate within a batch (a re-sent *batch* is deduplicated by batch id).
* ``start_time_unix_nano == 0`` is rejected; far-future times are accepted and stored in
  the bucket of their own start; unknown span kinds are read as INTERNAL.
"""

from __future__ import annotations

import time

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from test_ingest_helpers import BUCKET0, CLIENT, SERVER, payload, request, resource_spans, sid, span, tid

from rootgraph.graph.records import Window
from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.reader import WindowReader
from rootgraph.graph.writer import GraphWriter
from rootgraph.inference.rank import RootCauseRanker
from rootgraph.ingest.pipeline import Ingestor
from rootgraph.ingest.sink import InMemorySink
from rootgraph.ingest.spans import MalformedPayload

pytestmark = pytest.mark.neo4j

INJECTIONS = (
    "x'}) DETACH DELETE n //",
    'x"}) MATCH (m) DETACH DELETE m RETURN 1 //',
    "`a`:Label",
    "a}) CREATE (:Pwned {by: 'x'}) WITH 1 AS x MATCH (n) DETACH DELETE n //",
    "$param",
    "{id: 'x'}",
    "\\u0027) RETURN 1 //",
)
KNOWN_LABELS = {"Entity", "Service", "Database", "Queue", "External", "User", "Infra", "Host",
                "K8sNode", "Pod", "ServiceBucket", "EdgeBucket", "Deployment", "Incident",
                "Feedback", "IngestBatch", "ModelVersion", "BucketStamp",
                "LogBucket", "LogTemplate", "LogMinerState", "MetricBucket",
                "IncidentEvent", "IncidentEventSequence", "DetectorLease", "Alert", "RemediationStep"}


def _scalar(store: GraphAdmin, query: str, **params: object) -> object:
    with store._driver.session() as s:  # noqa: SLF001 - a test reads the raw graph
        return s.run(query, **params).single()[0]


def _node_count(store: GraphAdmin) -> int:
    return _scalar(store, "MATCH (n) RETURN count(n)")  # type: ignore[return-value]


def _edges(reader: WindowReader) -> dict[tuple[str, str], int]:
    return {(a, b): c for a, b, c, _, _ in reader.service_graph()[1]}


def test_cypher_injection_names_are_stored_verbatim_and_change_nothing_else(store: GraphAdmin, writer: GraphWriter, reader: WindowReader) -> None:
    ingestor = Ingestor(writer)
    ingestor.ingest_request(payload(resource_spans("sentinel", span(1, 1, None, SERVER, 0, 10))))
    before = _node_count(store)
    spans = []
    for i, name in enumerate(INJECTIONS):
        spans.append(resource_spans(name, span(100 + i, 1, None, SERVER, 0, 10),
                                    span(100 + i, 2, 1, CLIENT, 1, 5, attrs={"peer.service": "peer " + name})))
    result = ingestor.ingest_request(request(*spans))
    assert (result.accepted_spans, result.rejected_spans) == (2 * len(INJECTIONS), 0)
    ingestor.flush_all()  # the client halves to virtual peers are written when they expire

    ids = {e.id for e in reader.service_graph()[0]}
    assert ids == {"user", "sentinel", *INJECTIONS, *("peer " + n for n in INJECTIONS)}
    assert {("user", n) for n in INJECTIONS} | {(n, "peer " + n) for n in INJECTIONS} <= set(_edges(reader))
    labels = set(_scalar(store, "CALL db.labels() YIELD label RETURN collect(label)"))  # type: ignore[arg-type]
    assert labels <= KNOWN_LABELS, labels - KNOWN_LABELS
    # sentinel survived; per name exactly 2 entities, 1 service bucket and 2 edge buckets
    # were added, plus 2 batch markers (the spans, then the expiry of the client halves)
    assert _scalar(store, "MATCH (e:Entity {id: 'sentinel'}) RETURN count(e)") == 1
    assert _node_count(store) == before + 5 * len(INJECTIONS) + 2


def test_megabyte_service_name_is_rejected_with_reason_and_nothing_stored(store: GraphAdmin, writer: GraphWriter) -> None:
    huge = "s" * (1 << 20)
    result = Ingestor(writer).ingest_request(request(
        resource_spans(huge, span(1, 1), span(1, 2, 1, CLIENT)),
        resource_spans("ok", span(2, 1), service__namespace=huge),
    ))
    assert (result.accepted_spans, result.rejected_spans) == (0, 3)
    assert result.reasons == {"service.name too long": 3}
    assert _node_count(store) == 0
    at_limit = Ingestor(writer).ingest_request(payload(resource_spans("n" * 256, span(3, 1))))
    assert at_limit.accepted_spans == 1  # the limit is 256 characters, inclusive


def test_huge_peer_attributes_are_capped_so_the_batch_is_written(writer: GraphWriter, reader: WindowReader) -> None:
    """Regression: two 1 KiB four-byte-character attributes once failed the whole write."""
    big = "\U0001f600" * 5000
    result = Ingestor(writer).ingest_request(payload(
        resource_spans("svc", span(1, 1, None, SERVER, 0, 20),
                       span(1, 2, 1, CLIENT, 1, 5, attrs={"db.system": big, "db.name": big}),
                       span(1, 3, 1, CLIENT, 1, 5, attrs={"peer.service": big}),
                       span(1, 4, 1, CLIENT, 1, 5, attrs={"url.full": "https://" + "h" * 3000 + ".com/x"})),
        resource_spans("ci", span(2, 1, None, SERVER, 0, 10, attrs={
            "cicd.pipeline.name": "p", "cicd.pipeline.task.type": "deploy",
            "service.name": big, "service.namespace": big, "service.version": "2"})),
    ))
    assert (result.accepted_spans, result.rejected_spans) == (5, 0)
    ids = [e.id for e in reader.service_graph()[0]]
    assert max(len(i) for i in ids) <= 1024 + len("queue:")
    assert sum(1 for i in ids if i.startswith("db:\U0001f600")) == 1
    assert len(reader.deployments()) == 1


def test_invalid_utf8_in_a_protobuf_string_is_a_malformed_request(store: GraphAdmin, writer: GraphWriter) -> None:
    good = payload(resource_spans("svcX", span(1, 1)))
    bad = good.replace(b"svcX", b"sv\xff\xfe")
    ingestor = Ingestor(writer)
    with pytest.raises(MalformedPayload, match="UTF-8"):
        ingestor.ingest_request(bad)
    with pytest.raises(MalformedPayload):  # OTLP/JSON: raw invalid UTF-8 and a lone surrogate
        ingestor.ingest_request(b'{"resourceSpans": [{"resource": "\xff"}]}', "application/json")
    doc = ('{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
           '{"stringValue":"a\\udc80"}}]},"scopeSpans":[{"spans":[{"traceId":"0101010101010101'
           '0101010101010101","spanId":"0101010101010101","startTimeUnixNano":"5"}]}]}]}')
    with pytest.raises(MalformedPayload, match="surrogate"):
        ingestor.ingest_request(doc.encode(), "application/json")
    assert _node_count(store) == 0
    assert ingestor.stats()["requests_malformed"] == 3


def test_control_characters_in_names_are_stored_verbatim(writer: GraphWriter, reader: WindowReader) -> None:
    name = "a\x00b\x1b[31mred\r\nInjected-Log-Line\x7f"
    result = Ingestor(writer).ingest_request(payload(resource_spans(name, span(1, 1))))
    assert result.accepted_spans == 1
    assert reader.entity(name) is not None and reader.entity(name).name == name  # type: ignore[union-attr]


def test_empty_request_and_zero_spans_write_nothing(store: GraphAdmin, writer: GraphWriter) -> None:
    ingestor = Ingestor(writer)
    for req in (b"", payload(), payload(resource_spans("a")), payload(resource_spans(None))):
        result = ingestor.ingest_request(req)
        assert (result.accepted_spans, result.rejected_spans, dict(result.reasons)) == (0, 0, {})
    assert _node_count(store) == 0
    assert ingestor.stats()["batches_applied"] == 0


def test_batch_of_50000_spans_is_accepted_and_counted_exactly(store: GraphAdmin, reader: WindowReader, writer: GraphWriter) -> None:
    services = [f"svc-{i}" for i in range(10)]
    rss = [resource_spans(s, *(span(1000 * k + j + 1, 1, None, SERVER, j % 600_000, 3)
                               for j in range(5000)))
           for k, s in enumerate(services)]
    t0 = time.perf_counter()
    result = Ingestor(writer).ingest_request(payload(*rss))
    assert (result.accepted_spans, result.rejected_spans) == (50_000, 0)
    assert _scalar(store, "MATCH (b:ServiceBucket) RETURN sum(b.n)") == 50_000
    assert _edges(reader) == {("user", s): 5000 for s in services}
    assert time.perf_counter() - t0 < 30


def test_duplicate_span_ids_in_one_batch_are_counted_per_copy(store: GraphAdmin, reader: WindowReader, writer: GraphWriter) -> None:
    twice = span(1, 1, None, SERVER, 0, 10)
    result = Ingestor(writer).ingest_request(payload(resource_spans("a", twice, twice)))
    assert (result.accepted_spans, result.rejected_spans, result.duplicate) == (2, 0, False)
    assert _edges(reader) == {("user", "a"): 2}
    assert _scalar(store, "MATCH (b:ServiceBucket {entity: 'a'}) RETURN b.n") == 2


def test_self_calls_and_cycles_become_edges_and_ranking_still_answers(writer: GraphWriter, reader: WindowReader) -> None:
    ingestor = Ingestor(writer)
    rss_a, rss_b = [], []
    for i in range(40):  # baseline minute 0..9 healthy; incident minutes 30..34 a fails
        minute = i if i < 30 else 30 + (i - 30) % 5
        t, err = minute * 60_000, i >= 30
        tr = 1000 + i
        rss_a += [span(tr, 1, None, SERVER, t, 50, err), span(tr, 2, 1, CLIENT, t + 1, 10, err),
                  span(tr, 3, 2, SERVER, t + 2, 8, err),                      # a -> a (self-call)
                  span(tr, 4, 1, CLIENT, t + 20, 20)]                         # a -> b
        rss_b += [span(tr, 5, 4, SERVER, t + 21, 18), span(tr, 6, 5, CLIENT, t + 22, 10)]
        rss_a += [span(tr, 7, 6, SERVER, t + 23, 8)]                          # b -> a (cycle)
    ingestor.ingest_request(request(resource_spans("a", *rss_a), resource_spans("b", *rss_b)))
    ingestor.flush_all()
    edges = _edges(reader)
    assert edges[("a", "a")] == 40 and edges[("a", "b")] == 40 and edges[("b", "a")] == 40
    incident = Window(BUCKET0 + 30 * 60, BUCKET0 + 35 * 60)
    baseline = Window(BUCKET0, BUCKET0 + 30 * 60)
    ranking = RootCauseRanker().rank(reader.read_window(incident, baseline, 60), symptoms=("a",))
    assert ranking.causes and {c.entity for c in ranking.causes} <= {"a", "b", "user"}
    assert all(0.0 <= c.probability <= 1.0 for c in ranking.causes)


def test_trace_of_100000_spans_is_ingested_within_bounds() -> None:
    """One trace, a call chain 50,000 hops deep alternating a -> b -> a (ingest level)."""
    spans_by_service: dict[str, list[PbSpan]] = {"a": [], "b": []}
    for hop in range(50_000):
        service = "a" if hop % 2 == 0 else "b"
        server_id, client_id = 2 * hop + 1, 2 * hop + 2
        spans_by_service[service] += [
            span(7, server_id, server_id - 1 if hop else None, SERVER, hop * 0.01, 5),
            span(7, client_id, server_id, CLIENT, hop * 0.01 + 0.001, 4),
        ]
    sink = InMemorySink()
    t0 = time.perf_counter()
    result = Ingestor(sink).ingest_request(payload(*(resource_spans(s, *sp) for s, sp in spans_by_service.items())))
    elapsed = time.perf_counter() - t0
    assert (result.accepted_spans, result.rejected_spans) == (100_000, 0)
    counts = {k: v.requests for k, v in sink.edges.items()}
    assert counts == {("user", "a"): 1, ("a", "b"): 25_000, ("b", "a"): 24_999}
    assert elapsed < 20, f"100,000-span trace took {elapsed:.1f} s"


def test_clock_skew_child_before_parent_still_pairs(store: GraphAdmin, reader: WindowReader, writer: GraphWriter) -> None:
    result = Ingestor(writer).ingest_request(request(
        resource_spans("a", span(1, 1, None, SERVER, 0, 100), span(1, 2, 1, CLIENT, 10, 50)),
        resource_spans("b", span(1, 3, 2, SERVER, -500, 40)),  # starts 510 ms before its caller
    ))
    assert result.accepted_spans == 3
    assert _edges(reader) == {("user", "a"): 1, ("a", "b"): 1}
    rows = dict(store._read(lambda tx: tx.run(  # noqa: SLF001
        "MATCH (b:ServiceBucket) RETURN b.entity, [b.t, b.dur, b.self]").values()))
    assert rows["b"][0] == BUCKET0 - 60  # bucketed by its own (skewed) start
    assert all(dur >= 0 and self_ >= 0 for _, dur, self_ in rows.values())


def test_timestamps_zero_rejected_far_future_stored_in_its_own_bucket(store: GraphAdmin, writer: GraphWriter) -> None:
    y2100 = 4_102_444_800  # 2100-01-01T00:00:00Z, a multiple of 60
    spans = [
        PbSpan(trace_id=tid(1), span_id=sid(1), kind=SERVER, start_time_unix_nano=0, end_time_unix_nano=5),
        PbSpan(trace_id=tid(2), span_id=sid(1), kind=SERVER, start_time_unix_nano=y2100 * 10**9 + 7,
               end_time_unix_nano=y2100 * 10**9 + 10**6),
        PbSpan(trace_id=tid(3), span_id=sid(1), kind=SERVER, start_time_unix_nano=2**64 - 1,
               end_time_unix_nano=2**64 - 1),
        # end before start is clamped, not rejected
        PbSpan(trace_id=tid(4), span_id=sid(1), kind=SERVER, start_time_unix_nano=y2100 * 10**9,
               end_time_unix_nano=1),
    ]
    result = Ingestor(writer).ingest_request(payload(resource_spans("a", *spans)))
    assert (result.accepted_spans, result.rejected_spans, dict(result.reasons)) == (
        3, 1, {"missing start time": 1})
    buckets = dict(store._read(lambda tx: tx.run(  # noqa: SLF001
        "MATCH (b:ServiceBucket {entity: 'a'}) RETURN b.t, b.n").values()))
    assert buckets == {y2100: 2, (2**64 - 1) // 10**9 // 60 * 60: 1}


def test_unknown_span_kinds_are_read_as_internal(store: GraphAdmin, reader: WindowReader, writer: GraphWriter) -> None:
    spans = [span(i, 1, None, SERVER, 0, 10) for i in (1, 2, 3, 4)]
    for sp, kind in zip(spans, (99, -1, 2**31 - 1, 0)):
        sp.kind = kind
    child = span(1, 2, 1, CLIENT, 1, 5, attrs={"peer.service": "p"})
    child.kind = 77  # an unknown kind is INTERNAL: no outbound call, no edge
    result = Ingestor(writer).ingest_request(payload(resource_spans("a", *spans, child)))
    assert (result.accepted_spans, result.rejected_spans) == (5, 0)
    # each root INTERNAL span is a request to its service (an entry), but no call: only
    # SERVER/CONSUMER spans are called by someone, and the unknown-kind child calls no one
    assert _edges(reader) == {}
    assert _scalar(store, "MATCH (b:ServiceBucket {entity: 'a'}) RETURN sum(b.n)") == 4
