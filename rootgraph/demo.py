"""The README's main job: a demo incident end to end.

1. provision and start the local Neo4j (or use ``NEO4J_URI``);
2. start the rootgraph server in this process on free loopback ports;
3. replay a bundled Sock Shop incident through the real OpenTelemetry OTLP exporter:
   30 minutes of healthy traffic, then a bad deployment of ``orders`` that starts
   failing — and, two minutes earlier, an innocent deployment of ``catalogue`` (a decoy);
4. record both deployments as a CI/CD system would (``RecordDeployment``);
5. ask ``RankCauses`` for the incident window and ``BlastRadius`` for the top cause,
   print them with their explanations, and compare with the simulated ground truth;
6. close the loop with ``rootgraph remediate`` (issue 17): the detector opens the incident
   while it is replayed, the remediation client proposes the rollback to a local webhook
   receiver standing in for Slack, which clicks Approve (a signed interactivity request);
   the "rollback" is a harmless ``echo``; healthy traffic after it lets the detector see
   the symptoms clear, the outcome is recorded and fed back, and the model learned from
   it (``rootgraph model train`` + ``promote``) prints the rollback's new confidence;
7. point at the Neo4j Browser and the queries that show the recorded incident.

The local graph is reset first (it belongs to the project); a Neo4j given by
``NEO4J_URI`` is never cleared.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

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
#: Healthy traffic replayed after the rollback, so the detector sees the symptoms clear
#: (it resolves after ``detector_resolve_buckets`` clear buckets, 5 by default).
AFTER_ROLLBACK_S = 480.0
#: The harmless stand-in for ``kubectl argo rollouts undo {name}``.
DEMO_ROLLBACK = ("echo", "rollback", "{target}", "to", "{to_version}")


class DemoLoop:
    """The remediation client wired as a team would run it, against the demo's server.

    A :class:`rootgraph.remediate.receiver.LocalChat` is the Slack workspace, the
    callback server verifies the signature of its Approve click, and the daemon executes
    :data:`DEMO_ROLLBACK` with dry run off. The demo clicks Approve once the replay is
    over, as the on-call engineer would after reading the proposal: the replay compresses
    42 minutes into seconds, and a rollback "run" in the middle of it would be followed
    by minutes of the fault's own data, which the outcome judge would rightly read as
    the action not helping.
    """

    def __init__(self, api: str, bucket_seconds: int) -> None:
        import secrets

        from rootgraph.client import RootGraphClient
        from rootgraph.config import Secret
        from rootgraph.remediate.callback import CallbackServer
        from rootgraph.remediate.config import RemediateSettings
        from rootgraph.remediate.daemon import Remediator
        from rootgraph.remediate.receiver import LocalChat

        secret = Secret(secrets.token_hex(16))
        self.chat = LocalChat(secret=secret, user="demo-oncall")
        self.settings = RemediateSettings(
            server=api, slack_webhook_url=self.chat.slack_url, slack_signing_secret=secret,
            callback_address="127.0.0.1:0", decision_timeout_s=120.0, outcome_buckets=15,
            bucket_seconds=bucket_seconds, allowed_actions=("rollback",), executor={"rollback": DEMO_ROLLBACK},
            dry_run=False).validate()
        self.daemon = Remediator(self.settings, lambda: RootGraphClient(api))
        self.callback = CallbackServer(self.settings.callback_address, secret, self.daemon.client).start()
        self.chat.callback_url = self.callback.url
        self.daemon.start()

    def record(self, timeout_s: float):  # noqa: ANN201 - daemon.Record | None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for rec in self.daemon.records:
                if rec.proposal.action == "rollback":
                    return rec
            time.sleep(0.1)
        return None

    def close(self) -> None:
        self.callback.stop()
        self.daemon.stop()
        self.chat.close()


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
        # The loop needs the detector, whatever the caller's settings say (the tests turn it off).
        app = build_app(replace(settings, detector_interval_seconds=settings.detector_interval_seconds or 1.0),
                        g.driver, ephemeral_ports=True).start()
        loop = None
        try:
            api, otlp = app.ports["api"], app.ports["otlp_grpc"]
            say(f"Server up: API 127.0.0.1:{api}, OTLP gRPC 127.0.0.1:{otlp}, "
                f"OTLP HTTP 127.0.0.1:{app.ports['otlp_http']}")
            loop = DemoLoop(f"127.0.0.1:{api}", settings.bucket_seconds)
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
            loop_out = _close_the_loop(loop, app, spec, otlp, settings, g.driver, say)
        finally:
            if loop is not None:
                loop.close()
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
            "remediation": loop_out,
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
    _print_loop(loop_out, console)
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


def _close_the_loop(loop: DemoLoop, app, spec, otlp: int, settings: Settings, driver, say) -> dict:  # noqa: ANN001
    """Wait for the proposal and its execution, replay the healthy tail, learn from the outcome."""
    from rootgraph.modelops import ModelOps
    from rootgraph.server.wiring import model_stores
    from rootgraph.simulate import ScenarioSpec, run_live

    rec = loop.record(timeout_s=30.0)
    if rec is None:
        return {"proposed": False}
    say(f"\n[bold]rootgraph remediate[/bold]: proposed {rec.proposal.summary()}")
    say(f"  posted to the chat webhook {rec.posted_after_s:.2f}s after the detector opened the incident")
    # The detector judges the replayed buckets a few per second: let it reach the end of
    # the replay first, so the rollback comes after the fault's data, as it would live.
    end = int(spec.start_epoch_s + spec.baseline_s + spec.incident_s)
    _wait_judged(app, end - 2 * settings.bucket_seconds)
    status, answer = loop.chat.click(loop.chat.proposal(timeout_s=10.0), approve=True)
    say(f"  Approve clicked in the (local) Slack: HTTP {status}, {answer.get('text', answer)}")
    deadline = time.monotonic() + 60
    while rec.execution is None and not rec.done.is_set() and time.monotonic() < deadline:
        time.sleep(0.1)
    out: dict = {"proposed": True, "incident_id": rec.proposal.incident_id, "action": rec.proposal.action,
                 "target": rec.proposal.target, "to_version": rec.proposal.to_version,
                 "posted_after_s": round(rec.posted_after_s, 3), "blast_share": rec.proposal.blast_share,
                 "decision": rec.decision, "decided_by": rec.decided_by}
    if rec.execution is None:
        rec.done.wait(5)
        out.update(decision=rec.decision, decided_by=rec.decided_by)
        return out
    say(f"  {rec.decision} in chat by {rec.decided_by}; executed {' '.join(rec.execution.argv)!r}: "
        f"exit {rec.execution.exit_status}, output {rec.execution.output_tail.strip()!r}")
    # After the rollback: healthy traffic (the simulated release is gone), so the
    # detector sees the symptoms clear within a few buckets.
    say(f"  replaying {AFTER_ROLLBACK_S / 60:.0f} minutes of traffic after the rollback…")
    run_live(ScenarioSpec(name="demo-after-rollback", topology=spec.topology, faults=(), seed=spec.seed + 1,
                          baseline_s=AFTER_ROLLBACK_S - 60, incident_s=60.0, rate_rps=spec.rate_rps,
                          start_epoch_s=end), f"http://127.0.0.1:{otlp}", protocol="grpc")
    rec.done.wait(120.0)
    out.update(decision=rec.decision, decided_by=rec.decided_by, exit_status=rec.execution.exit_status,
               outcome=rec.outcome, feedback_created=rec.feedback_created)
    say(f"  outcome: {rec.outcome or 'not judged'}; feedback recorded: {rec.feedback_created}")
    if rec.outcome:
        ops = ModelOps(*model_stores(settings, driver))
        version, _ = ops.train()
        ops.promote(version.version)
        stats = [r for r in ops.params(version.version).action_stats if r[0] == rec.proposal.action]
        out["learned"] = [{"action": a, "context": c, "resolved": r, "total": n, "confidence": round(p, 3)}
                          for a, c, r, n, p in stats]
        out["model_version"] = version.version
    return out


def _wait_judged(app, bucket_s: int, timeout_s: float = 60.0) -> None:  # noqa: ANN001 - server.app.App
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        position = app.detector._position  # noqa: SLF001 - the demo runs the server in-process
        if position is not None and position >= bucket_s:
            return
        time.sleep(0.1)


def _print_loop(out: dict, console: Console) -> None:
    if not out.get("proposed"):
        console.print("\n[yellow]rootgraph remediate made no proposal[/yellow] (no confident cause with a rollback).")
        return
    for row in out.get("learned", ()):
        console.print(f"Learned confidence ({out['model_version']}): {row['action']} on {row['context']} "
                      f"resolved {row['resolved']} of {row['total']} → [bold]{row['confidence']:.0%}[/bold] "
                      f"(proposals of it now say so)")
    console.print(f"  The steps: [cyan]rootgraph incident {out['incident_id']} --server …[/cyan] or in the Browser: "
                  f"[cyan]MATCH p=(:Incident {{id: '{out['incident_id']}'}})<-[:STEP_OF]-(:RemediationStep) RETURN p[/cyan]")
