"""Undecodable protobuf through the real gRPC transport (issue 13, finding 1).

Raw bytes go to every method of every service the server lists in reflection (except
the libraries' own health and reflection services), through a real channel with no
serializer. Bytes that are not a valid request get INVALID_ARGUMENT naming the request
type, never INTERNAL ("Exception deserializing request!") or UNKNOWN; bytes that happen
to decode get the method's normal answer (its own validation), still never those two.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.neo4j

#: Services the libraries register (grpc_health, grpc_reflection): not ours to decode.
LIBRARY_SERVICES = {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}

JUNK = {
    "0xff bytes": b"\xff" * 16,
    "truncated length-delimited field": b"\x0a\x10abc",  # field 1, 16 bytes declared, 3 sent
    "short garbage field": b"\x0a",  # field 1, length missing
}

NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}

RPCS = settings(max_examples=120, deadline=timedelta(seconds=30), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture()
def channel(app) -> Iterator[grpc.Channel]:  # noqa: ANN001
    with grpc.insecure_channel(f"127.0.0.1:{app.ports['api']}") as ch:
        yield ch


def _methods(channel: grpc.Channel) -> list[tuple[str, type]]:
    """(path, request class) of every method of every hosted service, via reflection;
    server-streaming paths are remembered in ``_STREAMING`` (called as streams)."""
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    ours = [s for s in services if s not in LIBRARY_SERVICES]
    assert {"rootgraph.v1.RootCause", "opentelemetry.proto.collector.trace.v1.TraceService",
            "opentelemetry.proto.collector.logs.v1.LogsService",
            "opentelemetry.proto.collector.metrics.v1.MetricsService"} <= set(ours)
    out = []
    pool = descriptor_pool.Default()
    for name in ours:
        service = pool.FindServiceByName(name)
        for m in service.methods:
            assert not m.client_streaming, f"{m.full_name}: client streaming"
            if m.server_streaming:
                _STREAMING.add(f"/{name}/{m.name}")
            out.append((f"/{name}/{m.name}", message_factory.GetMessageClass(m.input_type)))
    return out


_STREAMING: set[str] = set()
#: A valid watch request streams until cancelled: read it this long, then a deadline
#: ends it (a normal answer for a stream, not a failure).
STREAM_READ_S = 1.0


def _call(channel: grpc.Channel, path: str, raw: bytes) -> tuple[grpc.StatusCode, str]:
    if path in _STREAMING:
        stream = channel.unary_stream(path, request_serializer=None, response_deserializer=None)
        try:
            for _ in stream(raw, timeout=STREAM_READ_S):
                pass
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return grpc.StatusCode.OK, ""
            return exc.code(), exc.details() or ""
        return grpc.StatusCode.OK, ""
    call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    try:
        call(raw, timeout=30)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def _decodes(cls: type, raw: bytes) -> bool:
    try:
        cls.FromString(raw)
    except DecodeError:
        return False
    return True


def _check(channel: grpc.Channel, path: str, cls: type, raw: bytes) -> None:
    code, details = _call(channel, path, raw)
    event(f"answered {code.name}")
    assert code not in NEVER, (path, raw, code, details)
    if not _decodes(cls, raw):
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (path, raw, code, details)
        assert details.startswith(f"request: not a valid {cls.DESCRIPTOR.full_name} protobuf ("), details


def test_reflection_still_lists_every_service(channel: grpc.Channel) -> None:
    services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert services == {"rootgraph.v1.RootCause", "opentelemetry.proto.collector.trace.v1.TraceService",
                        "opentelemetry.proto.collector.logs.v1.LogsService",
                        "opentelemetry.proto.collector.metrics.v1.MetricsService", *LIBRARY_SERVICES}


@pytest.mark.parametrize("junk", JUNK.values(), ids=JUNK.keys())
def test_junk_bytes_are_invalid_argument_on_every_method(channel: grpc.Channel, junk: bytes) -> None:
    methods = _methods(channel)
    assert len(methods) >= 9  # eight RootCause RPCs + TraceService/Export
    for path, cls in methods:
        assert not _decodes(cls, junk)
        code, details = _call(channel, path, junk)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (path, code, details)
        assert details.startswith(f"request: not a valid {cls.DESCRIPTOR.full_name} protobuf ("), details


def test_truncation_is_named_in_the_message(channel: grpc.Channel) -> None:
    _, details = _call(channel, "/rootgraph.v1.RootCause/RankCauses", JUNK["truncated length-delimited field"])
    assert "field 1" in details and "truncated" in details, details


def _tag(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


#: Wire-format-shaped bytes (plausible tags, lengths that may lie), so a fair share of
#: examples decode and reach the method's own validation.
_fields = st.lists(st.one_of(
    st.tuples(st.integers(1, 20), st.integers(0, 2**64 - 1)).map(lambda t: _tag(t[0], 0) + _varint(t[1])),
    st.tuples(st.integers(1, 20), st.binary(max_size=40), st.integers(-3, 3)).map(
        lambda t: _tag(t[0], 2) + _varint(max(0, len(t[1]) + t[2])) + t[1]),
    st.tuples(st.integers(0, 30), st.integers(0, 7), st.binary(max_size=9)).map(
        lambda t: _tag(t[0], t[1]) + t[2]),
), max_size=6).map(b"".join)


@RPCS
@given(data=st.data(), raw=st.one_of(st.binary(max_size=512), _fields))
def test_generated_bytes_are_invalid_argument_or_a_normal_answer(channel: grpc.Channel, data, raw: bytes) -> None:  # noqa: ANN001,E501
    path, cls = data.draw(st.sampled_from(_methods(channel)), label="method")
    _check(channel, path, cls, raw)
