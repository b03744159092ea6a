"""Ingestor: transactional pairing, idempotent batches, deployments, config, counters."""

from __future__ import annotations

import pytest
from test_ingest_helpers import BUCKET0, CLIENT, SERVER, payload, request, resource_spans, span

from rootgraph.ingest.config import IngestConfig, IngestConfigError
from rootgraph.ingest.pipeline import Ingestor
from rootgraph.graph.errors import StoreUnavailable
from rootgraph.ingest.sink import DeltaSink, InMemorySink
from rootgraph.ingest.spans import MalformedPayload

CLIENT_BATCH = payload(resource_spans("a", span(1, 1, None, SERVER, 0, 100), span(1, 2, 1, CLIENT, 10, 50)))
SERVER_BATCH = payload(resource_spans("b", span(1, 3, 2, SERVER, 12, 40)))


def _counts(sink: InMemorySink) -> dict[tuple[str, str], int]:
    return {k: v.requests for k, v in sink.edges.items()}


def test_in_memory_sink_satisfies_the_protocol() -> None:
    assert isinstance(InMemorySink(), DeltaSink)
    assert StoreUnavailable.retryable is True


def test_failed_write_rolls_back_pairing_and_retry_counts_once() -> None:
    sink = InMemorySink()
    ingestor = Ingestor(sink)
    ingestor.ingest_request(CLIENT_BATCH)
    sink.fail_next = 1
    with pytest.raises(StoreUnavailable):
        ingestor.ingest_request(SERVER_BATCH)
    stats = ingestor.stats()
    assert (stats["paired"], stats["pending_clients"], stats["batches_failed"]) == (0, 1, 1)
    ingestor.ingest_request(SERVER_BATCH)  # the client's retry
    assert _counts(sink) == {("user", "a"): 1, ("a", "b"): 1}
    assert sink.service_total("b").requests == 1
    assert ingestor.stats()["paired"] == 1


def test_resent_batch_in_other_order_is_a_duplicate_and_not_counted_twice() -> None:
    sink = InMemorySink()
    ingestor = Ingestor(sink)
    first = ingestor.ingest_request(CLIENT_BATCH)
    again = ingestor.ingest_request(
        payload(resource_spans("a", span(1, 2, 1, CLIENT, 10, 50), span(1, 1, None, SERVER, 0, 100))))
    assert (first.duplicate, again.duplicate, again.batch_id) == (False, True, first.batch_id)
    ingestor.ingest_request(SERVER_BATCH)
    assert _counts(sink) == {("user", "a"): 1, ("a", "b"): 1}
    assert sink.service_total("a").requests == 1
    assert ingestor.stats()["batches_duplicate"] == 1


def test_lost_ack_then_retry_commits_pairing_once() -> None:
    sink = InMemorySink()
    ingestor = Ingestor(sink)
    sink.fail_after_apply = 1
    with pytest.raises(StoreUnavailable):
        ingestor.ingest_request(CLIENT_BATCH)
    assert ingestor.ingest_request(CLIENT_BATCH).duplicate
    ingestor.ingest_request(SERVER_BATCH)  # pairs with the client half remembered on retry
    assert _counts(sink) == {("user", "a"): 1, ("a", "b"): 1}
    assert ingestor.stats()["duplicates_recovered"] == 1


def test_cicd_deploy_span_becomes_deployment_not_traffic() -> None:
    sink = InMemorySink()
    ingestor = Ingestor(sink)
    deploy = span(7, 8, None, SERVER, 0, 60_000, attrs={
        "cicd.pipeline.name": "release", "cicd.pipeline.task.type": "deploy",
        "cicd.pipeline.task.run.result": "success", "service.name": "checkout",
        "service.namespace": "shop", "service.version": "2.0.1", "vcs.ref.head.revision": "abc123",
    })
    build = span(7, 9, 8, SERVER, 0, 10, attrs={"cicd.pipeline.task.type": "build"})
    result = ingestor.ingest_request(payload(resource_spans("github-actions", deploy, build)))
    assert result.accepted_spans == 2
    (dep,) = sink.deployments.values()
    assert (dep.id, dep.service, dep.version, dep.commit, dep.source, dep.at_ms) == (
        f"cicd:{(7).to_bytes(16, 'big').hex()}:{(8).to_bytes(8, 'big').hex()}",
        "shop/checkout", "2.0.1", "abc123", "cicd", BUCKET0 * 1000,
    )
    assert ("cicd.pipeline.task.run.result", "success") in dep.attributes
    assert sink.service_buckets == {} and sink.edges == {}
    assert ingestor.stats()["cicd_spans"] == 2


def test_versions_runs_on_and_infra_entities() -> None:
    sink = InMemorySink()
    Ingestor(sink).ingest_request(payload(resource_spans(
        "a", span(1, 1, None, SERVER, 5, 1), span(1, 2, None, SERVER, 2, 1),
        service__version="1.4", host__name="h1", k8s__pod__name="a-1", k8s__node__name="n1")))
    assert sink.versions == {("a", "1.4"): BUCKET0 * 1000 + 2}
    assert sink.runs_on == {("a", "host:h1"), ("a", "node:n1"), ("a", "pod:a-1")}
    assert {e.id: e.kind.value for e in sink.entities.values()} == {
        "a": "service", "host:h1": "host", "node:n1": "node", "pod:a-1": "pod", "user": "user"}


def test_bucket_key_is_floor_of_span_start() -> None:
    sink = InMemorySink()
    Ingestor(sink, IngestConfig(bucket_seconds=60)).ingest_request(payload(resource_spans(
        "a", span(1, 1, None, SERVER, 59_999, 10), span(1, 2, None, SERVER, 60_000, 10))))
    assert sorted(k[1] for k in sink.service_buckets) == [BUCKET0, BUCKET0 + 60]


def test_rejected_spans_are_reported_and_counted() -> None:
    sink = InMemorySink()
    ingestor = Ingestor(sink)
    result = ingestor.ingest_request(payload(resource_spans(None, span(1, 1))))
    assert (result.accepted_spans, result.rejected_spans, dict(result.reasons)) == (0, 1, {"missing service.name": 1})
    assert sink.calls == 0
    assert ingestor.stats()["rejected:missing service.name"] == 1
    with pytest.raises(MalformedPayload):
        ingestor.ingest_request(b"\x0a\xff")


def test_parsed_message_is_accepted() -> None:
    sink = InMemorySink()
    Ingestor(sink).ingest_request(request(resource_spans("a", span(1, 1))))
    assert sink.spans == 1


def test_flush_all_degrades_everything_and_applies_it() -> None:
    sink = InMemorySink()
    ingestor = Ingestor(sink)
    ingestor.ingest_request(payload(resource_spans("b", span(1, 3, 2, SERVER, 12, 40))))
    assert ingestor.flush_all() == 1
    assert _counts(sink) == {("user", "b"): 1}
    assert ingestor.stats()["pending_servers"] == 0


def test_stats_has_every_documented_key() -> None:
    keys = set(Ingestor(InMemorySink()).stats())
    assert {
        "spans_received", "spans_accepted", "spans_rejected", "paired", "expired", "evicted_when_full",
        "unpaired_client", "unpaired_server", "virtual", "pending_clients", "pending_servers",
        "batches_applied", "batches_duplicate", "batches_failed", "late_after_expiry",
    } <= keys


@pytest.mark.parametrize(("field", "value"), [
    ("bucket_seconds", 0), ("bucket_seconds", 7), ("pending_max_entries", -1), ("pending_ttl_s", 0),
    ("self_time_ttl_s", "x"), ("max_attribute_value_len", True), ("expired_key_memory_s", -1)])
def test_config_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(IngestConfigError, match=field):
        IngestConfig(**{field: value}).validate()  # type: ignore[arg-type]


def test_pairing_wait_setting_reads_the_environment_and_names_itself_when_invalid() -> None:
    from rootgraph.config import ConfigError, Settings, load_settings

    assert Settings().pairing_wait_seconds == IngestConfig().pending_ttl_s  # one default
    assert load_settings(env={"ROOTGRAPH_PAIRING_WAIT_SECONDS": "45"}).pairing_wait_seconds == 45.0
    assert load_settings(env={}, pairing_wait_seconds=2.5).pairing_wait_seconds == 2.5
    for raw in ("0", "-1", "nan", "3601", "soon"):
        with pytest.raises(ConfigError, match="^pairing_wait_seconds"):
            load_settings(env={"ROOTGRAPH_PAIRING_WAIT_SECONDS": raw})
