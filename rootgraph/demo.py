"""The README's main job: a demo incident end to end.

1. provision and start the local Neo4j (or use ``NEO4J_URI``);
2. start the rootgraph server in this process on free loopback ports;
3. replay a bundled Sock Shop incident through the real OpenTelemetry OTLP exporter:
   30 minutes of healthy traffic, then a bad deployment of ``orders`` that starts
   failing — and, two minutes earlier, an innocent deployment of ``catalogue`` (a decoy);
4. record both deployments as a CI/CD system would (``RecordDeployment``);
5. ask ``RankCauses`` for the incident window and ``BlastRadius`` for the top cause,
   print them with their explanations, and compare with the simulated ground truth;
6. point at the Neo4j Browser and the queries that show the recorded incident.

The local graph is reset first (it belongs to the project); a Neo4j given by
``NEO4J_URI`` is never cleared.
"""

from __future__ import annotations

import json
import time

from rich.console import Console

from rootgraph.config import Settings

__all__ = ["DEMO_SCENARIO", "run_demo"]

BASELINE_S = 1800.0
INCIDENT_S = 720.0


def demo_spec(now: float, seed: int):  # noqa: ANN201 - ScenarioSpec
    """The bundled incident, placed so that it ends at the current minute."""
    from rootgraph.simulate import Fault, FaultKind, ScenarioSpec

    end = int(now // 60 * 60)
    return ScenarioSpec(
        name="demo-sockshop-bad-deploy", topology="sockshop",
        faults=(Fault("sock-shop/orders", FaultKind.BAD_DEPLOY, onset_s=60.0),),
        decoys=("sock-shop/catalogue",), seed=seed, baseline_s=BASELINE_S, incident_s=INCIDENT_S,
        rate_rps=3.0, start_epoch_s=int(end - BASELINE_S - INCIDENT_S),
    )


DEMO_SCENARIO = "Sock Shop: bad deployment of orders, decoy deployment of catalogue"


def run_demo(settings: Settings, *, console: Console, as_json: bool = False, wide: bool = False) -> int:
    from rootgraph.client import RootGraphClient
    from rootgraph.graph.local import LocalNeo4j
    from rootgraph.render import render_blast, render_ranking
    from rootgraph.results import fault_kind_name
    from rootgraph.server.wiring import build_app, open_graph
    from rootgraph.simulate import run_live

    say = (lambda *a, **k: None) if as_json else console.print
    t_start = time.monotonic()
    say(f"[bold]rootgraph demo[/bold] — {DEMO_SCENARIO}\n")
    # Never reuse span ids on a shared server (ingest dedups them); the local graph is reset.
    seed = 7 if settings.uses_local_neo4j else int(time.time())
    with open_graph(settings, log=lambda m: say(f"[dim]{m}[/dim]")) as g:
        if settings.uses_local_neo4j:
            say("[dim]Resetting the local demo graph…[/dim]")
            g.admin.clear()
        app = build_app(settings, g.driver, ephemeral_ports=True).start()
        try:
            api, otlp = app.ports["api"], app.ports["otlp_grpc"]
            say(f"Server up: API 127.0.0.1:{api}, OTLP gRPC 127.0.0.1:{otlp}, "
                f"OTLP HTTP 127.0.0.1:{app.ports['otlp_http']}")
            spec = demo_spec(time.time(), seed)
            say(f"Replaying {int((BASELINE_S + INCIDENT_S) // 60)} minutes of Sock Shop traffic through the "
                "OpenTelemetry OTLP exporter…")
            t0 = time.monotonic()
            labels = run_live(spec, f"http://127.0.0.1:{otlp}", protocol="grpc")
            app.ingestor.flush_all()
            replay_s = time.monotonic() - t0
            stats = app.stats()
            say(f"  {labels.spans} spans sent, {stats.get('spans_accepted', 0)} accepted, "
                f"{stats.get('spans_rejected', 0)} rejected in {replay_s:.1f}s")
            with RootGraphClient(f"127.0.0.1:{api}") as rg:
                for d in labels.deployments:
                    rg.record_deployment(d.service, d.version, id=f"ci-{d.service}-{d.version}-{int(d.at_s)}",
                                         at=d.at_s, previous_version=d.previous, source="ci",
                                         attributes={"pipeline": "demo"})
                    say(f"  deployment recorded: {d.service} {d.previous} → {d.version} "
                        f"at {time.strftime('%H:%M:%S', time.localtime(d.at_s))}")
                answer = rg.rank_causes(labels.incident[0], labels.incident[1], top_k=5)
                top = answer.causes[0] if answer.causes else None
                # The blast radius of the top cause's fault as its evidence shows it (errors,
                # latency, saturation), the question a rollback bot asks next.
                blast = rg.blast_radius(top.entity, fault_kind=top.fault_kind, fault_size=top.fault_size) \
                    if top else None
        finally:
            app.stop(grace_s=2.0)
    truth = ", ".join(labels.root_causes)
    rank_of_truth = next((c.rank for c in answer.causes if c.entity in labels.root_causes), None)
    if as_json:
        print(json.dumps({
            "incident_id": answer.incident_id, "truth": list(labels.root_causes),
            "rank_of_truth": rank_of_truth,
            "causes": [{"entity": c.entity, "probability": c.probability, "rank": c.rank,
                        "explanation": c.explanation} for c in answer.causes],
            "blast_fault_kind": fault_kind_name(top.fault_kind) if top else "",
            "blast_fault_size": top.fault_size if top else 0.0,
            "blast_radius": [{"entity": i.entity, "probability": i.probability, "hops": i.hops}
                             for i in (blast.impacts if blast else ())],
            "seconds": round(time.monotonic() - t_start, 1),
        }))
        return 0 if rank_of_truth == 1 else 1
    console.print()
    render_ranking(answer, console, wide=wide)
    if blast:
        console.print()
        render_blast(blast, console, fault_kind=top.fault_kind, fault_size=top.fault_size, wide=wide)
    verdict = "[green]ranked #1[/green]" if rank_of_truth == 1 else f"[red]ranked {rank_of_truth}[/red]"
    console.print(f"\nSimulated ground truth: [bold]{truth}[/bold] ({labels.fault_kind}) — rootgraph {verdict}; "
                  f"decoy deployment on {', '.join(labels.decoys)} not blamed."
                  if rank_of_truth == 1 else f"\nSimulated ground truth: {truth} — rootgraph {verdict}.")
    if settings.uses_local_neo4j:
        local = LocalNeo4j(settings)
        console.print(f"\n[bold]Neo4j Browser:[/bold] {local.browser_url}  (user neo4j, password: "
                      f"`cat {local.password_file}`; the style and a guide of ready queries open on connect)")
        console.print("  The incident and its suspects:\n"
                      f"  [cyan]MATCH p=(:Incident {{id: '{answer.incident_id}'}})-[:SUSPECTS|BLAMES|AFFECTS]->() "
                      "RETURN p[/cyan]\n"
                      "  The service graph:\n"
                      "  [cyan]MATCH p=(:Entity)-[:CALLS]->(:Entity) RETURN p[/cyan]\n"
                      "  Neo4j keeps running; stop it with `.venv/bin/rootgraph neo4j stop`.")
    console.print(f"[dim]Demo finished in {time.monotonic() - t_start:.0f}s.[/dim]")
    return 0
