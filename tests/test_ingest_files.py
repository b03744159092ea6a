"""Reading OTLP trace files: JSON lines, JSON document, protobuf, framed protobuf, gzip."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from google.protobuf import json_format
from test_ingest_helpers import CLIENT, SERVER, payload, request, resource_spans, span

from rootgraph.ingest.files import FileError, FilePayload, ingest_paths, read_payloads
from rootgraph.ingest.pipeline import Ingestor
from rootgraph.ingest.sink import InMemorySink


def _json_line(trace: int) -> str:
    doc = json_format.MessageToDict(request(resource_spans("a", span(trace, 1))), use_integers_for_enums=True)
    sp = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    sp["traceId"], sp["spanId"] = trace.to_bytes(16, "big").hex(), (1).to_bytes(8, "big").hex()
    return json.dumps(doc)


def test_json_lines_report_bad_line_and_keep_going(tmp_path: Path) -> None:
    f = tmp_path / "traces.jsonl"
    f.write_text("\n".join([_json_line(1), "garbage", "", _json_line(2), '{"resourceSpans": 5}']) + "\n")
    outcomes = list(ingest_paths(Ingestor(InMemorySink()), [f]))
    assert [(o.location.rsplit(":", 1)[1], o.accepted_spans, bool(o.error)) for o in outcomes] == [
        ("1", 1, False), ("2", 0, True), ("4", 1, False), ("5", 0, True)]
    assert "not a JSON object" in outcomes[1].error


def test_single_pretty_json_document(tmp_path: Path) -> None:
    f = tmp_path / "one.json"
    f.write_text(json.dumps(json.loads(_json_line(3)), indent=2))
    (item,) = read_payloads(f)
    assert isinstance(item, FilePayload) and item.content_type == "application/json"


def test_protobuf_single_framed_and_gzip(tmp_path: Path) -> None:
    a = payload(resource_spans("a", span(1, 2, 1, CLIENT, 0, 5)))
    b = payload(resource_spans("b", span(1, 3, 2, SERVER, 1, 3)))
    single = tmp_path / "one.pb"
    single.write_bytes(a)
    framed = tmp_path / "many.pb.gz"
    framed.write_bytes(gzip.compress(b"".join(len(x).to_bytes(4, "big") + x for x in (a, b))))
    assert [i.content_type for i in read_payloads(single)] == ["application/x-protobuf"]
    items = list(read_payloads(framed))
    assert [type(i) for i in items] == [FilePayload, FilePayload]
    sink = InMemorySink()
    outcomes = list(ingest_paths(Ingestor(sink), [framed]))
    assert sum(o.accepted_spans for o in outcomes) == 2 and ("a", "b") in sink.edges


def test_truncated_frame_and_missing_file_are_reported(tmp_path: Path) -> None:
    f = tmp_path / "cut.pb"
    f.write_bytes((100).to_bytes(4, "big") + b"\x0a\x00")
    (err,) = read_payloads(f)
    assert isinstance(err, FileError) and "runs past the end" in err.reason and "#1" in err.location
    (missing,) = read_payloads(tmp_path / "nope.json")
    assert isinstance(missing, FileError) and "cannot read" in missing.reason
