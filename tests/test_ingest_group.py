"""Group commit: concurrent requests share one sink transaction, with per-request outcomes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from rootgraph.graph.records import GraphDelta
from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.writer import GraphWriter
from rootgraph.ingest.group import GroupCommitter
from rootgraph.ingest.pipeline import Ingestor
from rootgraph.graph.errors import StoreUnavailable
from rootgraph.ingest.sink import InMemorySink
from rootgraph.simulate.replay import ReplayTemplate, build_template


@pytest.fixture(scope="module")
def template() -> ReplayTemplate:
    return build_template(3_000, topology="sockshop", rate_rps=20.0)


def _payloads(t: ReplayTemplate, rounds: int = 2) -> list[bytes]:
    return [t.round_payload(i, 0, r) for r in range(rounds) for i in range(len(t.payloads))]


def test_group_equals_sequential(template: ReplayTemplate) -> None:
    payloads = _payloads(template)
    seq = InMemorySink()
    one = Ingestor(seq)
    for p in payloads:
        one.ingest_request(p)
    one.flush_all()
    grp = InMemorySink()
    ing = Ingestor(grp)
    results = ing.ingest_group([ing.prepare(p) for p in payloads])
    ing.flush_all()
    assert not any(r.duplicate for r in results)
    assert grp.spans == seq.spans == 2 * template.spans
    assert {k: (v.requests, v.errors) for k, v in grp.edges.items()} == \
        {k: (v.requests, v.errors) for k, v in seq.edges.items()}
    assert sum(b.requests for b in grp.service_buckets.values()) == 2 * template.entries


def test_failed_group_changes_nothing_and_retry_counts_once(template: ReplayTemplate) -> None:
    payloads = _payloads(template, 1)
    sink = InMemorySink(fail_next=1)
    ing = Ingestor(sink)
    with pytest.raises(StoreUnavailable):
        ing.ingest_group([ing.prepare(p) for p in payloads])
    assert ing.stats()["pending_clients"] == 0 and sink.spans == 0
    ing.ingest_group([ing.prepare(p) for p in payloads])
    again = ing.ingest_group([ing.prepare(p) for p in payloads[:3]])  # re-sent after a lost ack
    assert all(r.duplicate for r in again)
    assert sink.spans == template.spans


def test_lost_ack_then_retry_is_not_counted_twice(template: ReplayTemplate) -> None:
    payloads = _payloads(template, 1)
    sink = InMemorySink(fail_after_apply=1)
    ing = Ingestor(sink)
    with pytest.raises(StoreUnavailable):
        ing.ingest_group([ing.prepare(p) for p in payloads])
    results = ing.ingest_group([ing.prepare(p) for p in payloads])
    assert all(r.duplicate for r in results)
    assert ing.stats()["duplicates_recovered"] == len(payloads)
    assert sink.spans == template.spans


def test_concurrent_submits_are_grouped_and_each_acknowledged(template: ReplayTemplate) -> None:
    sink = InMemorySink()
    groups: list[int] = []
    gate = threading.Event()
    real = sink.apply_deltas

    def slow_apply(deltas: list[GraphDelta]) -> list[bool]:
        gate.wait(5)  # hold the first group so the others queue up behind it
        groups.append(len(deltas))
        return real(deltas)

    sink.apply_deltas = slow_apply  # type: ignore[method-assign]
    committer = GroupCommitter(Ingestor(sink), max_requests=64)
    payloads = _payloads(template, 3)
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(committer.submit, p) for p in payloads]
        gate.set()
        results = [f.result(timeout=30) for f in futures]
    committer.close()
    assert sum(r.accepted_spans for r in results) == sink.spans == 3 * template.spans
    assert sum(groups) == len(payloads) and max(groups) > 1


def test_deadline_withdraws_a_queued_request(template: ReplayTemplate) -> None:
    sink = InMemorySink()
    entered, release = threading.Event(), threading.Event()
    real = sink.apply_deltas
    sink.apply_deltas = lambda d: (entered.set(), release.wait(10), real(d))[2]  # type: ignore[method-assign]
    committer = GroupCommitter(Ingestor(sink), max_requests=1)
    p0, p1 = _payloads(template, 1)[:2]
    first = threading.Thread(target=committer.submit, args=(p0,))
    first.start()
    assert entered.wait(10)  # p0 is being written; p1 can only queue
    with pytest.raises(TimeoutError):
        committer.submit(p1, timeout_s=0.2)  # queued behind the blocked write: withdrawn
    release.set()
    first.join(10)
    committer.close()
    assert len(sink.applied_batches) == 1


@pytest.mark.neo4j
def test_store_apply_deltas_skips_stored_members(store: GraphAdmin, writer: GraphWriter, template: ReplayTemplate) -> None:
    captured: list[GraphDelta] = []
    ing = Ingestor(InMemorySink())
    ing._sink.apply_deltas = lambda ds: (captured.extend(ds), [True] * len(ds))[1]  # type: ignore[attr-defined]  # noqa: SLF001
    ing.ingest_group([ing.prepare(p) for p in _payloads(template, 1)])
    assert writer.apply_deltas(captured[:2]) == [True, True]
    assert writer.apply_deltas(captured) == [False, False] + [True] * (len(captured) - 2)
    with store._driver.session() as s:  # noqa: SLF001
        n = s.run("MATCH (b:ServiceBucket) RETURN sum(b.n) AS n").single()["n"]
        spans = s.run("MATCH (b:IngestBatch) RETURN sum(b.spans) AS n").single()["n"]
    assert n == template.entries and spans == template.spans
