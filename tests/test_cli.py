"""The CLI end to end: ingest files into the real Neo4j, and the client commands against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rootgraph.cli import main


@pytest.fixture()
def cli_env(monkeypatch, neo4j_settings):  # noqa: ANN001,ANN201
    """Point the CLI's settings at the test Neo4j instance."""
    monkeypatch.setenv("ROOTGRAPH_NEO4J_INSTANCE", neo4j_settings.local_instance)
    monkeypatch.setenv("ROOTGRAPH_NEO4J_BOLT_PORT", str(neo4j_settings.local_bolt_port))
    monkeypatch.setenv("ROOTGRAPH_NEO4J_HTTP_PORT", str(neo4j_settings.local_http_port))


def _json_out(capsys, argv: list[str]) -> dict:  # noqa: ANN001
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_ingest_files_prints_a_summary_and_fills_the_graph(tmp_path: Path, store, cli_env, capsys) -> None:  # noqa: ANN001
    from rootgraph.simulate import Fault, FaultKind, ScenarioSpec, run_to_files

    spec = ScenarioSpec("cli", "sockshop", (Fault("db:mongodb/orders", FaultKind.BACKEND_ERROR),),
                        baseline_s=120, incident_s=60, rate_rps=2.0, seed=3)
    labels = run_to_files(spec, tmp_path, background=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"resourceSpans": "nope"}\nnot json\n')
    summary = _json_out(capsys, ["ingest", str(tmp_path / "traces.jsonl"), str(bad), "--json"])
    assert summary["spans"] == labels.spans
    assert len(summary["errors"]) == 2 and all("bad.jsonl:" in e for e in summary["errors"])
    assert summary["edges_in_graph"] > 5
    graph = _json_out(capsys, ["graph", "--json"])
    assert {"caller": "sock-shop/orders", "callee": "db:mongodb/orders"}.items() <= next(
        c for c in graph["calls"] if c["callee"] == "db:mongodb/orders").items()


def test_client_commands_against_a_live_server(app, writer, capsys) -> None:  # noqa: ANN001
    from rootgraph.graph.records import Entity, EntityKind, GraphDelta

    server = ["--server", f"127.0.0.1:{app.ports['api']}"]
    # deployments are recorded for services seen in traces (an unknown one is NOT_FOUND)
    writer.apply_deltas([GraphDelta(batch_id="seen", entities={"checkout": Entity("checkout", "checkout",
                                                                                  EntityKind.SERVICE)})])
    assert main(["deploy", "chekout", "2.0.0", *server]) == 1
    assert "did you mean: checkout" in capsys.readouterr().err
    assert _json_out(capsys, ["deploy", "checkout", "2.0.0", "--id", "d-1", "--at", "2026-11-29T10:00:00Z",
                              "--previous", "1.9.0", "--json", *server]) == {"created": True}
    assert _json_out(capsys, ["deploy", "checkout", "2.0.0", "--id", "d-1", "--json", *server]) == {"created": False}
    answer = _json_out(capsys, ["rank", "--json", "--top-k", "3", *server])
    assert answer["no_clear_cause"] is True and answer["incident_id"].startswith("inc-")
    assert main(["blast-radius", "nope", *server]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # a size without a kind is a usage error
        main(["blast-radius", "checkout", "--fault-size", "0.3", *server])
    assert exit_.value.code == 2 and "--fault-size needs --fault-kind" in capsys.readouterr().err
    assert main(["rank", "--start", "yesterday", *server]) == 2
