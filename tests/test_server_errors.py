"""``classify``: every domain error's status, HTTP status, message and retryability.

Pure logic (no transport): the expected rows are the documented mapping, written out
by hand, so a change to the lookup table that alters an answer fails here.
"""

from __future__ import annotations

import grpc
import pytest

from rootgraph.graph.errors import Conflict, NotFound, StoreUnavailable
from rootgraph.inference.errors import InvalidArgument, UnknownEntity
from rootgraph.ingest.spans import MalformedPayload
from rootgraph.server.errors import (
    InvalidRequest, Overloaded, PayloadTooLarge, Unauthenticated, UnsupportedMediaType, classify,
)

S = grpc.StatusCode


@pytest.mark.parametrize(("exc", "code", "http", "message", "retryable"), [
    (InvalidRequest("top_k", "must be 1..50"), S.INVALID_ARGUMENT, 400, "top_k: must be 1..50", False),
    (InvalidArgument("fault_size", "too big"), S.INVALID_ARGUMENT, 400, "fault_size: too big", False),
    (MalformedPayload("not OTLP"), S.INVALID_ARGUMENT, 400, "not OTLP", False),
    (UnsupportedMediaType("Content-Encoding", "'br' is not supported"), S.UNIMPLEMENTED, 415,
     "Content-Encoding: 'br' is not supported", False),
    (UnknownEntity("x", "symptoms"), S.NOT_FOUND, 404, "symptoms: unknown entity 'x'", False),
    (NotFound("incident_id: no incident 'i'"), S.NOT_FOUND, 404, "incident_id: no incident 'i'", False),
    (Conflict("id reused"), S.ALREADY_EXISTS, 409, "id reused", False),
    (PayloadTooLarge("too big"), S.RESOURCE_EXHAUSTED, 413, "too big", False),
    (StoreUnavailable("Neo4j unavailable: X"), S.UNAVAILABLE, 503, "Neo4j unavailable: X", True),
    (StoreUnavailable(), S.UNAVAILABLE, 503, "storage unavailable", True),
    (StoreUnavailable("ingest is shutting down"), S.UNAVAILABLE, 503, "ingest is shutting down", True),
    (Overloaded(), S.UNAVAILABLE, 503, "overloaded", True),
    (Unauthenticated("no token"), S.UNAUTHENTICATED, 401, "no token", False),
    (TimeoutError("socket read timed out at 10.0.0.1"), S.DEADLINE_EXCEEDED, 504, "deadline exceeded", True),
    (RuntimeError("bolt://user:secret@db"), S.INTERNAL, 500, "internal error (see server log)", False),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None)
def test_each_error_type_maps_to_its_documented_status(exc: BaseException, code: grpc.StatusCode, http: int,
                                                       message: str, retryable: bool) -> None:
    c = classify(exc)
    assert (c.code, c.http, c.message, c.retryable) == (code, http, message, retryable)


def test_ingest_raises_the_graph_stages_one_unavailable_type() -> None:
    from rootgraph.ingest import sink

    assert not hasattr(sink, "SinkUnavailable")  # one name for the concept
    assert StoreUnavailable.retryable is True


def test_a_subclass_is_answered_like_its_base_and_keeps_its_own_retryability() -> None:
    class Flaky(Conflict):
        retryable = True

    c = classify(Flaky("later"))
    assert (c.code, c.http, c.retryable) == (S.ALREADY_EXISTS, 409, True)
