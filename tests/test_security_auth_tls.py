"""Security: bearer-token auth, TLS and mTLS, secrets and loopback binding (issue 8, part 4).

Certificates are generated per test run with the ``openssl`` CLI in ``tmp_path``; the
server is a real ``App`` over the real test Neo4j.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import traceback
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from test_ingest_helpers import SERVER, payload, request, resource_spans, span

from rootgraph.config import Secret, Settings, load_settings
from rootgraph.graph.local import LocalNeo4j
from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.writer import GraphWriter
from rootgraph.v1 import rootgraph_pb2 as pb
from rootgraph.v1 import rootgraph_pb2_grpc as pb_grpc

pytestmark = pytest.mark.neo4j

TOKEN = "s3cret"
BAD_HEADERS = (None, ("authorization", "Bearer wrong"), ("authorization", TOKEN),
               ("authorization", f"Basic {TOKEN}"), ("authorization", f"Bearer {TOKEN}x"))


def _start(neo4j_driver, neo4j_settings: Settings, **kwargs):  # noqa: ANN001,ANN003,ANN202
    from rootgraph.server.app import App

    tls = kwargs.pop("tls", None)
    settings = replace(neo4j_settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                       otlp_http_address="127.0.0.1:0", **kwargs)
    return App(settings, neo4j_driver, tls=tls).start()


@pytest.fixture()
def auth_app(neo4j_driver, neo4j_settings: Settings, store: GraphAdmin):  # noqa: ANN001,ANN201
    server = _start(neo4j_driver, neo4j_settings, api_token=Secret(TOKEN))
    yield server
    server.stop(grace_s=1.0)


def _all_nodes(store: GraphAdmin) -> int:
    with store._driver.session() as s:  # noqa: SLF001
        return s.run("MATCH (n) RETURN count(n)").single()[0]


def _mutations(incident_id: str) -> list[tuple[str, object]]:
    return [  # Export first: a deployment is only recorded for a service seen in traces
        ("Export", request(resource_spans("a", span(1, 1, None, SERVER, 0, 10)))),
        ("RecordDeployment", pb.RecordDeploymentRequest(id="d1", service="a", version="2")),
        ("SubmitFeedback", pb.SubmitFeedbackRequest(feedback_id="f1", incident_id=incident_id,
                                                    none_of_these=True, action=1, outcome=1)),
        ("RecordRemediationStep", pb.RecordRemediationStepRequest(step=pb.RemediationStep(
            step_id="s1", incident_id=incident_id, kind=pb.REMEDIATION_STEP_KIND_PROPOSED,
            action=pb.REMEDIATION_ACTION_ROLLBACK))),
    ]


def test_mutating_calls_need_the_token_and_change_nothing_without_it(auth_app, store: GraphAdmin) -> None:  # noqa: ANN001
    with grpc.insecure_channel(f"127.0.0.1:{auth_app.ports['api']}") as channel:
        api = pb_grpc.RootCauseStub(channel)
        otlp = trace_service_pb2_grpc.TraceServiceStub(channel)
        incident = api.RankCauses(pb.RankCausesRequest(), timeout=60).incident_id  # reads stay open
        before = _all_nodes(store)
        for method, req in _mutations(incident):
            call = getattr(otlp if method == "Export" else api, method)
            for header in BAD_HEADERS:
                with pytest.raises(grpc.RpcError) as info:
                    call(req, timeout=30, metadata=[header] if header else None)
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, (method, header)
                assert TOKEN not in (info.value.details() or "")
        assert _all_nodes(store) == before
        good = [("authorization", f"Bearer {TOKEN}")]
        for method, req in _mutations(incident):
            getattr(otlp if method == "Export" else api, method)(req, timeout=30, metadata=good)
        counts = store.counts()
        assert counts["deployments"] == 1 and _all_nodes(store) > before


def test_read_calls_work_without_a_token(auth_app, writer: GraphWriter) -> None:  # noqa: ANN001
    from rootgraph.ingest.pipeline import Ingestor

    Ingestor(writer).ingest_request(payload(resource_spans("a", span(1, 1))))
    with grpc.insecure_channel(f"127.0.0.1:{auth_app.ports['api']}") as channel:
        api = pb_grpc.RootCauseStub(channel)
        assert {e.id for e in api.GetServiceGraph(pb.GetServiceGraphRequest(), timeout=30).entities} == {"user", "a"}
        incident = api.RankCauses(pb.RankCausesRequest(), timeout=60).incident_id
        assert api.GetIncident(pb.GetIncidentRequest(incident_id=incident), timeout=30).ranking.incident_id == incident
        assert api.BlastRadius(pb.BlastRadiusRequest(entity="a"), timeout=30).entity == "a"


def test_otlp_http_export_needs_the_token_too(auth_app, store: GraphAdmin) -> None:  # noqa: ANN001
    url = f"http://127.0.0.1:{auth_app.ports['otlp_http']}/v1/traces"
    body = payload(resource_spans("a", span(1, 1)))
    before = _all_nodes(store)  # the server may have written its own (:ModelVersion) at start
    for header in BAD_HEADERS:
        headers = {"Content-Type": "application/x-protobuf"}
        if header:
            headers["Authorization"] = header[1]
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=30)  # noqa: S310 - loopback test server
        assert info.value.code == 401, header
    assert _all_nodes(store) == before
    ok = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/x-protobuf", "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(ok, timeout=30) as resp:  # noqa: S310
        assert resp.status == 200
    assert store.counts()["entities"] == 2


# -- TLS / mTLS ------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    d = tmp_path_factory.mktemp("certs")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=rootgraph test CA", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=rootgraph test {name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return d


@pytest.fixture()
def tls_app(neo4j_driver, neo4j_settings: Settings, store: GraphAdmin, certs: Path, request):  # noqa: ANN001,ANN201
    from rootgraph.server.app import TlsFiles

    client_ca = certs / "ca.pem" if request.param == "mtls" else None
    server = _start(neo4j_driver, neo4j_settings,
                    tls=TlsFiles(certs / "server.pem", certs / "server.key", client_ca))
    yield server
    server.stop(grace_s=1.0)


def _graph_call(channel: grpc.Channel) -> pb.GetServiceGraphResponse:
    return pb_grpc.RootCauseStub(channel).GetServiceGraph(pb.GetServiceGraphRequest(), timeout=10)


@pytest.mark.parametrize("tls_app", ["tls"], indirect=True)
def test_tls_serves_trusting_clients_and_refuses_plaintext(tls_app, certs: Path) -> None:  # noqa: ANN001
    target = f"127.0.0.1:{tls_app.ports['api']}"
    creds = grpc.ssl_channel_credentials(root_certificates=(certs / "ca.pem").read_bytes())
    with grpc.secure_channel(target, creds) as channel:
        assert _graph_call(channel).entities == []
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as info:
        _graph_call(channel)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    untrusted = grpc.ssl_channel_credentials()  # system roots do not include our test CA
    with grpc.secure_channel(target, untrusted) as channel, pytest.raises(grpc.RpcError):
        _graph_call(channel)


@pytest.mark.parametrize("tls_app", ["mtls"], indirect=True)
def test_mtls_requires_a_client_certificate(tls_app, certs: Path) -> None:  # noqa: ANN001
    target = f"127.0.0.1:{tls_app.ports['api']}"
    ca = (certs / "ca.pem").read_bytes()
    with grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=ca)) as channel:
        with pytest.raises(grpc.RpcError) as info:
            _graph_call(channel)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    with_cert = grpc.ssl_channel_credentials(root_certificates=ca,
                                             private_key=(certs / "client.key").read_bytes(),
                                             certificate_chain=(certs / "client.pem").read_bytes())
    with grpc.secure_channel(target, with_cert) as channel:
        assert _graph_call(channel).entities == []


# -- secrets -----------------------------------------------------------------------------


@pytest.fixture()
def neo4j_password(neo4j_settings: Settings) -> str:
    if not neo4j_settings.uses_local_neo4j:
        assert neo4j_settings.neo4j_password is not None
        return neo4j_settings.neo4j_password.value
    return LocalNeo4j(neo4j_settings).password().value


def test_password_never_appears_in_logs_or_error_messages(
    neo4j_driver, neo4j_settings: Settings, store: GraphAdmin, neo4j_password: str,  # noqa: ANN001
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    assert len(neo4j_password) >= 8
    caplog.set_level(logging.DEBUG)
    details: list[str] = []
    server = _start(neo4j_driver, neo4j_settings, api_token=Secret(TOKEN))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.ports['api']}") as channel:
            api = pb_grpc.RootCauseStub(channel)
            for method, req in (
                ("RankCauses", pb.RankCausesRequest(top_k=-1)),
                ("RankCauses", pb.RankCausesRequest(symptoms=["nope"])),
                ("GetIncident", pb.GetIncidentRequest(incident_id="nope")),
                ("RecordDeployment", pb.RecordDeploymentRequest(id="d")),
                ("BlastRadius", pb.BlastRadiusRequest(entity="nope")),
            ):
                with pytest.raises(grpc.RpcError) as info:
                    getattr(api, method)(req, timeout=30)
                details.append(f"{info.value.code()} {info.value.details()} {info.value.debug_error_string()}")
            api.RankCauses(pb.RankCausesRequest(), timeout=60)
        body = b'{"resourceSpans": 5}'
        req = urllib.request.Request(f"http://127.0.0.1:{server.ports['otlp_http']}/v1/traces", data=body,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {TOKEN}"}, method="POST")
        with pytest.raises(urllib.error.HTTPError) as http_info:
            urllib.request.urlopen(req, timeout=30)  # noqa: S310
        details.append(http_info.value.read().decode("utf-8", "replace"))
        with urllib.request.urlopen(f"http://127.0.0.1:{server.ports['otlp_http']}/metrics",  # noqa: S310
                                    timeout=30) as resp:
            details.append(resp.read().decode())
    finally:
        server.stop(grace_s=1.0)
    out, err = capfd.readouterr()
    haystack = "\n".join([caplog.text, out, err, *details, repr(server.settings), str(server.settings)])
    assert neo4j_password not in haystack
    assert TOKEN not in haystack


def test_settings_repr_hides_password_and_token(neo4j_password: str) -> None:
    settings = load_settings(env={"NEO4J_URI": "bolt://127.0.0.1:1", "NEO4J_PASSWORD": neo4j_password,
                                  "ROOTGRAPH_TOKEN": TOKEN})
    assert settings.neo4j_password is not None and settings.neo4j_password.value == neo4j_password
    for text in (repr(settings), str(settings), repr(settings.neo4j_password), f"{settings.api_token}"):
        assert neo4j_password not in text and TOKEN not in text


def test_wrong_password_error_does_not_echo_it(neo4j_settings: Settings) -> None:
    from rootgraph.graph.connect import open_driver

    wrong = "Wr0ng-Pa55word-do-not-echo"
    uri = f"bolt://127.0.0.1:{neo4j_settings.local_bolt_port}" if neo4j_settings.uses_local_neo4j \
        else neo4j_settings.neo4j_uri
    # one attempt only: Neo4j locks a user out after several failed logins
    settings = load_settings(env={"NEO4J_URI": uri, "NEO4J_PASSWORD": wrong})
    with pytest.raises(Exception) as info:  # noqa: PT011 - whatever the driver raises
        open_driver(settings, log=lambda msg: None)
    text = f"{info.value!r} {info.value} " + "".join(traceback.format_exception(info.value))
    assert "auth" in text.lower() or "unauthorized" in text.lower()
    assert wrong not in text


# -- binding -----------------------------------------------------------------------------


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp{,6}) with a LISTEN socket on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, hex_port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hex_port, 16) == port:
                found.add(addr)
    return found


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def test_local_neo4j_binds_loopback_only(neo4j_settings: Settings, neo4j_driver) -> None:  # noqa: ANN001
    if not neo4j_settings.uses_local_neo4j:
        pytest.skip("an external Neo4j (NEO4J_URI) is not ours to check")
    conf = (LocalNeo4j(neo4j_settings).instance_dir / "conf" / "neo4j.conf").read_text()
    settings_ = dict(line.split("=", 1) for line in conf.splitlines() if "=" in line and not line.startswith("#"))
    assert settings_["server.default_listen_address"].strip() == "127.0.0.1"
    for key in ("server.bolt.listen_address", "server.http.listen_address"):
        assert settings_[key].strip().startswith("127.0.0.1:"), key
    assert not any(k.startswith("server.https") and "listen_address" in k and "127.0.0.1" not in v
                   for k, v in settings_.items())
    for port in (neo4j_settings.local_bolt_port, neo4j_settings.local_http_port):
        addrs = _listening(port)
        assert addrs, f"nothing listens on {port}"
        assert addrs <= LOOPBACK, f"port {port} listens on {addrs}"


def test_server_defaults_are_loopback_and_the_app_binds_there(app) -> None:  # noqa: ANN001
    defaults = Settings()
    for addr in (defaults.api_address, defaults.otlp_grpc_address, defaults.otlp_http_address):
        assert addr.rsplit(":", 1)[0] == "127.0.0.1"
    assert defaults.api_token is None and defaults.neo4j_uri == ""
    for port in app.ports.values():
        assert _listening(port) and _listening(port) <= LOOPBACK, port
