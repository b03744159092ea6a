"""The detector in the real server over the real Neo4j: detection, the watch stream and its
cursor through a real gRPC channel, the lease taken over, and Alertmanager's webhook."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import replace

import grpc
import pytest
from detection_support import DB, T0, minutes

from rootgraph.config import Secret
from rootgraph.server.app import App
from rootgraph.v1 import rootgraph_pb2 as pb
from rootgraph.v1 import rootgraph_pb2_grpc as pb_grpc

TOKEN = "detector-test-token"


def _settings(neo4j_settings, **kw):  # noqa: ANN001,ANN003,ANN202
    return replace(neo4j_settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                   otlp_http_address="127.0.0.1:0", detector_interval_seconds=0.2,
                   detector_resolve_buckets=3, detector_lease_seconds=2.0, **kw)


@pytest.fixture()
def detecting(neo4j_driver, neo4j_settings, store):  # noqa: ANN001,ANN201
    app = App(_settings(neo4j_settings, api_token=Secret(TOKEN)), neo4j_driver).start()
    yield app
    app.stop(grace_s=1.0)


def _wait(cond, deadline_s: float = 60.0, what: str = "condition"):  # noqa: ANN001,ANN202
    end = time.monotonic() + deadline_s
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def _events(stub, after: int, n: int, timeout_s: float = 60.0) -> list[pb.IncidentEvent]:  # noqa: ANN001
    out: list[pb.IncidentEvent] = []
    stream = stub.WatchIncidents(pb.WatchIncidentsRequest(after_seq=after), timeout=timeout_s)
    for r in stream:
        out.append(r.event)
        if len(out) >= n:
            stream.cancel()
            break
    return out


def test_a_simulated_fault_opens_exactly_one_incident_streamed_with_its_cause(detecting, writer) -> None:  # noqa: ANN001
    with grpc.insecure_channel(f"127.0.0.1:{detecting.ports['api']}") as ch:
        stub = pb_grpc.RootCauseStub(ch)
        writer.apply_deltas(minutes(0, 60, fault=(40, 46)))
        opened, resolved = _events(stub, 0, 2)[0], None
        assert opened.kind == pb.INCIDENT_EVENT_KIND_OPENED and opened.seq >= 1
        assert opened.bucket.seconds - (T0 + 40 * 60) <= 60   # judged at most 2 buckets after onset
        assert opened.ranking.causes[0].entity == DB
        evs = _wait(lambda: _all(stub), what="the incident resolved")
        kinds = [e.kind for e in evs]
        assert kinds.count(pb.INCIDENT_EVENT_KIND_OPENED) == 1
        resolved = [e for e in evs if e.kind == pb.INCIDENT_EVENT_KIND_RESOLVED]
        assert len(resolved) == 1 and resolved[0].incident_id == opened.incident_id
        assert [e.seq for e in evs] == list(range(evs[0].seq, evs[0].seq + len(evs)))
        listed = stub.ListIncidents(pb.ListIncidentsRequest(state=pb.INCIDENT_STATE_RESOLVED), timeout=10)
        assert [i.incident_id for i in listed.incidents] == [opened.incident_id]
        assert listed.incidents[0].top_cause == DB
        assert not stub.ListIncidents(pb.ListIncidentsRequest(state=pb.INCIDENT_STATE_OPEN), timeout=10).incidents


def test_a_long_fault_keeps_its_incident_open_until_it_ends(detecting, writer) -> None:  # noqa: ANN001
    """A 70-minute fault: its buckets fill the sliding 30-bucket baseline, and judged
    against that alone the fault looks normal after ~18 buckets (the incident resolved
    at minute 59 of 40-110). Judged against the baseline before the incident as well,
    it stays open while the fault lasts and resolves only after it ends."""
    writer.apply_deltas(minutes(0, 125, fault=(40, 110)))
    last = T0 + 123 * 60  # the newest complete bucket
    _wait(lambda: detecting.detector._position == last, deadline_s=180, what="every bucket judged")  # noqa: SLF001
    with urllib.request.urlopen(f"http://127.0.0.1:{detecting.ports['otlp_http']}/metrics", timeout=5) as r:
        metrics = dict(line.rsplit(" ", 1) for line in r.read().decode().splitlines())
    # operators see whether detection keeps up: all caught up, every bucket since the first judgeable one
    assert metrics["rootgraph_ingest_detector_buckets_behind"] == "0"
    assert int(metrics["rootgraph_ingest_detector_buckets_judged"]) == detecting.detector.judged > 0
    incidents = [i for i in detecting.events.list_incidents() if i[1] in ("open", "resolved")]
    assert len(incidents) == 1, [(i[0], i[1], i[2], i[3]) for i in incidents]
    (iid, state, opened, resolved, top, *_rest) = incidents[0]
    assert top == DB and opened <= T0 + 41 * 60
    assert state == "resolved" and resolved >= T0 + 110 * 60, (state, (resolved - T0) / 60 if resolved else None)


def _all(stub) -> list[pb.IncidentEvent] | None:  # noqa: ANN001
    """Every stored event once a resolved one is among them (a stream read to its end)."""
    got: list[pb.IncidentEvent] = []
    try:
        for r in stub.WatchIncidents(pb.WatchIncidentsRequest(after_seq=0), timeout=1.0):
            got.append(r.event)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    return got if any(e.kind == pb.INCIDENT_EVENT_KIND_RESOLVED for e in got) else None


def test_a_client_killed_mid_stream_resumes_with_its_cursor_and_gets_every_event_once(detecting, writer) -> None:  # noqa: ANN001,E501
    addr = f"127.0.0.1:{detecting.ports['api']}"
    writer.apply_deltas(minutes(0, 60, fault=(40, 46)))
    with grpc.insecure_channel(addr) as ch:
        full = _wait(lambda: _all(pb_grpc.RootCauseStub(ch)), what="the incident's whole life")
    received: list[int] = []
    ch = grpc.insecure_channel(addr)
    first = _events(pb_grpc.RootCauseStub(ch), 0, 1)
    received += [e.seq for e in first]
    ch.close()  # killed mid-stream
    with grpc.insecure_channel(addr) as ch2:
        rest = _events(pb_grpc.RootCauseStub(ch2), received[-1], len(full) - 1)
    received += [e.seq for e in rest]
    assert received == [e.seq for e in full]
    assert [e.SerializeToString() for e in first + rest] == [e.SerializeToString() for e in full]


def _otlp_span_at(t_s: int) -> bytes:
    """One OTLP/HTTP protobuf body: a SERVER span of shop/frontend starting at ``t_s``."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for k, v in (("service.name", "frontend"), ("service.namespace", "shop")):
        rs.resource.attributes.append(KeyValue(key=k, value=AnyValue(string_value=v)))
    rs.scope_spans.add().spans.append(Span(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="GET /", kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=t_s * 1_000_000_000, end_time_unix_nano=t_s * 1_000_000_000 + 5_000_000))
    return req.SerializeToString()


def test_the_detector_wakes_when_ingest_commits_a_newer_bucket(neo4j_driver, neo4j_settings, store,  # noqa: ANN001
                                                                writer) -> None:  # noqa: ANN001
    """Polling once an hour, the detector still judges as soon as the OTLP request that
    completes the buckets is committed: ingest wakes it (issue 15's stream target)."""
    # (a long lease: the first judged bucket pays the cold ranker on a loaded machine)
    app = App(replace(_settings(neo4j_settings), detector_interval_seconds=3600.0, detector_lease_seconds=60.0),
              neo4j_driver).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as ch:
            stub = pb_grpc.RootCauseStub(ch)
            _wait(lambda: app.health.serving, what="the API serving")
            writer.apply_deltas(minutes(0, 46, fault=(40, 46)))  # not through this app's ingest
            time.sleep(0.5)
            assert app.detector.judged == 0  # nothing woke it, its poll is an hour away
            req = urllib.request.Request(f"http://127.0.0.1:{app.ports['otlp_http']}/v1/traces",
                                         data=_otlp_span_at(T0 + 46 * 60 + 5), method="POST",
                                         headers={"Content-Type": "application/x-protobuf"})
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 200
            opened = _events(stub, 0, 1)[0]
            assert opened.kind == pb.INCIDENT_EVENT_KIND_OPENED
            assert opened.ranking.causes[0].entity == DB
            assert app.detector.judged > 0
    finally:
        app.stop(grace_s=1.0)


def test_the_lease_is_taken_over_when_its_holder_dies(neo4j_driver, neo4j_settings, store) -> None:  # noqa: ANN001
    a = App(_settings(neo4j_settings), neo4j_driver).start()
    b = App(_settings(neo4j_settings), neo4j_driver).start()
    try:
        holder = _wait(lambda: a.detector.lease.holder_now(), what="a lease holder")
        assert holder in (a.detector.holder, b.detector.holder)
        first, second = (a, b) if holder == a.detector.holder else (b, a)
        time.sleep(1.0)
        assert first.detector.lease.holder_now() == first.detector.holder  # renewed, not stolen
        first.detector.lease.release = lambda: None  # dies: its lease is not given back
        first.stop(grace_s=0.5)
        t0 = time.monotonic()
        _wait(lambda: second.detector.lease.holder_now() == second.detector.holder, what="takeover")
        assert time.monotonic() - t0 <= 2.0 + 1.5  # lease_s plus a poll or two
    finally:
        for app in (a, b):
            app.stop(grace_s=0.5)


def _payload(alerts: list[dict]) -> bytes:
    # The shape of Alertmanager's webhook_config notification (payload version 4).
    return json.dumps({
        "version": "4", "groupKey": "{}:{alertname=\"HighErrorRate\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "rootgraph", "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate"}, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093", "alerts": alerts,
    }).encode()


def _alert(i: int, labels: dict, status: str = "firing", starts: int = T0 + 41 * 60, ends: str | None = None) -> dict:
    return {"status": status, "labels": {"alertname": f"HighErrorRate{i}", "severity": "page", **labels},
            "annotations": {"summary": "errors"},
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(starts)),
            "endsAt": ends or "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example:9090/graph", "fingerprint": f"{i:016x}"}


def _post(app, body: bytes, token: str | None = TOKEN) -> tuple[int, dict]:  # noqa: ANN001
    req = urllib.request.Request(f"http://127.0.0.1:{app.ports['otlp_http']}/v1/alerts", data=body,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_alertmanager_webhook_maps_labels_is_idempotent_and_needs_the_token(detecting, writer) -> None:  # noqa: ANN001
    writer.apply_deltas(minutes(0, 2))
    body = _payload([_alert(1, {"service": "orders", "namespace": "shop"}),
                     _alert(2, {"pod": "catalogue-0"}),
                     _alert(3, {"instance": "n9:9100", "job": "nosuch"}),
                     _alert(4, {"team": "x"})])
    assert _post(detecting, body, token=None)[0] == 401
    with detecting.events._repo._driver.session() as s:  # noqa: SLF001 - nothing written
        assert s.run("MATCH (a:Alert) RETURN count(a)").single()[0] == 0
    code, out = _post(detecting, body)
    assert code == 200 and (out["accepted"], out["firing"], out["duplicates"]) == (2, 2, 0)
    assert {(u["fingerprint"][-1], u["label"]) for u in out["unresolved"]} == {("3", "job"), ("3", "instance"), ("4", "")}
    assert out["ignored_labels"] == ["severity", "team"]
    assert _post(detecting, body)[1]["duplicates"] == 2  # sent again: the same two alerts
    active = detecting.alerts.active(T0 + 41 * 60, T0 + 42 * 60)
    assert [(e, n) for e, n, _ in active] == [("pod:catalogue-0", "HighErrorRate2"), ("shop/orders", "HighErrorRate1")]
    resolved = _payload([_alert(1, {"service": "orders", "namespace": "shop"}, "resolved",
                                ends=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0 + 43 * 60)))])
    assert _post(detecting, resolved)[1]["resolved"] == 1
    assert [e for e, _, _ in detecting.alerts.active(T0 + 44 * 60, T0 + 45 * 60)] == ["pod:catalogue-0"]
    bad = _post(detecting, json.dumps({"version": "3", "alerts": []}).encode())
    assert bad[0] == 400 and bad[1]["message"].startswith("version")


@pytest.mark.parametrize("confirm", [2, 4])
def test_an_alert_storm_from_one_fault_opens_one_incident(confirm, neo4j_driver, neo4j_settings, store, writer) -> None:  # noqa: ANN001,E501
    """With confirm 4 the services' own baseline symptoms are still unconfirmed when the
    alerts fire: an alert confirms its entity's symptom at once, so the alerted pods and
    node join the services' incident instead of opening one each."""
    detecting = App(_settings(neo4j_settings, api_token=Secret(TOKEN), detector_confirm_buckets=confirm),
                    neo4j_driver).start()
    try:
        _storm(detecting, writer)
    finally:
        detecting.stop(grace_s=1.0)


def _storm(detecting, writer) -> None:  # noqa: ANN001
    writer.apply_deltas(minutes(0, 2))
    names = [{"service": "orders"}, {"service": "frontend"}, {"pod": "orders-0"}, {"pod": "frontend-0"},
             {"node": "n1"}]
    storm = [_alert(i, names[i % len(names)]) for i in range(200)]
    code, out = _post(detecting, _payload(storm))
    assert code == 200 and out["accepted"] == 200
    writer.apply_deltas(minutes(2, 60, fault=(40, 46)))
    last = T0 + 58 * 60  # the newest complete bucket
    _wait(lambda: detecting.detector._position == last, what="every bucket judged")  # noqa: SLF001
    opened = [i for i in detecting.events.list_incidents() if i[1] in ("open", "resolved")]
    assert len(opened) == 1, [(i[0], i[1], i[6]) for i in opened]
    assert opened[0][1] == "open"  # the alerts still fire


def test_the_client_and_cli_list_and_watch_incidents(detecting, writer) -> None:  # noqa: ANN001
    import subprocess
    import sys

    from rootgraph.client import RootGraphClient

    writer.apply_deltas(minutes(0, 60, fault=(40, 46)))
    addr = f"127.0.0.1:{detecting.ports['api']}"
    with grpc.insecure_channel(addr) as ch:
        _wait(lambda: _all(pb_grpc.RootCauseStub(ch)), what="the incident's whole life")
    with RootGraphClient(addr) as rg:
        (row,) = rg.list_incidents(state="resolved")
        assert row.top_cause == DB and row.resolved_s is not None
        events = []
        for e in rg.watch_incidents():
            events.append(e)
            if e.kind == "resolved":
                break
    assert events[0].kind == "opened" and events[0].ranking.causes[0].entity == DB
    out = subprocess.run([sys.executable, "-m", "rootgraph.cli", "incidents", "--server", addr],
                         capture_output=True, text=True, timeout=60, env={"COLUMNS": "80", "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert DB in out.stdout and "resolved" in out.stdout and max(map(len, out.stdout.splitlines())) <= 80
