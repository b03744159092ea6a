"""``rootgraph rank`` as a person on call reads it: 80 columns, stdout a pipe (issue 13, #5).

The real CLI in a subprocess (``COLUMNS=80``, output captured through a pipe) against a
real server on loopback over the test Neo4j, after a Sock Shop bad deployment with a
decoy deployment was replayed through the real OTLP exporter.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from rootgraph.client import RootGraphClient
from rootgraph.results import is_plausible

TOP_K = 10


@pytest.fixture()
def incident(app):  # noqa: ANN001,ANN201
    """(api address, incident window) after a bad deploy of orders and a decoy on catalogue."""
    from rootgraph.simulate import Fault, FaultKind, ScenarioSpec, run_live

    end = int(time.time() // 60 * 60)
    spec = ScenarioSpec(name="cli-80", topology="sockshop",
                        faults=(Fault("sock-shop/orders", FaultKind.BAD_DEPLOY, onset_s=60.0),),
                        decoys=("sock-shop/catalogue",), seed=11, baseline_s=900.0, incident_s=360.0,
                        rate_rps=3.0, start_epoch_s=end - 1260)
    labels = run_live(spec, f"http://127.0.0.1:{app.ports['otlp_grpc']}", protocol="grpc")
    app.ingestor.flush_all()
    api = f"127.0.0.1:{app.ports['api']}"
    with RootGraphClient(api) as rg:
        for d in labels.deployments:
            rg.record_deployment(d.service, d.version, at=d.at_s, previous_version=d.previous, source="ci")
    return api, labels.incident


def _cli(*argv: str) -> str:
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("ROOTGRAPH_TOKEN", None)
    proc = subprocess.run([sys.executable, "-m", "rootgraph.cli", *argv], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_rank_fits_80_columns_in_a_pipe_and_summarises_the_implausible(incident) -> None:  # noqa: ANN001
    api, (start, end) = incident
    window = ["--server", api, "--start", str(start), "--end", str(end), "--top-k", str(TOP_K)]
    answer = json.loads(_cli("rank", "--json", *window))
    causes = answer["causes"]
    # --json carries every candidate the server returned, implausible ones included.
    assert len(causes) == TOP_K
    top = causes[0]
    assert top["entity"] == "sock-shop/orders" and top["suggested_actions"][0]["kind"] == "rollback"
    plausible = [c for c in causes if is_plausible(c["probability"], top["probability"])]
    hidden = [c for c in causes if c not in plausible]
    assert [c["plausible"] for c in causes] == [c in plausible for c in causes]
    assert hidden and all(c["suggested_actions"] == [] for c in hidden)

    text = _cli("rank", *window)
    lines = text.splitlines()
    assert "\x1b[" not in text  # a pipe gets no colour codes
    too_long = [line for line in lines if len(line) > 80]
    assert not too_long, "\n".join(too_long)
    rows = [line for line in lines if re.match(r"^\s*\d+\s+\S", line)]  # table rows start with the rank
    assert [r.split()[1] for r in rows] == [c["entity"] for c in plausible]
    summary = [line for line in lines if line.startswith("+ ")]
    assert len(summary) == 1
    n = len(hidden)
    assert summary[0].startswith(f"+ {n} other candidate{'s' if n != 1 else ''} with P")
    assert "roll back to" in text and not any(
        f"roll back {c['entity']}" in text for c in hidden)

    wide = _cli("rank", "--wide", *window)
    wide_rows = [line for line in wide.splitlines() if re.match(r"^\s*\d+\s+\S", line)]
    assert [r.split()[1] for r in wide_rows] == [c["entity"] for c in causes]
    assert top["suggested_actions"][0]["detail"] in wide  # in full, on one line
