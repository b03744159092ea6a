"""``serve --role ingest`` and ``--role api`` as two servers over one real Neo4j.

Spans go in through the real SDK exporter to the ingest server only; the API server
answers from what the ingest server wrote (its read cache follows the bucket stamps).
Each refuses the other's RPCs with UNIMPLEMENTED.
"""

from __future__ import annotations

from dataclasses import replace

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from rootgraph.client import RootGraphClient
from rootgraph.server.app import App
from rootgraph.v1 import rootgraph_pb2, rootgraph_pb2_grpc
from test_server_otlp import T0, _traffic


@pytest.fixture()
def pair(neo4j_driver, neo4j_settings, store):  # noqa: ANN001,ANN201
    settings = replace(neo4j_settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                       otlp_http_address="127.0.0.1:0")
    ingest = App(settings, neo4j_driver, role="ingest").start()
    api = App(settings, neo4j_driver, role="api").start()
    yield ingest, api
    api.stop(grace_s=1.0)
    ingest.stop(grace_s=1.0)


def test_split_roles_share_only_neo4j(pair) -> None:  # noqa: ANN001
    ingest, api = pair
    assert set(ingest.ports) == {"otlp_grpc", "otlp_http"} and set(api.ports) == {"api"}
    start_s = T0 // 10**9
    with RootGraphClient(f"127.0.0.1:{api.ports['api']}") as client:
        before = client.rank_causes(start_s, start_s + 60)  # caches the (empty) minutes
        assert before.no_clear_cause and not before.symptoms
        _traffic(lambda: GrpcExporter(endpoint=f"127.0.0.1:{ingest.ports['otlp_grpc']}", insecure=True))
        ingest.ingestor.flush_all()
        graph = client.service_graph()
        assert {e for e, _ in graph.entities} >= {"frontend", "checkout", "db:postgresql/orders"}
        answer = client.rank_causes(start_s, start_s + 60, baseline=(start_s - 1800, start_s))
        assert "checkout" in answer.symptoms  # the new minute was read, not the cached empty one
        with pytest.raises(grpc.RpcError) as err:  # the ingest server has no RootCause service
            with grpc.insecure_channel(f"127.0.0.1:{ingest.ports['otlp_grpc']}") as ch:
                rootgraph_pb2_grpc.RootCauseStub(ch).GetServiceGraph(rootgraph_pb2.GetServiceGraphRequest(),
                                                                     timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with grpc.insecure_channel(f"127.0.0.1:{api.ports['api']}") as ch, pytest.raises(grpc.RpcError) as err:
        trace_service_pb2_grpc.TraceServiceStub(ch).Export(trace_service_pb2.ExportTraceServiceRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
