"""Sharding by trace id: which worker (or replica) owns a span, and a request's parts.

Why by trace id: the only state ingest keeps between requests is the pairing memory
(``store.py``), and every key in it is ``(trace_id, span_id)``: a CLIENT half, the
SERVER half waiting for it and the children that reduce their ancestors' self time all
share the trace id. Route every span of a trace to one owner and each owner's memory is
complete for its traces; statistics are additive (``GraphWriter`` MERGE + add), so the
owners' deltas sum in Neo4j to what one process would have written.

Why each part is a request of its own, with its own batch id: the writer skips a delta
whose ``batch_id`` it already holds. A request split over N owners becomes N deltas; if
one owner commits and another fails, the client retries the whole request, and the
committed part must be recognised. The id is the unsplit request's function
(``Ingestor.prepare``: sha256 over the part's sorted ``(trace_id, span_id)``), so it
depends only on which spans the part holds: the retry splits the same way and every part
gets the same id. With one owner the part is the request and its id is unchanged. (A
retry that straddles a change of the owner count splits differently: its already
committed parts would be counted again. Change ``ingest_workers`` or the replica set
only while no exporter is retrying, as with the Collector's ring, README "Scale-out".)

:func:`split_request` cuts the protobuf bytes, not a parsed message, so the parse and
decode of a span happen once, in its owner, whatever the owner count (the broadcast
design before it had every worker parse the whole request: N-1 extra parses per
request). It walks three levels of the wire format
-- ``resource_spans`` → ``scope_spans`` → ``spans`` -- and reads only each span's
``trace_id`` (field 1, which every SDK and the Collector write first); a span's bytes
are copied as they are, and only the enclosing lengths are written anew. So each span is
parsed and decoded once, by its owner.

:func:`owner` is ``crc32(trace_id) mod n``. :class:`TraceRing` is the Collector
``loadbalancing`` exporter's ring (``consistent_hashing.go``): crc32 of the trace id onto
36,000 positions, each endpoint at 100 positions ``crc32(endpoint + byte(i))``, the
first position at or after the trace's wins. The replica test routes with it the way a
Collector in front would.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Sequence

from rootgraph.ingest.spans import MalformedPayload

__all__ = ["RING_POSITIONS", "TraceRing", "owner", "split_request"]

#: consistent_hashing.go: maxPositions (360 degrees, two decimals) and defaultWeight
RING_POSITIONS = 36_000
RING_WEIGHT = 100

_LEN = 2  # length-delimited wire type
_crc32 = zlib.crc32


def owner(trace_id: bytes, n: int) -> int:
    """The shard (0..n-1) that owns every span of ``trace_id``."""
    return _crc32(trace_id) % n


def split_request(body: bytes, n: int) -> list[bytes]:
    """Cut an ``ExportTraceServiceRequest``'s protobuf bytes into one request per owner.

    Part ``k`` holds, under copies of their resource and scope, exactly the spans whose
    trace :func:`owner` gives to ``k`` (b"" when none). A span without a readable
    ``trace_id`` goes to owner ``crc32(b"") % n`` = 0, which rejects it with its reason,
    so every span is accepted or rejected once. Unknown top-level fields are dropped
    (decoding ignores them). Raises :class:`MalformedPayload` when the three walked
    levels break the wire format; faults inside a span are left to its owner's parser.
    """
    if n == 1:
        return [body]
    out: list[list[bytes]] = [[] for _ in range(n)]
    mv = memoryview(body)
    for start, end in _fields(body, 0, len(body), 1, "request"):
        _split_resource(body, mv, start, end, n, out)
    return [b"".join(p) for p in out]


def _split_resource(body: bytes, mv: memoryview, start: int, end: int, n: int, out: list[list[bytes]]) -> None:
    head: list[bytes] = []  # resource, schema_url, unknowns: copied to every part
    scopes: list[tuple[list[bytes], list[list[bytes]]]] = []
    i = start
    while i < end:
        tag_at = i
        key, i = _varint(body, i, end, "resource_spans")
        field, wire = key >> 3, key & 7
        if field == 2 and wire == _LEN:
            size, j = _varint(body, i, end, "resource_spans.scope_spans")
            if j + size > end:
                raise MalformedPayload("not an OTLP protobuf ExportTraceServiceRequest: truncated scope_spans")
            scopes.append(_split_scope(body, mv, j, j + size, n))
            i = j + size
        else:
            j = _skip(body, i, end, wire, "resource_spans")
            head.append(body[tag_at:j])
            i = j
    head_bytes = b"".join(head)
    for k in range(n):
        inner = [head_bytes]
        for scope_head, per_owner in scopes:
            spans = per_owner[k]
            if spans:
                ss = scope_head + b"".join(spans)
                inner += (b"\x12", _encode_varint(len(ss)), ss)
        if len(inner) > 1:
            rs = b"".join(inner)
            out[k] += (b"\x0a", _encode_varint(len(rs)), rs)


def _split_scope(body: bytes, mv: memoryview, start: int, end: int, n: int) -> tuple[bytes, list[list[bytes]]]:
    head: list[bytes] = []
    per_owner: list[list[bytes]] = [[] for _ in range(n)]
    crc = _crc32
    i = start
    while i < end:
        tag_at = i
        b = body[i]
        if b == 0x12:  # spans (field 2, length-delimited): the hot path
            i += 1
            size = body[i] if i < end else 0x80
            if size < 0x80:
                i += 1
            else:
                size, i = _varint(body, i, end, "scope_spans.spans")
            span_end = i + size
            if span_end > end:
                raise MalformedPayload("not an OTLP protobuf ExportTraceServiceRequest: truncated span")
            # trace_id is field 1 (tag 0x0a), 16 bytes (length 0x10): read it in place
            if size >= 18 and body[i] == 0x0A and body[i + 1] == 0x10:
                trace_id = mv[i + 2:i + 18]
            else:
                trace_id = _trace_id(body, i, span_end)
            per_owner[crc(trace_id) % n].append(body[tag_at:span_end])
            i = span_end
            continue
        key, i = _varint(body, i, end, "scope_spans")
        j = _skip(body, i, end, key & 7, "scope_spans")
        head.append(body[tag_at:j])
        i = j
    return b"".join(head), per_owner


def _trace_id(body: bytes, i: int, end: int) -> bytes:
    """A span's trace_id wherever it sits (or b"": its owner rejects the span)."""
    try:
        while i < end:
            key, i = _varint(body, i, end, "span")
            if key == 0x0A:
                size, j = _varint(body, i, end, "span.trace_id")
                return body[j:j + size]
            i = _skip(body, i, end, key & 7, "span")
    except MalformedPayload:
        pass  # the owner's parser names the fault
    return b""


def _fields(body: bytes, i: int, end: int, want: int, where: str) -> list[tuple[int, int]]:
    """(start, end) of each length-delimited field ``want`` at this level; others skipped."""
    found = []
    while i < end:
        key, i = _varint(body, i, end, where)
        if key == (want << 3) | _LEN:
            size, j = _varint(body, i, end, where)
            if j + size > end:
                raise MalformedPayload(f"not an OTLP protobuf ExportTraceServiceRequest: truncated field {want} "
                                       f"at byte {i}: {size} bytes declared, {end - j} left")
            found.append((j, j + size))
            i = j + size
        else:
            i = _skip(body, i, end, key & 7, where)
    return found


def _skip(body: bytes, i: int, end: int, wire: int, where: str) -> int:
    if wire == 0:
        return _varint(body, i, end, where)[1]
    if wire == 1 or wire == 5:
        j = i + (8 if wire == 1 else 4)
    elif wire == _LEN:
        size, i = _varint(body, i, end, where)
        j = i + size
    else:  # groups (3, 4) are not used by OTLP; 6, 7 do not exist
        raise MalformedPayload(f"not an OTLP protobuf ExportTraceServiceRequest: wire type {wire} in {where}")
    if j > end:
        raise MalformedPayload(f"not an OTLP protobuf ExportTraceServiceRequest: truncated field in {where}")
    return j


def _varint(body: bytes, i: int, end: int, where: str) -> tuple[int, int]:
    value = shift = 0
    while i < end and shift < 64:
        b = body[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
    raise MalformedPayload(f"not an OTLP protobuf ExportTraceServiceRequest: truncated varint in {where}")


def _encode_varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class TraceRing:
    """The Collector ``loadbalancing`` exporter's trace id → endpoint ring."""

    def __init__(self, endpoints: Sequence[str]) -> None:
        if not endpoints:
            raise ValueError("endpoints: at least one is needed")
        taken: dict[int, str] = {}
        for endpoint in endpoints:
            for i in range(RING_WEIGHT):
                pos = _crc32(endpoint.encode() + bytes([i])) % RING_POSITIONS
                taken.setdefault(pos, endpoint)  # an occupied position keeps its first owner
        self._positions = sorted(taken)
        self._endpoints = [taken[p] for p in self._positions]

    def endpoint_for(self, trace_id: bytes) -> str:
        pos = _crc32(trace_id) % RING_POSITIONS
        i = bisect.bisect_left(self._positions, pos)
        return self._endpoints[i if i < len(self._positions) else 0]
