"""Hosting a gRPC service whose requests are decoded by us, not by grpcio (issue 13).

The generated ``add_XServicer_to_server`` registers ``Request.FromString`` as grpcio's
deserializer; when that raises, grpcio answers INTERNAL "Exception deserializing
request!" before any of our code runs, so a client's malformed protobuf looked like our
bug. :func:`add_service` registers raw-bytes handlers instead (no deserializer: grpcio
hands over the bytes) and decodes inside the handler, so a decode failure goes through
:func:`~rootgraph.server.errors.classify` like every other bad input: INVALID_ARGUMENT,
"request: not a valid <type> protobuf (<what is wrong>)".

Built from the service's protobuf descriptor, so every hosted service is registered the
same way in one line (OTLP ``LogsService``/``MetricsService`` included)::

    add_service(server, logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"], servicer)

The auth interceptor (server/auth.py) still sees every call first: interceptors run on
the method name before the handler is chosen, whatever the deserializer.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from rootgraph.server.errors import InvalidRequest, classify

__all__ = ["add_service", "wire_problem"]

#: Fields :func:`wire_problem` walks before giving up locating the fault. It runs only on
#: requests that failed to decode; this bounds it to a few ms whatever the request size.
MAX_SCANNED_FIELDS = 10_000
_FIXED = {1: 8, 5: 4}  # wire type -> payload bytes


def add_service(server: grpc.Server, service: ServiceDescriptor, servicer: Any, *, raw: bool = False) -> str:
    """Serve ``servicer``'s methods for ``service`` on ``server``; return the service's
    full name (for the reflection list).

    Unary and server-streaming methods (``WatchIncidents``); a server-streaming
    implementation returns an iterator of responses, and a request that does not decode
    ends the stream with INVALID_ARGUMENT before anything is sent, exactly as a unary
    call is refused. Client streaming is not hosted (nothing needs it). ``raw`` (unary
    only): the implementation gets the request bytes and decodes them itself -- the
    sharded ingest front cuts the bytes by trace id for its workers (server/workers.py)
    and maps its own decode errors.
    """
    handlers = {m.name: _method_handler(m, getattr(servicer, m.name), raw) for m in service.methods}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
    return service.full_name


def _method_handler(method: MethodDescriptor, implementation: Callable[[Any, grpc.ServicerContext], Any],
                    raw: bool = False) -> grpc.RpcMethodHandler:
    if method.client_streaming:
        raise ValueError(f"{method.full_name}: client-streaming methods are not supported by add_service")
    if raw and method.server_streaming:
        raise ValueError(f"{method.full_name}: raw handlers are unary only")
    request_type = message_factory.GetMessageClass(method.input_type)
    response_type = message_factory.GetMessageClass(method.output_type)
    type_name = method.input_type.full_name

    def decode(raw: bytes, context: grpc.ServicerContext) -> Any:
        try:
            return request_type.FromString(raw)
        except Exception:  # noqa: BLE001 - any decoder failure means "not a valid request"
            c = classify(InvalidRequest("request", f"not a valid {type_name} protobuf ({wire_problem(raw)})"))
            context.abort(c.code, c.message)

    if method.server_streaming:
        def stream(raw: bytes, context: grpc.ServicerContext) -> Iterator[Any]:
            request = decode(raw, context)
            yield from implementation(request, context)

        return grpc.unary_stream_rpc_method_handler(stream, request_deserializer=None,
                                                    response_serializer=response_type.SerializeToString)

    def handler(body: bytes, context: grpc.ServicerContext) -> Any:
        return implementation(body if raw else decode(body, context), context)

    # request_deserializer=None: grpcio passes the request bytes through untouched.
    return grpc.unary_unary_rpc_method_handler(handler, request_deserializer=None,
                                               response_serializer=response_type.SerializeToString)


def wire_problem(raw: bytes) -> str:
    """Say where the top level of ``raw`` breaks the protobuf wire format.

    upb's own error says only "Wire format was corrupt"; a client fixing its encoder
    needs the field and the byte offset. Walks tags and skips payloads (O(fields)); when
    the top level is well formed, the fault is inside a nested message or a string.
    """
    i, n, groups = 0, len(raw), []
    for _ in range(MAX_SCANNED_FIELDS):
        if i >= n:
            break
        start = i
        key, i = _varint(raw, i)
        if key is None:
            return f"truncated or overlong tag at byte {start}"
        field, wire = key >> 3, key & 7
        if field == 0:
            return f"field number 0 at byte {start}"
        if wire == 0:
            value, i = _varint(raw, i)
            if value is None:
                return f"truncated varint field {field} at byte {start}"
        elif wire in _FIXED:
            if i + _FIXED[wire] > n:
                return f"truncated fixed{_FIXED[wire] * 8} field {field} at byte {start}"
            i += _FIXED[wire]
        elif wire == 2:
            length, i = _varint(raw, i)
            if length is None:
                return f"truncated length of length-delimited field {field} at byte {start}"
            if i + length > n:
                return f"truncated length-delimited field {field} at byte {start}: {length} bytes declared, {n - i} left"
            i += length
        elif wire == 3:
            groups.append(field)
        elif wire == 4:
            if not groups or groups.pop() != field:
                return f"unexpected end-group field {field} at byte {start}"
        else:
            return f"invalid wire type {wire} for field {field} at byte {start}"
    else:
        if i < n:
            return f"fault not located in the first {MAX_SCANNED_FIELDS} fields"
    if groups:
        return f"unterminated group field {groups[-1]}"
    return "top-level fields are well formed: a nested message or a string (UTF-8) is not"


def _varint(raw: bytes, i: int) -> tuple[int | None, int]:
    """Decode a base-128 varint at ``i``: (value, next offset), or (None, i) if truncated
    or longer than the 10 bytes a 64-bit value needs."""
    value = 0
    for shift in range(0, 70, 7):
        if i >= len(raw):
            return None, i
        b = raw[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
    return None, i
