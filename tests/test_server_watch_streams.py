"""WatchIncidents streams are bounded so they cannot take every server thread.

A sync gRPC server serves each open stream on one worker thread for as long as it is
open; without a bound, as many watchers as threads would leave none for RankCauses.
"""

from __future__ import annotations

from dataclasses import replace

import grpc

from rootgraph.server.app import App
from rootgraph.v1 import rootgraph_pb2 as pb
from rootgraph.v1 import rootgraph_pb2_grpc as pb_grpc


def _first_response_or_error(stream) -> grpc.StatusCode | None:  # noqa: ANN001
    """None when the stream answered with an event, else its status."""
    try:
        next(stream)
    except grpc.RpcError as e:
        return e.code()
    return None


def test_watchers_beyond_half_the_threads_are_refused_and_unary_calls_still_answer(
        neo4j_driver, neo4j_settings, store) -> None:  # noqa: ANN001
    settings = replace(neo4j_settings, api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0",
                       otlp_http_address="127.0.0.1:0")
    app = App(settings, neo4j_driver, max_workers=4).start()  # 2 watch streams at most
    try:
        with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as ch:
            stub = pb_grpc.RootCauseStub(ch)
            # one stored event, so a stream that is being served answers at once
            incident = stub.RankCauses(pb.RankCausesRequest(), timeout=60).incident_id
            stub.RecordRemediationStep(pb.RecordRemediationStepRequest(step=pb.RemediationStep(
                step_id="p", incident_id=incident, kind=pb.REMEDIATION_STEP_KIND_PROPOSED,
                action=pb.REMEDIATION_ACTION_ROLLBACK)), timeout=30)
            open_streams = [stub.WatchIncidents(pb.WatchIncidentsRequest(), timeout=60) for _ in range(2)]
            for s in open_streams:  # both served (each got the event), now waiting for more
                assert next(s).event.remediation.step_id == "p"
            third = stub.WatchIncidents(pb.WatchIncidentsRequest(), timeout=30)
            try:
                next(third)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE
                assert "2 streams are open" in e.details()
            else:
                raise AssertionError("a third watcher was served")
            # the threads the watchers do not hold still answer unary calls
            assert stub.GetServiceGraph(pb.GetServiceGraphRequest(), timeout=10) is not None
            open_streams[0].cancel()
            # a slot is free again once the cancelled stream's handler returned
            for _ in range(100):
                code = _first_response_or_error(stub.WatchIncidents(pb.WatchIncidentsRequest(), timeout=10))
                if code is None:  # served: it got the event
                    break
                assert code == grpc.StatusCode.UNAVAILABLE
            else:
                raise AssertionError("the cancelled stream's slot never came back")
            open_streams[1].cancel()
    finally:
        app.stop(grace_s=0.5)
