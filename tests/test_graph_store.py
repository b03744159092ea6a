"""The repository layer against the real Neo4j: create, read, constraints, idempotency."""

from __future__ import annotations

import pytest
from neo4j.exceptions import ConstraintError

from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.records import (
    Deployment, Entity, EntityKind, GraphDelta, StatsBucket, Window, latency_bucket,
)
from rootgraph.graph.reader import WindowReader
from rootgraph.graph.schema import SCHEMA_STATEMENTS
from rootgraph.graph.writer import GraphWriter


def _bucket(n: int, err: int, dur_each: float, self_each: float = 0.0, xerr: int = 0) -> StatsBucket:
    b = StatsBucket(requests=n, errors=err, duration_ms_sum=n * dur_each,
                    self_ms_sum=n * self_each, exclusive_errors=xerr)
    b.histogram[latency_bucket(dur_each)] += n
    return b


def _delta(batch: str) -> GraphDelta:
    d = GraphDelta(batch_id=batch, spans=30)
    d.entities = {
        "user": Entity("user", "user", EntityKind.USER),
        "shop/frontend": Entity("shop/frontend", "frontend", EntityKind.SERVICE, "shop"),
        "db:postgresql/orders": Entity("db:postgresql/orders", "orders", EntityKind.DATABASE),
        "host:node-1": Entity("host:node-1", "node-1", EntityKind.HOST),
    }
    d.edges = {("user", "shop/frontend"): _bucket(10, 1, 20.0),
               ("shop/frontend", "db:postgresql/orders"): _bucket(20, 2, 5.0)}
    d.service_buckets = {("shop/frontend", 600): _bucket(10, 1, 20.0, 10.0, 1)}
    d.edge_buckets = {("shop/frontend", "db:postgresql/orders", 600): _bucket(20, 2, 5.0)}
    d.runs_on = {("shop/frontend", "host:node-1")}
    d.versions = {("shop/frontend", "1.0.0"): 600_000}
    return d


def test_apply_delta_creates_entities_edges_and_buckets(writer: GraphWriter, reader: WindowReader) -> None:
    assert writer.apply_deltas([_delta("b1")]) == [True]
    entities, calls, runs = reader.service_graph()
    assert {e.id: e.kind for e in entities}["db:postgresql/orders"] is EntityKind.DATABASE
    assert ("shop/frontend", "db:postgresql/orders", 20, 2, False) in calls
    assert runs == [("shop/frontend", "host:node-1")]
    data = reader.read_window(Window(600, 660), Window(0, 600), 60)
    (row,) = data.service_buckets["shop/frontend"]
    assert (row.requests, row.errors, row.self_ms_sum, row.exclusive_errors) == (10, 1, 100.0, 1)
    assert row.histogram[latency_bucket(20.0)] == 10
    assert data.runs_on["shop/frontend"] == ("host:node-1",)
    assert data.entities["host:node-1"].kind is EntityKind.HOST


def test_resent_batch_is_not_counted_twice(writer: GraphWriter, reader: WindowReader) -> None:
    assert writer.apply_deltas([_delta("same")]) == [True]
    assert writer.apply_deltas([_delta("same")]) == [False]
    assert writer.apply_deltas([_delta("other")]) == [True]
    _, calls, _ = reader.service_graph()
    assert ("user", "shop/frontend", 20, 2, False) in calls  # two distinct batches only
    data = reader.read_window(Window(600, 660), Window(0, 600), 60)
    assert data.service_buckets["shop/frontend"][0].requests == 20
    assert data.service_buckets["shop/frontend"][0].histogram[latency_bucket(20.0)] == 20


def test_new_service_version_is_an_implicit_deployment(writer: GraphWriter, reader: WindowReader) -> None:
    writer.apply_deltas([_delta("v1")])
    d2 = _delta("v2")
    d2.versions = {("shop/frontend", "1.1.0"): 700_000, ("shop/frontend", "1.0.0"): 650_000}
    writer.apply_deltas([d2])
    writer.apply_deltas([_delta("v1-again")])  # old version still serving: no new deployment
    (dep,) = reader.deployments()
    assert (dep.service, dep.version, dep.previous_version, dep.at_ms, dep.source) == (
        "shop/frontend", "1.1.0", "1.0.0", 700_000, "span-version")


def test_record_deployment_is_idempotent(writer: GraphWriter, reader: WindowReader) -> None:
    dep = Deployment(id="argo-42", service="checkout", version="2.0", at_ms=1_000,
                     previous_version="1.9", commit="abc123", source="api",
                     attributes=(("env", "prod"),))
    assert writer.record_deployment(dep) is True
    assert writer.record_deployment(dep) is False
    assert reader.deployments() == [dep]


def test_uniqueness_constraint_rejects_duplicate_entity(store: GraphAdmin, neo4j_driver) -> None:  # noqa: ANN001
    with neo4j_driver.session() as s:
        s.run("CREATE (:Entity {id: 'x'})").consume()
        with pytest.raises(ConstraintError):
            s.run("CREATE (:Entity {id: 'x'})").consume()


def test_schema_bootstrap_is_idempotent(store: GraphAdmin, neo4j_driver) -> None:  # noqa: ANN001
    store.ensure_schema()
    store.ensure_schema()
    with neo4j_driver.session() as s:
        names = {r["name"] for r in s.run("SHOW CONSTRAINTS YIELD name")}
    assert {"entity_id", "service_bucket", "edge_bucket", "batch_id"} <= names
    assert len([q for q in SCHEMA_STATEMENTS if "CONSTRAINT" in q]) == len(
        [n for n in names if n in {q.split()[2] for q in SCHEMA_STATEMENTS}])


def test_prune_deletes_old_buckets_only(store: GraphAdmin, writer: GraphWriter, reader: WindowReader) -> None:
    d = _delta("p")
    d.service_buckets[("shop/frontend", 0)] = _bucket(1, 0, 1.0)
    writer.apply_deltas([d])
    store.prune(older_than_s=600, batch_ids_older_than_ms=0)
    data = reader.read_window(Window(600, 660), Window(0, 600), 60)
    assert [r.start_s for r in data.service_buckets["shop/frontend"]] == [600]


def test_incident_is_written_once_with_suspects_and_feedback_is_idempotent(writer: GraphWriter, neo4j_driver) -> None:  # noqa: ANN001,E501
    from rootgraph.graph.errors import NotFound
    from rootgraph.graph.incidents import FeedbackRecord, IncidentRecord, IncidentStore

    writer.apply_deltas([_delta("i")])
    incidents = IncidentStore(neo4j_driver)
    rec = IncidentRecord(
        id="inc-1", created_ms=5, start_s=600, end_s=660, baseline_start_s=0, baseline_end_s=600,
        model_version="prior-v1", symptoms=("shop/frontend",), no_clear_cause=False,
        suspects=(("db:postgresql/orders", 1, 0.9), ("shop/frontend", 2, 0.05)),
        affects=(("shop/frontend", 1.0),), response_json="{}", inputs_gz=b"\x1f\x8b",
    )
    incidents.save_incident(rec)
    got = incidents.get_incident("inc-1")
    assert got.suspects == rec.suspects and got.affects == rec.affects
    assert got.inputs_gz == b"\x1f\x8b"
    with pytest.raises(ConstraintError):  # never overwritten
        incidents.save_incident(rec)
    with pytest.raises(NotFound):
        incidents.get_incident("nope")
    fb = FeedbackRecord("fb-1", "inc-1", "db:postgresql/orders", False, "rollback", "resolved", "alice", "", 7)
    assert incidents.submit_feedback(fb) is True
    assert incidents.submit_feedback(fb) is False
    assert incidents.get_incident("inc-1").feedback == (fb,)
    with pytest.raises(NotFound):
        incidents.submit_feedback(FeedbackRecord("fb-2", "nope", "", True, "none", "", "", "", 1))


def test_explicit_and_implicit_records_of_one_rollout_are_one_deployment(
        writer: GraphWriter, reader: WindowReader) -> None:
    writer.apply_deltas([_delta("v1")])
    writer.record_deployment(Deployment(id="ci-7", service="shop/frontend", version="1.1.0", at_ms=690_000,
                                        previous_version="1.0.0", commit="c0ffee", source="ci"))
    d2 = _delta("v2")
    d2.versions = {("shop/frontend", "1.1.0"): 700_000}
    writer.apply_deltas([d2])  # the spans show the new version after CI reported it
    assert [(d.id, d.commit) for d in reader.deployments()] == [("ci-7", "c0ffee")]
    d3 = _delta("v3")
    d3.versions = {("shop/frontend", "1.2.0"): 800_000}
    writer.apply_deltas([d3])  # implicit first …
    writer.record_deployment(Deployment(id="ci-8", service="shop/frontend", version="1.2.0", at_ms=790_000,
                                        previous_version="1.1.0", source="ci"))  # … then CI reports it
    assert [d.id for d in reader.deployments()] == ["ci-7", "ci-8"]


def test_incident_inputs_are_zstd_and_gzip_records_of_before_still_read() -> None:
    import gzip

    from rootgraph.graph.incidents import pack_inputs, unpack_inputs

    doc = b'{"window": {"entities": []}, "symptoms": ["shop/frontend"], "top_k": 5}' * 50
    packed = pack_inputs(doc)
    assert packed[:4] == b"\x28\xb5\x2f\xfd" and len(packed) < len(doc)  # the zstd frame magic
    assert unpack_inputs(packed) == doc
    assert unpack_inputs(gzip.compress(doc, compresslevel=1)) == doc  # a record written before 2026-12
