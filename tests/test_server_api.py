"""Every RootCause RPC through a real server on loopback over the real Neo4j.

Calls go through the generated stub (via the typed client) and, for the contract, a
reflection-based client that knows nothing but the server's reflection service.
"""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from rootgraph.client import RootGraphClient
from rootgraph.graph.records import Entity, EntityKind, GraphDelta, StatsBucket, WindowData, window_to_delta
from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.reader import WindowReader
from rootgraph.graph.writer import GraphWriter
from rootgraph.inference.synthetic import Profile, WindowBuilder
from rootgraph.v1 import rootgraph_pb2 as pb
from rootgraph.v1 import rootgraph_pb2_grpc as pb_grpc


ALIGNED = 1_700_000_040  # a minute boundary, so the server's bucket snapping is a no-op


def db_incident() -> WindowData:
    """user → frontend → checkout → db:postgresql/orders; the database starts failing."""
    wb = WindowBuilder(start_s=ALIGNED)
    broken = Profile(error_rate=0.4, exclusive_rate=0.0)
    wb.serve("frontend", incident=broken)
    wb.serve("checkout", incident=broken)
    wb.call("user", "frontend", incident=broken)
    wb.call("frontend", "checkout", incident=broken)
    wb.call("checkout", "db:postgresql/orders", incident=Profile(error_rate=0.45))
    wb.serve("catalogue")
    wb.call("frontend", "catalogue")
    wb.deploy("catalogue", "2.0.1", 3, previous="2.0.0")  # a decoy on a healthy service
    return wb.build()


@pytest.fixture()
def incident(writer: GraphWriter) -> WindowData:
    w = db_incident()
    writer.apply_deltas([window_to_delta(w)])
    return w


@pytest.fixture()
def client(app):  # noqa: ANN001,ANN201
    with RootGraphClient(f"127.0.0.1:{app.ports['api']}") as c:
        yield c


def test_rank_causes_blames_the_database_and_records_the_incident(client, incident, neo4j_driver) -> None:  # noqa: ANN001,E501
    answer = client.rank_causes(incident.incident.start_s, incident.incident.end_s, top_k=3)
    assert answer.causes[0].entity == "db:postgresql/orders"
    assert answer.causes[0].rank == 1 and answer.causes[0].probability > 0.5
    assert not answer.no_clear_cause
    assert answer.model_version
    assert "frontend" in answer.symptoms
    assert any(p[0] == "db:postgresql/orders" for p in answer.causes[0].paths)
    assert answer.causes[0].explanation
    assert [c.entity for c in answer.causes].index("db:postgresql/orders") == 0
    assert answer.causes[0].fault_kind == "errors"  # its callers see errors, not latency
    assert 0.35 < answer.causes[0].fault_size < 0.55  # the database fails 45 % of its calls
    assert all(c.entity != "catalogue" for c in answer.causes[:1])  # the decoy deploy loses
    with neo4j_driver.session() as s:
        rows = s.run("MATCH (i:Incident {id: $id})-[r:SUSPECTS]->(e) RETURN e.id, r.rank ORDER BY r.rank",
                     id=answer.incident_id).values()
        blamed = s.run("MATCH (:Incident {id: $id})-[:BLAMES]->(e) RETURN e.id", id=answer.incident_id).values()
    assert rows[0] == ["db:postgresql/orders", 1]
    assert blamed == [["db:postgresql/orders"]]
    recorded = client.get_incident(answer.incident_id)
    assert [c.entity for c in recorded.ranking.causes] == [c.entity for c in answer.causes]
    evidence = json.loads(recorded.evidence_json)
    assert evidence["window"]["incident"] == [incident.incident.start_s, incident.incident.end_s]


def test_rank_causes_validates_fields(client, incident) -> None:  # noqa: ANN001
    s, e = incident.incident.start_s, incident.incident.end_s
    cases = [
        (dict(start=e, end=s), "end"),
        (dict(start=s, end=e, top_k=1000), "top_k"),
        (dict(start=s, end=e, symptoms=["x" * 600]), "symptoms"),
        (dict(start=s, end=e, symptoms=["nope"]), None),
    ]
    for kwargs, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            client.rank_causes(**kwargs)
        if field is None:
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
        else:
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith(field)


def test_rank_causes_with_nothing_anomalous_is_an_honest_no_clear_cause(client, writer) -> None:  # noqa: ANN001
    wb = WindowBuilder(start_s=ALIGNED)
    wb.serve("a")
    wb.call("user", "a")
    w = wb.build()
    writer.apply_deltas([window_to_delta(w)])
    answer = client.rank_causes(w.incident.start_s, w.incident.end_s)
    assert answer.no_clear_cause


def test_blast_radius_reaches_callers_transitively(client, incident) -> None:  # noqa: ANN001
    br = client.blast_radius("db:postgresql/orders", at=incident.incident.end_s)
    for kind in ("errors", "latency", "saturation", "down"):  # the contract's fault kinds are accepted
        assert client.blast_radius("db:postgresql/orders", fault_kind=kind, at=incident.incident.end_s).impacts
    by = {i.entity: i for i in br.impacts}
    assert by["checkout"].hops == 1 and by["frontend"].hops == 2
    assert by["checkout"].probability >= by["frontend"].probability > 0
    assert by["frontend"].path == ("db:postgresql/orders", "checkout", "frontend")
    assert 0 < br.entry_traffic_share_affected <= 1
    with pytest.raises(grpc.RpcError) as err:
        client.blast_radius("no-such-service")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        client.blast_radius("checkout", fault_kind="meteor")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The ChatOps flow: the blast radius of the top cause's fault as it is happening.
    top = client.rank_causes(incident.incident.start_s, incident.incident.end_s).causes[0]
    sized = client.blast_radius(top.entity, fault_kind=top.fault_kind, fault_size=top.fault_size,
                                at=incident.incident.start_s)
    assert {i.entity for i in sized.impacts if i.probability >= 0.5} >= {"checkout", "frontend"}
    for kind, size in (("errors", 1.5), ("", 0.2), ("saturation", 0.5), ("latency", -3.0)):
        with pytest.raises(grpc.RpcError) as err:
            client.blast_radius("checkout", fault_kind=kind, fault_size=size)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("fault_size")


def test_blast_radius_reuses_its_what_if_network_until_the_data_changes(client, incident, app, writer) -> None:  # noqa: ANN001,E501
    at = incident.incident.end_s
    builds = app.whatif.builds
    first = client.blast_radius("db:postgresql/orders", at=at)
    again = client.blast_radius("checkout", at=at)
    assert app.whatif.builds == builds + 1 and app.whatif.hits >= 1  # one network, two answers
    assert {i.entity for i in again.impacts} >= {"frontend"}
    # A new deployment inside the history window is part of the window's version: a new model.
    client.record_deployment("checkout", "9.9.9", id="late-1", at=at - 120)
    client.blast_radius("db:postgresql/orders", at=at)
    assert app.whatif.builds == builds + 2
    # So do new statistics (another process's write: the stamps tell).
    more = db_incident()
    writer.apply_deltas([window_to_delta(more, batch_id="more")])
    after = client.blast_radius("db:postgresql/orders", at=at)
    assert app.whatif.builds == builds + 3
    assert [i.entity for i in after.impacts] == [i.entity for i in first.impacts]


def test_blast_radius_reads_complete_minutes_only(client, incident, app, writer) -> None:  # noqa: ANN001
    """The minute being written (every ingest batch) neither changes nor rebuilds the answer."""
    end = incident.incident.end_s
    at = end + 30  # half-way through the minute after the stored data
    builds = app.whatif.builds
    first = client.blast_radius("db:postgresql/orders", fault_kind="errors", at=at)
    live = GraphDelta(batch_id="live-minute", entities={e: incident.entities[e] for e in ("checkout", "frontend")})
    live.service_buckets[("checkout", end)] = StatsBucket(50, 50, 50_000.0, 50_000.0, 50, [0] * 40)
    live.edge_buckets[("frontend", "checkout", end)] = StatsBucket(50, 50, 50_000.0, 0.0, 0, [0] * 40)
    live.edges[("frontend", "checkout")] = StatsBucket(50, 50, 50_000.0, 0.0, 0, [0] * 40)
    writer.apply_deltas([live])
    again = client.blast_radius("db:postgresql/orders", fault_kind="errors", at=at)
    assert app.whatif.builds == builds + 1  # the same network
    assert [(i.entity, i.probability) for i in again.impacts] == [(i.entity, i.probability) for i in first.impacts]
    # Once the minute is complete it is part of the answer.
    client.blast_radius("db:postgresql/orders", fault_kind="errors", at=end + 60)
    assert app.whatif.builds == builds + 2
    # An entity first seen in the minute being written still answers, from that minute.
    new = GraphDelta(batch_id="newcomer", entities={"newcomer": Entity("newcomer", "newcomer", EntityKind.SERVICE),
                                                     "frontend": incident.entities["frontend"]})
    new.service_buckets[("newcomer", end + 60)] = StatsBucket(20, 0, 400.0, 400.0, 0, [0] * 40)
    new.edge_buckets[("frontend", "newcomer", end + 60)] = StatsBucket(20, 0, 500.0, 0.0, 0, [0] * 40)
    new.edges[("frontend", "newcomer")] = StatsBucket(20, 0, 500.0, 0.0, 0, [0] * 40)
    writer.apply_deltas([new])
    fresh = client.blast_radius("newcomer", fault_kind="down", at=end + 90)
    assert {i.entity for i in fresh.impacts} >= {"newcomer", "frontend"}
    with pytest.raises(grpc.RpcError) as err:  # ... but not before it existed
        client.blast_radius("newcomer", at=end + 60)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE


def test_blast_radius_before_an_entitys_first_traffic_says_when_it_starts(client, incident, store, writer) -> None:  # noqa: ANN001,E501
    """Not "unknown entity" for an entity the graph lists: no traffic before `at`, and from when."""
    from datetime import datetime, timezone

    end = incident.incident.end_s
    late = GraphDelta(batch_id="late", entities={"late": Entity("late", "late", EntityKind.SERVICE),
                                                 "frontend": incident.entities["frontend"]})
    late.service_buckets[("late", end + 120)] = StatsBucket(20, 0, 400.0, 400.0, 0, [0] * 40)
    late.edge_buckets[("frontend", "late", end + 120)] = StatsBucket(20, 0, 500.0, 0.0, 0, [0] * 40)
    late.edges[("frontend", "late")] = StatsBucket(20, 0, 500.0, 0.0, 0, [0] * 40)
    writer.apply_deltas([late])
    assert ("late", "service") in client.service_graph().entities
    first = datetime.fromtimestamp(end + 120, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(grpc.RpcError) as err:  # its traffic starts a few seconds after `at`
        client.blast_radius("late", at=end + 115)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert err.value.details().startswith("at: entity 'late' exists but had no traffic in the hour before at")
    assert f"first traffic is in the minute from {first}" in err.value.details()
    assert {i.entity for i in client.blast_radius("late", fault_kind="down", at=end + 130).impacts} >= {"frontend"}
    # Known, but no traffic stored at all (e.g. pruned): said too, without a time.
    writer.apply_deltas([GraphDelta(batch_id="silent", entities={"silent": Entity("silent", "silent",
                                                                                  EntityKind.SERVICE)})])
    with pytest.raises(grpc.RpcError) as err:
        client.blast_radius("silent", at=end)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE and "no traffic of it is stored" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:  # the graph really does not know it
        client.blast_radius("lat", at=end + 115)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_record_deployment_is_idempotent_and_validated(client, incident, store, reader) -> None:  # noqa: ANN001
    assert client.record_deployment("checkout", "1.4.2", id="argo-1", commit="abc", previous_version="1.4.1",
                                    at=1_700_000_000, attributes={"env": "prod"}) is True
    assert client.record_deployment("checkout", "1.4.2", id="argo-1", at=1_700_000_000) is False
    dep = next(d for d in reader.deployments() if d.id == "argo-1")
    assert (dep.service, dep.version, dep.previous_version, dep.commit) == ("checkout", "1.4.2", "1.4.1", "abc")
    with pytest.raises(grpc.RpcError) as err:
        client.record_deployment("", "1.0")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("service")


@pytest.fixture()
def deploy_stub(app):  # noqa: ANN001,ANN201
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as channel:
        yield pb_grpc.RootCauseStub(channel)


def _sock_shop(writer: GraphWriter) -> None:
    """Services as traces name them: ``service.namespace``/``service.name``."""
    delta = GraphDelta(batch_id="sock-shop")
    for ns, name in (("sock-shop", "orders"), ("sock-shop", "carts"), ("other", "carts")):
        delta.entities[f"{ns}/{name}"] = Entity(f"{ns}/{name}", name, EntityKind.SERVICE, ns)
    writer.apply_deltas([delta])


def test_record_deployment_without_id_derives_a_key_that_a_retry_repeats(deploy_stub, store, reader, writer) -> None:  # noqa: ANN001
    """A CI script's call without id: the retry is recognised (created=false), not doubled."""
    import hashlib
    from google.protobuf.timestamp_pb2 import Timestamp

    _sock_shop(writer)
    req = pb.RecordDeploymentRequest(service="sock-shop/orders", version="2.1.0", commit="9f2c")
    first, retry = deploy_stub.RecordDeployment(req, timeout=30), deploy_stub.RecordDeployment(req, timeout=30)
    assert (first.created, retry.created) == (True, False) and first.id == retry.id
    # the documented derivation: sha256 over [service, version, commit, at ms or null]
    assert first.id == "deploy:" + hashlib.sha256(b'["sock-shop/orders", "2.1.0", "9f2c", null]').hexdigest()[:32]
    timed = pb.RecordDeploymentRequest(service="sock-shop/orders", version="2.1.0", commit="9f2c",
                                       at=Timestamp(seconds=1_700_000_100))
    a, b = deploy_stub.RecordDeployment(timed, timeout=30), deploy_stub.RecordDeployment(timed, timeout=30)
    assert (a.created, b.created) == (True, False) and a.id == b.id != first.id
    assert sorted(d.id for d in reader.deployments()) == sorted({first.id, a.id})


def test_record_deployment_resolves_a_bare_name_and_refuses_unknown_services(deploy_stub, store, client, reader, writer) -> None:  # noqa: ANN001,E501
    _sock_shop(writer)
    entities = store.counts()["entities"]
    bare = deploy_stub.RecordDeployment(pb.RecordDeploymentRequest(service="orders", version="3"), timeout=30)
    assert bare.created and bare.service == "sock-shop/orders"
    (dep,) = reader.deployments()
    assert dep.service == "sock-shop/orders"
    with store._driver.session() as s:  # noqa: SLF001 - linked to the service inference reads
        assert s.run("MATCH (:Deployment {id: $id})-[:OF]->(e:Entity) RETURN e.id", id=bare.id).single()[0] \
            == "sock-shop/orders"
    # the same deployment named in full is the same key: a retry, not a second record
    assert not deploy_stub.RecordDeployment(pb.RecordDeploymentRequest(service="sock-shop/orders", version="3"),
                                            timeout=30).created
    for name, expect in (("ordrs", "did you mean: sock-shop/orders"),
                         ("carts", "other/carts, sock-shop/carts"),
                         ("brand-new", "no service of that name has sent traffic yet")):
        with pytest.raises(grpc.RpcError) as err:
            client.record_deployment(name, "1.0", commit="abc")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, name
        assert err.value.details().startswith("service:") and expect in err.value.details(), err.value.details()
    counts = store.counts()
    assert counts["deployments"] == 1 and counts["entities"] == entities  # nothing stored silently


def test_submit_feedback_and_get_incident(client, incident) -> None:  # noqa: ANN001
    answer = client.rank_causes(incident.incident.start_s, incident.incident.end_s)
    assert client.submit_feedback("fb-1", answer.incident_id, confirmed_cause="db:postgresql/orders",
                                  action="failover", outcome="resolved", confirmed_by="oncall") is True
    assert client.submit_feedback("fb-1", answer.incident_id, confirmed_cause="db:postgresql/orders",
                                  action="failover", outcome="resolved") is False
    inc = client.get_incident(answer.incident_id)
    assert [f.confirmed_cause for f in inc.feedback] == ["db:postgresql/orders"]
    assert inc.feedback[0].action == pb.REMEDIATION_ACTION_FAILOVER
    for kwargs, code in (
        (dict(feedback_id="fb-2", incident_id="inc-missing", confirmed_cause="x"), grpc.StatusCode.NOT_FOUND),
        (dict(feedback_id="fb-3", incident_id=answer.incident_id), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.RpcError) as err:
            client.submit_feedback(**kwargs)
        assert err.value.code() == code
    with pytest.raises(grpc.RpcError) as err:
        client.get_incident("inc-missing")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_service_graph(client, incident) -> None:  # noqa: ANN001
    g = client.service_graph()
    assert ("checkout", "db:postgresql/orders") in {(a, b) for a, b, *_ in g.edges}
    assert ("db:postgresql/orders", "database") in g.entities


def test_deadline_is_honoured(app, incident) -> None:  # noqa: ANN001
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as ch:
        stub = pb_grpc.RootCauseStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.RankCauses(pb.RankCausesRequest(), timeout=0.001)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_health_is_serving_with_neo4j(app) -> None:  # noqa: ANN001
    _wait_serving(app)  # once the start-up warm-up is done (test_health_is_not_serving_until_...)
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        for service in ("", "rootgraph.v1.RootCause"):
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_client_lists_services_and_calls_without_the_proto(app, incident) -> None:  # noqa: ANN001
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as ch:
        db = ProtoReflectionDescriptorDatabase(ch)
        services = set(db.get_services())
        assert {"rootgraph.v1.RootCause", "opentelemetry.proto.collector.trace.v1.TraceService",
                "grpc.health.v1.Health"} <= services
        pool = descriptor_pool.DescriptorPool(db)
        method = pool.FindServiceByName("rootgraph.v1.RootCause").methods_by_name["GetServiceGraph"]
        req_cls = message_factory.GetMessageClass(method.input_type)
        resp_cls = message_factory.GetMessageClass(method.output_type)
        call = ch.unary_unary("/rootgraph.v1.RootCause/GetServiceGraph",
                              request_serializer=req_cls.SerializeToString,
                              response_deserializer=resp_cls.FromString)
        resp = call(req_cls(), timeout=10)
        assert "db:postgresql/orders" in {e.id for e in resp.entities}
        bad = pool.FindServiceByName("rootgraph.v1.RootCause").methods_by_name["BlastRadius"]
        breq = message_factory.GetMessageClass(bad.input_type)(entity="nope")
        with pytest.raises(grpc.RpcError) as err:
            ch.unary_unary("/rootgraph.v1.RootCause/BlastRadius", request_serializer=type(breq).SerializeToString,
                           response_deserializer=message_factory.GetMessageClass(bad.output_type).FromString)(
                breq, timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_unavailable_when_neo4j_is_unreachable() -> None:
    """A server whose Neo4j is down answers UNAVAILABLE (retryable), not INTERNAL."""
    from concurrent import futures

    from neo4j import GraphDatabase

    from rootgraph.graph.incidents import IncidentStore
    from rootgraph.inference import RootCauseRanker, blast_radius
    from rootgraph.server.rootcause import RootCauseServicer

    driver = GraphDatabase.driver("bolt://127.0.0.1:1", auth=("neo4j", "x"), connection_timeout=1.0,
                                  max_transaction_retry_time=0.5)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_RootCauseServicer_to_server(
        RootCauseServicer(WindowReader(driver), IncidentStore(driver), RootCauseRanker(), blast_radius,
                          deployments=GraphWriter(driver)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with RootGraphClient(f"127.0.0.1:{port}") as c:
            for call in (lambda: c.rank_causes(), lambda: c.service_graph(), lambda: c.blast_radius("x"),
                         lambda: c.record_deployment("a", "1")):
                with pytest.raises(grpc.RpcError) as err:
                    call()
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(0)
        driver.close()


def test_blast_radius_for_an_entity_without_recent_traffic_uses_the_stored_graph(client, incident) -> None:  # noqa: ANN001,E501
    """What-if for something quiet now: the fixture's traffic is years old, `at` defaults to now."""
    br = client.blast_radius("db:postgresql/orders")
    assert {i.entity for i in br.impacts} >= {"checkout", "frontend"}


def _health(app, service: str) -> int:  # noqa: ANN001
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as ch:
        return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def _wait_serving(app, deadline_s: float = 60.0) -> None:  # noqa: ANN001
    import time

    end = time.monotonic() + deadline_s
    while _health(app, "rootgraph.v1.RootCause") != health_pb2.HealthCheckResponse.SERVING:
        assert time.monotonic() < end, "API not SERVING before the deadline"
        time.sleep(0.05)


def test_health_is_not_serving_until_the_start_up_warm_up_finished(neo4j_driver, neo4j_settings, store, monkeypatch) -> None:  # noqa: ANN001,E501
    import threading
    from dataclasses import replace

    from rootgraph.server.app import App

    release, started = threading.Event(), threading.Event()
    real = App._warm_up

    def slow_warm_up(self) -> None:  # noqa: ANN001
        started.set()
        release.wait(30)
        real(self)

    monkeypatch.setattr(App, "_warm_up", slow_warm_up)
    settings = replace(neo4j_settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                       otlp_http_address="127.0.0.1:0")
    app = App(settings, neo4j_driver).start()
    try:
        assert started.wait(30)
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        assert _health(app, "rootgraph.v1.RootCause") == _health(app, "") == not_serving
        # ingest needs no warm-up: OTLP is accepted meanwhile
        assert _health(app, "opentelemetry.proto.collector.trace.v1.TraceService") == \
            health_pb2.HealthCheckResponse.SERVING
        release.set()
        _wait_serving(app)
        assert _health(app, "") == health_pb2.HealthCheckResponse.SERVING
    finally:
        release.set()
        app.stop(grace_s=1.0)

