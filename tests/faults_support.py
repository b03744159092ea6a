"""Helpers of the fault tests: waiting on conditions with deadlines, never fixed sleeps."""

from __future__ import annotations

import time
from typing import Callable

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from rootgraph.simulate.replay import ReplayTemplate, build_template

_TEMPLATE: ReplayTemplate | None = None


def small_template() -> ReplayTemplate:
    """~3,000 spans of Sock Shop traffic, built once per test session."""
    global _TEMPLATE
    if _TEMPLATE is None:
        _TEMPLATE = build_template(3_000, topology="sockshop", rate_rps=20.0)
    return _TEMPLATE


def wait_until(cond: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.05) -> None:
    """Poll ``cond`` until true; fail the test naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(poll_s)


def export_raw(address: str, payload: bytes, timeout_s: float) -> tuple[grpc.StatusCode, dict[str, bytes]]:
    """One ``TraceService/Export`` without the SDK's retries: (status code, trailers)."""
    with grpc.insecure_channel(address) as ch:
        stub = trace_service_pb2_grpc.TraceServiceStub(ch)
        req = trace_service_pb2.ExportTraceServiceRequest.FromString(payload)
        try:
            _, call = stub.Export.with_call(req, timeout=timeout_s)
            return call.code(), dict(call.trailing_metadata() or ())
        except grpc.RpcError as err:
            return err.code(), dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
