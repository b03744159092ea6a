"""The ``rootgraph`` command line.

Thin by design: each sub-command parses arguments, calls one public function of a
stage (or the gRPC client) and renders the result as a table (``rich``) or as JSON
(``--json``). Errors are printed as one line with the cause and exit with status 2
(usage/config) or 1 (runtime).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Sequence

from rich.console import Console
from rich.table import Table

from rootgraph.config import ConfigError, Settings, load_settings
from rootgraph.render import render_blast, render_event, render_graph, render_incidents, render_ranking

__all__ = ["main"]

console = Console(stderr=False)
err_console = Console(stderr=True)


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "instance", None):
        overrides["local_instance"] = args.instance
    return load_settings(**overrides)


# -- neo4j ----------------------------------------------------------------------------

def cmd_neo4j(args: argparse.Namespace) -> int:
    from rootgraph.graph.local import LocalNeo4j

    settings = _settings(args)
    local = LocalNeo4j(settings)
    if args.action == "start":
        status = local.start(log=lambda m: err_console.print(f"[dim]{m}[/dim]"))
    elif args.action == "stop":
        stopped = local.stop()
        status = local.status()
        if not args.json:
            console.print("stopped" if stopped else "not running")
            return 0
    else:
        status = local.status()
    info = {
        "running": status.running, "pid": status.pid, "bolt": status.bolt_uri,
        "browser": status.browser_url, "user": "neo4j",
        "password_file": str(local.password_file), "instance": str(status.instance_dir),
    }
    if args.json:
        print(json.dumps(info))
    else:
        table = Table(show_header=False, box=None)
        for k, v in info.items():
            table.add_row(f"[bold]{k}[/bold]", str(v))
        console.print(table)
    return 0 if (status.running or args.action == "status") else 1


# -- graph ----------------------------------------------------------------------------

def _log(message: str) -> None:
    err_console.print(f"[dim]{message}[/dim]")


def cmd_graph(args: argparse.Namespace) -> int:
    from rootgraph.server.wiring import open_graph

    with open_graph(_settings(args), log=_log) as g:
        render_graph(*g.reader.service_graph(), console, as_json=args.json)
    return 0


# -- serve --------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from rootgraph.graph.connect import open_driver
    from rootgraph.server.wiring import build_app, tls_files

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    overrides = {k: v for k, v in (("api_address", args.api), ("otlp_grpc_address", args.otlp_grpc),
                                   ("otlp_http_address", args.otlp_http),
                                   ("pairing_wait_seconds", args.pairing_wait),
                                   ("ingest_workers", args.workers)) if v is not None}
    settings = load_settings(**overrides)
    tls = tls_files(args.tls_cert, args.tls_key, args.tls_client_ca)
    driver = open_driver(settings, log=_log)
    app = build_app(settings, driver, tls=tls, role=args.role).start()
    parts = ([f"api {settings.api_address}"] if args.role != "ingest" else []) + (
        [f"OTLP gRPC {settings.otlp_grpc_address}", f"OTLP HTTP {settings.otlp_http_address}",
         f"{settings.ingest_worker_count} ingest worker(s)"]
        if args.role != "api" else [])
    err_console.print(
        f"rootgraph serving ({args.role}): {', '.join(parts)} (auth {'on' if settings.api_token else 'off'}, "
        f"TLS {'on' if tls else 'off'})")
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    err_console.print("shutting down: draining in-flight calls…")
    app.stop()
    driver.close()
    return 0


# -- ingest -------------------------------------------------------------------------

def cmd_ingest(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from rootgraph.ingest.files import ingest_paths
    from rootgraph.server.wiring import file_ingestor, open_graph

    settings = _settings(args)
    errors: list[str] = []
    spans = payloads = duplicates = 0
    with open_graph(settings, log=_log) as g:
        ingestor = file_ingestor(settings, g.writer)
        with Progress(console=err_console, transient=True, disable=args.json) as progress:
            task = progress.add_task("ingesting", total=None)
            for outcome in ingest_paths(ingestor, args.files):
                if outcome.error:
                    errors.append(f"{outcome.location}: {outcome.error}")
                    continue
                payloads += 1
                spans += outcome.accepted_spans
                duplicates += outcome.duplicate
                progress.update(task, advance=outcome.accepted_spans,
                                description=f"{spans} spans from {outcome.location.split(':')[0]}")
        ingestor.flush_all()
        counts = g.admin.counts()
    stats = ingestor.stats()
    summary = {
        "spans": spans, "payloads": payloads, "duplicate_payloads": duplicates,
        "rejected": {k.split(":", 1)[1]: v for k, v in stats.items() if k.startswith("rejected:")},
        "errors": errors, "entities_in_graph": counts["entities"], "edges_in_graph": counts["calls"],
        "unpaired_client": stats.get("unpaired_client", 0),
        "unpaired_server": stats.get("unpaired_server", 0),
        "deployments_in_graph": counts["deployments"],
    }
    if args.json:
        print(json.dumps(summary))
    else:
        table = Table(title="Ingest summary", show_header=False)
        for k, v in summary.items():
            if isinstance(v, dict):
                v = ", ".join(f"{n} × {r}" for r, n in v.items()) or "none"
            elif isinstance(v, list):
                v = "\n".join(v[:20]) + (f"\n… {len(v) - 20} more" if len(v) > 20 else "") if v else "none"
            table.add_row(k, str(v))
        console.print(table)
    return 1 if errors and not spans else 0


# -- client commands ----------------------------------------------------------------

def _client(args: argparse.Namespace):  # noqa: ANN202
    import os

    from rootgraph.client import RootGraphClient

    return RootGraphClient(args.server, token=os.environ.get("ROOTGRAPH_TOKEN"))


def _parse_time(value: str | None) -> float | None:
    if value is None:
        return None
    from datetime import datetime, timezone

    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"time: {value!r} is neither epoch seconds nor ISO-8601") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def cmd_rank(args: argparse.Namespace) -> int:
    with _client(args) as rg:
        answer = rg.rank_causes(_parse_time(args.start), _parse_time(args.end), top_k=args.top_k,
                                symptoms=args.symptom or ())
    render_ranking(answer, console, as_json=args.json, wide=args.wide)
    return 0


def cmd_blast(args: argparse.Namespace) -> int:
    with _client(args) as rg:
        result = rg.blast_radius(args.entity, fault_kind=args.fault_kind or "", fault_size=args.fault_size,
                                 at=_parse_time(args.at))
    render_blast(result, console, as_json=args.json, fault_kind=args.fault_kind or "",
                 fault_size=args.fault_size, wide=args.wide)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    with _client(args) as rg:
        created = rg.record_deployment(args.service, args.version, id=args.id, at=_parse_time(args.at),
                                       commit=args.commit or "", previous_version=args.previous or "")
    print(json.dumps({"created": created}) if args.json else ("recorded" if created else "already recorded"))
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    import uuid

    with _client(args) as rg:
        created = rg.submit_feedback(args.id or uuid.uuid4().hex, args.incident,
                                     confirmed_cause=args.cause or "", none_of_these=args.none,
                                     action=args.action, outcome=args.outcome,
                                     confirmed_by=args.by or "", note=args.note or "")
    print(json.dumps({"created": created}) if args.json else ("recorded" if created else "already recorded"))
    return 0


def cmd_incident(args: argparse.Namespace) -> int:
    from rootgraph.client import RemediationStep, ranking_from_proto
    from rootgraph.render import step_line

    with _client(args) as rg:
        inc = rg.get_incident(args.incident)
    render_ranking(ranking_from_proto(inc.ranking), console, as_json=args.json, wide=args.wide)
    if inc.remediation and not args.json:
        console.print("remediation:")
        for s in inc.remediation:
            console.print(f"  {step_line(RemediationStep.from_proto(s))}", overflow="fold")
    return 0


def cmd_incidents(args: argparse.Namespace) -> int:
    with _client(args) as rg:
        rows = rg.list_incidents(state=args.state or "", since=_parse_time(args.since),
                                 until=_parse_time(args.until), limit=args.limit)
    render_incidents(rows, console, as_json=args.json)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Follow incident events; reconnects with the last seq seen after a dropped stream."""
    import time

    import grpc

    cursor = args.after
    while True:
        try:
            with _client(args) as rg:
                for e in rg.watch_incidents(after_seq=cursor, only_new=args.new and cursor == 0):
                    render_event(e, console, as_json=args.json)
                    cursor = e.seq
        except grpc.RpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                raise
            time.sleep(1.0)  # server restarting: resume from the cursor
        except KeyboardInterrupt:
            return 0


# -- remediate ------------------------------------------------------------------------

def cmd_remediate(args: argparse.Namespace) -> int:
    """run (the daemon) | approve / deny INCIDENT (rootgraph/remediate/); ``rootgraph incident``
    shows the steps recorded."""
    import getpass

    from rootgraph.client import RootGraphClient
    from rootgraph.remediate import load_remediate_settings
    from rootgraph.remediate.steps import DecisionError, decide

    settings = load_remediate_settings(args.config, server=args.server)

    def connect() -> RootGraphClient:
        return RootGraphClient(settings.server, token=settings.api_token.value if settings.api_token else None)

    if args.remediate_action == "run":
        return _remediate_run(settings, connect)
    with connect() as rg:
        by = args.by or f"cli:{getpass.getuser()}"
        try:
            s = decide(rg, args.incident, approve=args.remediate_action == "approve", actor=by,
                       proposal_id=args.proposal or "", detail=json.dumps({"via": "cli", "note": args.note or ""}))
        except DecisionError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            return 1
    out = {"incident_id": args.incident, "proposal_id": s.proposal_id, "decision": s.kind, "by": by,
           "target": s.target}
    print(json.dumps(out) if args.json else f"{out['decision']}: proposal {s.proposal_id} ({s.target}) by {by}")
    return 0


def _remediate_run(settings, connect) -> int:  # noqa: ANN001
    import logging
    import signal
    import threading

    from rootgraph.remediate.callback import CallbackServer
    from rootgraph.remediate.daemon import Remediator

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    daemon = Remediator(settings, connect)
    callback = None
    if settings.slack_signing_secret is not None:
        callback = CallbackServer(settings.callback_address, settings.slack_signing_secret, daemon.client,
                                  window_s=settings.signature_window_s).start()
    daemon.start()
    err_console.print(
        f"rootgraph remediate watching {settings.server}: actions {', '.join(settings.allowed_actions)}, "
        f"{'DRY RUN' if settings.dry_run else 'executing'}, decisions within {settings.decision_timeout_s:g}s"
        + (f", Slack callback on {callback.url}" if callback else ", no Slack callback (CLI approval)")
        + (f", policy {settings.policy_file}" if settings.policy_file else ", no auto-execution policy"))
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    if callback is not None:
        callback.stop()
    daemon.stop()
    return 0


# -- model versions -------------------------------------------------------------------

def cmd_model(args: argparse.Namespace) -> int:
    """train | evaluate VERSION | promote VERSION | rollback | list (Neo4j directly)."""
    from rootgraph.modelops import ModelOps
    from rootgraph.server.wiring import model_stores, open_graph

    settings = _settings(args)
    with open_graph(settings, log=_log) as g:
        ops = ModelOps(*model_stores(settings, g.driver))
        if args.action in ("evaluate", "promote") and not args.version:
            raise ConfigError(f"version: `rootgraph model {args.action}` needs a VERSION")
        if args.action == "train":
            rec, metrics = ops.train(args.version or None)
            out = {"version": rec.version, "parent": rec.parent, "status": rec.status, **metrics}
        elif args.action == "evaluate":
            out = ops.evaluate(args.version)
        elif args.action == "promote":
            rec = ops.promote(args.version)
            out = {"current": rec.version, "previous": rec.previous}
        elif args.action == "rollback":
            rec = ops.rollback()
            out = {"current": rec.version}
        else:
            out = {"versions": [{"version": r.version, "status": r.status, "parent": r.parent,
                                 "created": r.created_ms, "previous": r.previous}
                                for r in ops.list()]}
    if args.json:
        print(json.dumps(out))
    elif args.action == "list":
        table = Table(title="Model versions")
        for col in ("version", "status", "parent", "previous"):
            table.add_column(col)
        for r in out["versions"]:
            table.add_row(r["version"], r["status"], r["parent"], r["previous"])
        console.print(table)
    elif args.action == "evaluate":
        console.print(f"{out['incidents']} incidents with a confirmed cause")
        for label, key in ((out["version"], "candidate"), (out["current"] + " (current)", "current_model")):
            m = out[key]
            console.print(f"  {label}: AC@1 {m['ac1']:.2f}  AC@3 {m['ac3']:.2f}")
    else:
        console.print(json.dumps(out, indent=2))
    return 0


# -- demo -----------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from rootgraph.demo import run_demo

    return run_demo(_settings(args), console=console, as_json=args.json, wide=args.wide)


# -- entry point ----------------------------------------------------------------------

WIDE_HELP = ("every candidate, implausible ones too, with every suggestion in full, on long lines "
             "(default: plausible causes only, fitted to the terminal or COLUMNS)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rootgraph", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(fn=fn)
        return p

    p = add("neo4j", cmd_neo4j, "provision, start, stop or inspect the local Neo4j")
    p.add_argument("action", choices=("start", "stop", "status"))
    p.add_argument("--instance", help="local instance name (default: default)")
    add("graph", cmd_graph, "print the service dependency graph")
    p = add("demo", cmd_demo, "run the demo incident end to end on the local Neo4j")
    p.add_argument("--wide", action="store_true", help=WIDE_HELP)

    p = add("serve", cmd_serve, "run the gRPC API, OTLP gRPC and OTLP HTTP receivers")
    p.add_argument("--api", help="API listen address (default 127.0.0.1:50051)")
    p.add_argument("--otlp-grpc", help="OTLP gRPC listen address (default 127.0.0.1:4317)")
    p.add_argument("--otlp-http", help="OTLP HTTP listen address (default 127.0.0.1:4318)")
    p.add_argument("--pairing-wait", type=float, metavar="SECONDS",
                   help="how long an unpaired span half waits for its partner (default 10)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="ingest worker processes, spans sharded by trace id (default 0: one per usable CPU "
                        "less one, at most 4; 1: one process)")
    p.add_argument("--tls-cert", help="PEM certificate: serve gRPC over TLS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--tls-client-ca", help="PEM CA bundle: require client certificates (mTLS)")
    p.add_argument("--role", choices=["all", "ingest", "api"], default="all",
                   help="all (default); or split: 'ingest' = OTLP receivers only, 'api' = RootCause "
                        "only (separate processes, e.g. so queries do not slow ingest)")

    p = add("ingest", cmd_ingest, "load OTLP JSON-lines or protobuf files into the graph")
    p.add_argument("files", nargs="+", help="OTLP files (.jsonl/.json/.pb, optionally .gz)")

    def client_cmd(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = add(name, fn, help_)
        p.add_argument("--server", default="127.0.0.1:50051", help="rootgraph API address")
        return p

    p = client_cmd("rank", cmd_rank, "rank probable root causes for an incident window")
    p.add_argument("--wide", action="store_true", help=WIDE_HELP)
    p.add_argument("--start", help="window start (ISO-8601 or epoch s; default end-15m)")
    p.add_argument("--end", help="window end (default now)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--symptom", action="append", help="an entity known to be symptomatic (repeatable)")
    p = client_cmd("blast-radius", cmd_blast, "what breaks if ENTITY fails (what-if)")
    p.add_argument("--wide", action="store_true", help="every impact, with its path, on long lines")
    p.add_argument("entity")
    p.add_argument("--fault-kind", choices=("errors", "latency", "saturation", "down"),
                   help="default: unknown (errors or latency; saturation for infrastructure)")
    p.add_argument("--fault-size", type=float, default=0.0,
                   help="with --fault-kind: failing share (errors), ms added (latency), slowdown factor "
                        "(saturation), as `rank` shows it; default unknown")
    p.add_argument("--at", help="graph as of this time (default now)")
    p = client_cmd("deploy", cmd_deploy, "record a deployment")
    p.add_argument("service")
    p.add_argument("version")
    p.add_argument("--id", help="idempotency key (default: derived by the server from service, version, "
                                    "--commit and --at)")
    p.add_argument("--at")
    p.add_argument("--commit")
    p.add_argument("--previous", help="previous version")
    p = client_cmd("feedback", cmd_feedback, "confirm the real cause of an incident")
    p.add_argument("incident")
    p.add_argument("--cause", help="the confirmed root-cause entity")
    p.add_argument("--none", action="store_true", help="none of the suggested causes")
    p.add_argument("--action", default="unspecified",
                   choices=("unspecified", "rollback", "restart", "scale", "failover", "other", "none"))
    p.add_argument("--outcome", default="unspecified", choices=("unspecified", "resolved", "not_resolved"))
    p.add_argument("--by")
    p.add_argument("--note")
    p.add_argument("--id", help="idempotency key (default random)")
    p = client_cmd("incident", cmd_incident, "show a recorded incident")
    p.add_argument("--wide", action="store_true", help=WIDE_HELP)
    p.add_argument("incident")
    p = client_cmd("incidents", cmd_incidents, "list incidents (detected and answered)")
    p.add_argument("--state", choices=("open", "resolved", "answered"))
    p.add_argument("--since", help="opened at or after (ISO-8601 or epoch s)")
    p.add_argument("--until", help="opened before")
    p.add_argument("--limit", type=int, default=50)
    p = client_cmd("watch", cmd_watch, "follow incidents live (opened / updated / resolved)")
    p.add_argument("--after", type=int, default=0, help="resume after this event seq (default: all)")
    p.add_argument("--new", action="store_true", help="only events from now on")
    p = add("remediate", cmd_remediate, "the reference remediation client: propose, approve, execute, learn")
    p.add_argument("--config", help="remediate settings (TOML; see README `rootgraph remediate`)")
    p.add_argument("--server", help="rootgraph API address (default: the config's, else 127.0.0.1:50051)")
    rsub = p.add_subparsers(dest="remediate_action", required=True)  # steps: `rootgraph incident ID`
    rsub.add_parser("run", help="watch incidents, propose, wait for approval, execute, report outcomes")
    for name, what in (("approve", "approve"), ("deny", "deny")):
        q = rsub.add_parser(name, help=f"{what} the incident's proposal waiting for a decision")
        q.add_argument("incident")
        q.add_argument("--by", help="who decides (default cli:$USER)")
        q.add_argument("--proposal", help="the proposal id (default: the one waiting)")
        q.add_argument("--note")
        q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    p = add("model", cmd_model, "model versions: train, evaluate, promote, rollback, list")
    p.add_argument("action", choices=("train", "evaluate", "promote", "rollback", "list"))
    p.add_argument("version", nargs="?", default="", help="VERSION (evaluate, promote; train: optional name)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    # pgmpy 1.1 warns about its own deprecated re-exports on import; not the user's concern.
    warnings.filterwarnings("ignore", message=".*pgmpy.estimators.StructureScore.*", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "fault_size", 0.0) and not args.fault_kind:
        parser.error("--fault-size needs --fault-kind")  # exits 2, like every usage error
    try:
        return int(args.fn(args))
    except ConfigError as exc:
        err_console.print(f"[red]configuration error:[/red] {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        from rootgraph.graph.errors import GraphError
        from rootgraph.graph.local import LocalNeo4jError

        import grpc

        if isinstance(exc, grpc.RpcError):
            err_console.print(f"[red]error:[/red] {exc.code().name}: {exc.details()}")  # type: ignore[attr-defined]
            return 1
        if isinstance(exc, (GraphError, LocalNeo4jError)):
            err_console.print(f"[red]error:[/red] {exc}")
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
