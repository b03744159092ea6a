"""RecordRemediationStep through a real server on loopback over the real Neo4j.

The server is the remediation record of truth (graph/remediation.py): steps are stored in
the only safe order, a decision taken by one client is refused to another, a retried step
changes nothing, and every new step is a WatchIncidents event.
"""

from __future__ import annotations

import threading

import grpc
import pytest

from rootgraph.client import RemediationStep, RootGraphClient
from rootgraph.graph.records import window_to_delta
from rootgraph.graph.writer import GraphWriter
from rootgraph.v1 import rootgraph_pb2 as pb

from test_server_api import db_incident

CAUSE = "db:postgresql/orders"


@pytest.fixture()
def client(app):  # noqa: ANN001,ANN201
    with RootGraphClient(f"127.0.0.1:{app.ports['api']}") as c:
        yield c


@pytest.fixture()
def incident_id(client: RootGraphClient, writer: GraphWriter) -> str:
    w = db_incident()
    writer.apply_deltas([window_to_delta(w)])
    return client.rank_causes(w.incident.start_s, w.incident.end_s, top_k=3).incident_id


def _step(incident: str, step_id: str, kind: str, **kw: object) -> RemediationStep:
    proposal = "" if kind == "proposed" else kw.pop("proposal_id", "p-1")
    return RemediationStep(step_id, incident, kind, proposal_id=str(proposal), **kw)  # type: ignore[arg-type]


def _code(fn) -> grpc.StatusCode:  # noqa: ANN001
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code()


def test_a_proposal_runs_its_course_and_the_record_is_in_get_incident_and_the_graph(
        client: RootGraphClient, incident_id: str, neo4j_driver) -> None:  # noqa: ANN001
    steps = [
        _step(incident_id, "p-1", "proposed", action="rollback", target=CAUSE, actor="remediate",
              detail='{"probability": 0.97}'),
        _step(incident_id, "p-1/approved", "approved", actor="alice"),
        _step(incident_id, "p-1/executed", "executed", action="rollback", target=CAUSE, actor="executor",
              exit_status=0, detail="argv: echo rollback"),
        _step(incident_id, "p-1/outcome", "outcome", outcome="made_worse", action="rollback", target=CAUSE),
    ]
    assert [client.record_remediation_step(s) for s in steps] == [True] * 4
    # a retried step (the client did not see the answer) changes nothing
    assert client.record_remediation_step(steps[1]) is False
    got = client.remediation_steps(incident_id)
    assert [(s.step_id, s.kind, s.proposal_id) for s in got] == [
        ("p-1", "proposed", "p-1"), ("p-1/approved", "approved", "p-1"),
        ("p-1/executed", "executed", "p-1"), ("p-1/outcome", "outcome", "p-1")]
    assert got[1].actor == "alice" and got[0].action == "rollback" and got[3].outcome == "made_worse"
    assert got[0].detail == '{"probability": 0.97}' and all(s.at_s > 0 for s in got)
    with neo4j_driver.session() as s:
        rows = s.run("MATCH (s:RemediationStep)-[:STEP_OF]->(:Incident {id: $id}) "
                     "OPTIONAL MATCH (s)-[:TARGETS]->(e:Entity) RETURN s.kind, e.id ORDER BY s.at, s.id",
                     id=incident_id).values()
    assert rows == [["proposed", CAUSE], ["approved", None], ["executed", CAUSE], ["outcome", CAUSE]]


def test_steps_out_of_order_are_refused_and_nothing_is_stored(client: RootGraphClient, incident_id: str) -> None:
    rec = client.record_remediation_step
    assert _code(lambda: rec(_step(incident_id, "x", "approved", proposal_id="nope"))) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: rec(_step("inc-missing", "p-9", "proposed", action="rollback"))) == grpc.StatusCode.NOT_FOUND
    rec(_step(incident_id, "p-1", "proposed", action="restart", target=CAUSE))
    # executing, or reporting an outcome, before anybody approved
    assert _code(lambda: rec(_step(incident_id, "e", "executed"))) == grpc.StatusCode.FAILED_PRECONDITION
    assert _code(lambda: rec(_step(incident_id, "o", "outcome", outcome="resolved"))) == \
        grpc.StatusCode.FAILED_PRECONDITION
    assert rec(_step(incident_id, "d", "denied", actor="bob"))
    # denied means denied: a late approval, and an execution, are refused; the message says who decided
    with pytest.raises(grpc.RpcError) as e:
        rec(_step(incident_id, "a", "approved", actor="alice"))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "denied by bob" in e.value.details()
    assert _code(lambda: rec(_step(incident_id, "e", "executed"))) == grpc.StatusCode.FAILED_PRECONDITION
    # the same step id reused for another step is a conflict, not a silent no-op
    assert _code(lambda: rec(_step(incident_id, "d", "approved"))) == grpc.StatusCode.ALREADY_EXISTS
    assert [s.kind for s in client.remediation_steps(incident_id)] == ["proposed", "denied"]


@pytest.mark.parametrize("step, field", [
    (pb.RemediationStep(incident_id="i", kind=pb.REMEDIATION_STEP_KIND_PROPOSED), "step.step_id"),
    (pb.RemediationStep(step_id="s", incident_id="i"), "step.kind"),
    (pb.RemediationStep(step_id="s", incident_id="i", kind=pb.REMEDIATION_STEP_KIND_PROPOSED), "step.action"),
    (pb.RemediationStep(step_id="s", incident_id="i", kind=pb.REMEDIATION_STEP_KIND_APPROVED), "step.proposal_id"),
    (pb.RemediationStep(step_id="s", incident_id="i", proposal_id="p", kind=pb.REMEDIATION_STEP_KIND_OUTCOME),
     "step.outcome"),
    (pb.RemediationStep(step_id="s", incident_id="i", proposal_id="p", kind=pb.REMEDIATION_STEP_KIND_APPROVED,
                        outcome=pb.OUTCOME_RESOLVED), "step.outcome"),
    (pb.RemediationStep(step_id="s", incident_id="i", proposal_id="p", kind=pb.REMEDIATION_STEP_KIND_DENIED,
                        detail="x" * 20_000), "step.detail"),
    (pb.RemediationStep(step_id="s", incident_id="i", proposal_id="p", kind=pb.REMEDIATION_STEP_KIND_DENIED,
                        action=99), "step.action"),
])
def test_invalid_steps_name_the_field(app, step: pb.RemediationStep, field: str) -> None:  # noqa: ANN001
    from rootgraph.v1 import rootgraph_pb2_grpc as pb_grpc

    with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as ch:
        stub = pb_grpc.RootCauseStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.RecordRemediationStep(pb.RecordRemediationStepRequest(step=step), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith(field), e.value.details()


def test_racing_decisions_one_wins(client: RootGraphClient, incident_id: str) -> None:
    """Eight clients decide one proposal at once (chat, CLI, a second replica): exactly
    one decision is stored and every other one is told it lost."""
    client.record_remediation_step(_step(incident_id, "p-1", "proposed", action="rollback", target=CAUSE))
    results: list[object] = []
    start = threading.Barrier(8)

    def decide(i: int) -> None:
        start.wait()
        kind = "approved" if i % 2 else "denied"
        try:
            results.append(client.record_remediation_step(_step(incident_id, f"d-{i}", kind, actor=f"u{i}")))
        except grpc.RpcError as e:
            results.append(e.code())

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert results.count(grpc.StatusCode.FAILED_PRECONDITION) == 7
    assert len([s for s in client.remediation_steps(incident_id) if s.kind in ("approved", "denied")]) == 1


def test_each_new_step_is_a_watch_event_and_a_retry_is_not(client: RootGraphClient, incident_id: str) -> None:
    from itertools import islice

    client.record_remediation_step(_step(incident_id, "p-1", "proposed", action="rollback", target=CAUSE))
    client.record_remediation_step(_step(incident_id, "a", "approved", actor="alice"))
    client.record_remediation_step(_step(incident_id, "a", "approved", actor="alice"))  # a retry: no event
    client.record_remediation_step(_step(incident_id, "e", "executed", actor="executor", dry_run=True))
    # RankCauses answers write no events, so these are the first three of the log
    events = list(islice(client.watch_incidents(after_seq=0), 3))
    assert [(e.kind, e.remediation.kind, e.remediation.actor) for e in events] == [
        ("remediation", "proposed", ""), ("remediation", "approved", "alice"), ("remediation", "executed", "executor")]
    assert all(e.incident_id == incident_id for e in events)
    assert events[0].seq < events[1].seq < events[2].seq and events[2].remediation.dry_run
