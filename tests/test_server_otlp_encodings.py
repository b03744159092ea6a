"""OTLP/HTTP content codings through the real receiver into the real Neo4j (issue 13, #2).

A Collector's ``otlphttp`` exporter may compress with gzip, zstd or deflate; every one
must land, a bomb in any of them must cost at most the limit (413), and a coding we
cannot decode must be refused by name (415, permanent) rather than parsed as garbage.
"""

from __future__ import annotations

import gzip
import urllib.error
import urllib.request
import zlib

import pytest
import zstandard
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from test_ingest_helpers import CLIENT, SERVER, request, resource_spans, span
from test_server_otlp import _expect_graph, _traffic

from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.reader import WindowReader

pytestmark = pytest.mark.neo4j

PROTOBUF = "application/x-protobuf"


def _post(app, body: bytes, encoding: str | None) -> tuple[int, bytes]:  # noqa: ANN001
    req = urllib.request.Request(f"http://127.0.0.1:{app.ports['otlp_http']}/v1/traces", data=body,
                                 method="POST", headers={"Content-Type": PROTOBUF})
    if encoding is not None:
        req.add_header("Content-Encoding", encoding)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _calls(n: int) -> bytes:
    """``n`` front -> back calls (client span in front, server span in back), 2 failing."""
    front, back = [], []
    for i in range(n):
        front.append(span(i + 1, 1, None, SERVER, 0, 10))
        front.append(span(i + 1, 2, 1, CLIENT, 1, 8, error=i < 2, attrs={"server.address": "back"}))
        back.append(span(i + 1, 3, 2, SERVER, 2, 6, error=i < 2))
    return request(resource_spans("front", *front), resource_spans("back", *back)).SerializeToString()


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def _zstd_stream(data: bytes) -> bytes:
    """As a streaming writer (the Collector's) emits it: no content size in the header."""
    c = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    return c.compress(data) + c.flush()


CODINGS = {
    "zstd": ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
    "zstd streamed": ("zstd", _zstd_stream),
    "zstd two frames": ("zstd", lambda b: zstandard.ZstdCompressor().compress(b[:7]) +
                        zstandard.ZstdCompressor().compress(b[7:])),
    "deflate (zlib)": ("deflate", zlib.compress),
    "deflate (raw)": ("deflate", _raw_deflate),
    "zlib (the Collector's name)": ("zlib", zlib.compress),
    "gzip then identity": ("gzip, identity", gzip.compress),
    "identity": ("identity", lambda b: b),
}


@pytest.mark.parametrize(("header", "encode"), CODINGS.values(), ids=CODINGS.keys())
def test_compressed_body_is_ingested(app, reader: WindowReader, header: str, encode) -> None:  # noqa: ANN001
    status, body = _post(app, encode(_calls(5)), header)
    assert status == 200, status_pb2.Status.FromString(body).message
    app.ingestor.flush_all()
    _, calls, _ = reader.service_graph()
    assert {(a, b): (c, e) for a, b, c, e, _ in calls}[("front", "back")] == (5, 2)


@pytest.mark.parametrize("coding", ["br", "snappy", "gzip, br"])
def test_unsupported_coding_is_415_naming_it_and_stores_nothing(app, store: GraphAdmin, coding: str) -> None:  # noqa: ANN001,E501
    status, body = _post(app, _calls(1), coding)
    assert status == 415
    message = status_pb2.Status.FromString(body).message
    assert message.startswith("Content-Encoding: ") and repr(coding.split(", ")[-1]) in message, message
    assert all(name in message for name in ("gzip", "zstd", "deflate")), message
    app.ingestor.flush_all()
    assert store.counts()["entities"] == 0


@pytest.mark.parametrize("compress", [zstandard.ZstdCompressor().compress, _zstd_stream],
                         ids=["content size declared", "streamed"])
def test_zstd_bomb_is_413(app, store: GraphAdmin, compress) -> None:  # noqa: ANN001
    limit = app.settings.max_request_bytes
    bomb = compress(b"\x00" * (limit + 1))
    assert len(bomb) < limit // 1000  # a real bomb: tiny on the wire
    status, body = _post(app, bomb, "zstd")
    assert status == 413, status_pb2.Status.FromString(body).message
    assert str(limit) in status_pb2.Status.FromString(body).message


@pytest.mark.parametrize("encode", [zlib.compress, _raw_deflate], ids=["zlib", "raw"])
def test_deflate_bomb_is_413(app, encode) -> None:  # noqa: ANN001
    limit = app.settings.max_request_bytes
    status, _ = _post(app, encode(b"\x00" * (limit + 1)), "deflate")
    assert status == 413


@pytest.mark.parametrize(("coding", "body"), [
    ("zstd", zstandard.ZstdCompressor().compress(b"x" * 1000)[:-4]),  # truncated frame
    ("zstd", b"\x28\xb5\x2f\xfd" + b"\xff" * 12),  # magic, then junk
    ("zstd", zstandard.ZstdCompressor().compress(b"x" * 1000) + b"trailing"),
    ("deflate", zlib.compress(b"x" * 1000)[:-6]),
    ("deflate", b"\x78\x9cnot deflate at all"),
], ids=["zstd truncated", "zstd junk", "zstd trailing bytes", "deflate truncated", "deflate junk"])
def test_corrupt_compressed_body_is_400_naming_the_coding(app, coding: str, body: bytes) -> None:  # noqa: ANN001
    status, resp = _post(app, body, coding)
    assert status == 400
    message = status_pb2.Status.FromString(resp).message
    assert message.startswith(f"Content-Encoding: invalid {coding} body"), message


@pytest.mark.parametrize("compression", [Compression.Deflate, Compression.Gzip], ids=["deflate", "gzip"])
def test_sdk_http_exporter_with_compression_fills_the_graph(app, reader: WindowReader, compression) -> None:  # noqa: ANN001,E501
    port = app.ports["otlp_http"]
    _traffic(lambda: HttpExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", compression=compression))
    _expect_graph(reader, app)
