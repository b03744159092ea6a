"""The simulator's spans are real, well-formed OpenTelemetry spans that pair up.

Uses the ``tiny`` topology (no background errors) and the SDK's in-memory exporter,
so every assertion is about exact outcomes.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from rootgraph.simulate import Fault, FaultKind, ScenarioSpec, run

START = 1_767_225_600
BASE, INC = 60.0, 60.0
ONSET_NS = int((START + BASE) * 1e9)


def _run(faults=(), decoys=(), rate=10.0):
    exporter = InMemorySpanExporter()
    spec = ScenarioSpec("t", "tiny", tuple(faults), tuple(decoys), seed=7, baseline_s=BASE,
                        incident_s=INC, rate_rps=rate)
    labels = run(spec, exporter)
    return labels, exporter.get_finished_spans()


@pytest.fixture(scope="module")
def healthy():
    return _run()


def _svc(span) -> str:
    r = span.resource.attributes
    ns = r.get("service.namespace")
    return f"{ns}/{r['service.name']}" if ns else r["service.name"]


def test_every_client_span_to_a_service_has_a_server_child_with_matching_ids(healthy):
    labels, spans = healthy
    assert len(spans) == labels.spans > 1000
    children = defaultdict(list)
    for s in spans:
        if s.parent is not None:
            children[(s.context.trace_id, s.parent.span_id)].append(s)
    clients = [s for s in spans if s.kind is SpanKind.CLIENT and "db.system" not in s.attributes
               and "url.full" in s.attributes and "peer.service" in s.attributes]
    assert clients
    for c in clients:
        kids = children[(c.context.trace_id, c.context.span_id)]
        assert [k.kind for k in kids] == [SpanKind.SERVER]
        assert kids[0].resource.attributes["service.name"] == c.attributes["peer.service"]
        # the client span encloses its server span
        assert c.start_time <= kids[0].start_time and kids[0].end_time <= c.end_time
    producers = [s for s in spans if s.kind is SpanKind.PRODUCER]
    assert producers
    for p in producers:
        kids = children[(p.context.trace_id, p.context.span_id)]
        assert [k.kind for k in kids] == [SpanKind.CONSUMER]
        assert kids[0].attributes["messaging.destination.name"] == p.attributes["messaging.destination.name"]


def test_roots_are_entry_server_spans_and_children_fit_inside_sync_parents(healthy):
    _, spans = healthy
    by_id = {(s.context.trace_id, s.context.span_id): s for s in spans}
    for s in spans:
        if s.parent is None:
            assert s.kind is SpanKind.SERVER and s.resource.attributes["service.name"] == "gateway"
            continue
        parent = by_id[(s.context.trace_id, s.parent.span_id)]
        assert parent.context.trace_id == s.context.trace_id
        if s.kind is not SpanKind.CONSUMER:  # async consumers run after the producer ends
            assert parent.start_time <= s.start_time and s.end_time <= parent.end_time


def test_resources_carry_service_identity_version_and_placement(healthy):
    _, spans = healthy
    for s in spans:
        r = s.resource.attributes
        assert r["service.name"] and r["service.version"] and r["host.name"]
        assert r["k8s.node.name"] == r["host.name"] and r["k8s.pod.name"]
    orders = next(s for s in spans if s.resource.attributes["service.name"] == "orders")
    assert orders.resource.attributes["service.namespace"] == "shop"


def test_database_spans_carry_db_system_and_namespace(healthy):
    _, spans = healthy
    db = [s for s in spans if "db.system" in s.attributes]
    assert {s.attributes["db.system"] for s in db} == {"postgresql", "mysql"}
    for s in db:
        assert s.kind is SpanKind.CLIENT
        a = s.attributes
        assert a["db.system.name"] == a["db.system"] and a["db.namespace"] == a["db.name"]
        assert a["server.address"]


def test_cycle_is_bounded_by_max_depth(healthy):
    _, spans = healthy
    by_id = {(s.context.trace_id, s.context.span_id): s for s in spans}

    def depth(s) -> int:
        d = 0
        while s.parent is not None:
            s = by_id[(s.context.trace_id, s.parent.span_id)]
            d += s.kind in (SpanKind.SERVER, SpanKind.CONSUMER)
        return d

    server_depths = [depth(s) for s in spans if s.kind is SpanKind.SERVER]
    assert max(server_depths) <= 6 - 1
    # the catalog -> recs -> catalog cycle really occurs
    recs_called_by_catalog = [
        s for s in spans if s.kind is SpanKind.SERVER and _svc(s) == "recs"
        and _svc(by_id[(s.context.trace_id, s.parent.span_id)]) == "catalog"]
    assert recs_called_by_catalog


def test_bad_deployment_changes_service_version_at_onset():
    labels, spans = _run([Fault("payments", FaultKind.BAD_DEPLOY, 0.5)])
    pay = [s for s in spans if s.resource.attributes["service.name"] == "payments"]
    before = {s.resource.attributes["service.version"] for s in pay if s.start_time < ONSET_NS}
    after = {s.resource.attributes["service.version"] for s in pay if s.start_time >= ONSET_NS}
    assert before == {"3.1.4"} and after == {"3.1.5"}
    pods = {s.resource.attributes["k8s.pod.name"] for s in pay}
    assert len(pods) == 2  # a rollout replaces the pod
    new_server = [s for s in pay if s.kind is SpanKind.SERVER and s.start_time >= ONSET_NS]
    assert sum(s.status.status_code is StatusCode.ERROR for s in new_server) > 0.3 * len(new_server)
    [dep] = labels.deployments
    assert (dep.service, dep.version, dep.previous, dep.at_s) == ("payments", "3.1.5", "3.1.4", START + BASE)


def test_failed_call_is_retried_once_as_a_second_client_span():
    _, spans = _run([Fault("payments", FaultKind.ERROR, 0.5)])
    calls = defaultdict(list)
    for s in spans:
        if s.kind is SpanKind.CLIENT and s.attributes.get("peer.service") == "payments":
            calls[(s.context.trace_id, s.parent.span_id)].append(s)
    attempts = sorted(len(v) for v in calls.values())
    assert set(attempts) == {1, 2}
    for group in calls.values():
        if len(group) == 2:
            first, second = sorted(group, key=lambda s: s.start_time)
            assert first.status.status_code is StatusCode.ERROR and second.start_time > first.end_time


def test_error_propagation_stops_at_a_fallback_caller():
    _, spans = _run([Fault("recs", FaultKind.ERROR, 1.0)])
    inc = [s for s in spans if s.start_time >= ONSET_NS]
    recs_server = [s for s in inc if s.kind is SpanKind.SERVER and _svc(s) == "recs"]
    assert recs_server and all(s.status.status_code is StatusCode.ERROR for s in recs_server)
    # gateway calls recs with a fallback: its client span fails, its own span does not
    gw_clients = [s for s in inc if _svc(s) == "gateway" and s.attributes.get("peer.service") == "recs"]
    assert gw_clients and all(s.status.status_code is StatusCode.ERROR for s in gw_clients)
    assert not any(s.status.status_code is StatusCode.ERROR for s in inc
                   if s.kind is SpanKind.SERVER and _svc(s) in ("gateway", "catalog"))


def test_a_sync_callee_error_without_fallback_fails_every_caller_up_the_chain():
    _, spans = _run([Fault("pricing", FaultKind.ERROR, 1.0)])
    inc = [s for s in spans if s.start_time >= ONSET_NS and s.kind is SpanKind.SERVER]
    checkout = [s for s in inc if _svc(s) == "gateway" and s.name == "GET /checkout"]
    orders = [s for s in inc if _svc(s) == "shop/orders"]
    assert checkout and orders
    assert all(s.status.status_code is StatusCode.ERROR for s in checkout + orders)
    home = [s for s in inc if _svc(s) == "gateway" and s.name == "GET /home"]
    assert not any(s.status.status_code is StatusCode.ERROR for s in home)
