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

def _open_store(settings: Settings):  # noqa: ANN202
    from rootgraph.graph.connect import open_driver
    from rootgraph.graph.store import GraphStore

    driver = open_driver(settings, log=lambda m: err_console.print(f"[dim]{m}[/dim]"))
    store = GraphStore(driver, settings.neo4j_database)
    store.ensure_schema()
    return driver, store


def render_graph(entities, calls, runs_on, as_json: bool) -> None:  # noqa: ANN001
    if as_json:
        print(json.dumps({
            "entities": [{"id": e.id, "name": e.name, "kind": e.kind.value,
                          "namespace": e.namespace} for e in entities],
            "calls": [{"caller": a, "callee": b, "calls": c, "errors": e, "async": x}
                      for a, b, c, e, x in calls],
            "runs_on": [{"entity": a, "infra": b} for a, b in runs_on],
        }))
        return
    table = Table(title="Call edges")
    for col in ("caller", "callee", "calls", "errors", "error %"):
        table.add_column(col, justify="right" if col in {"calls", "errors", "error %"} else "left")
    for a, b, c, e, x in calls:
        table.add_row(a, b + (" (async)" if x else ""), str(c), str(e), f"{100 * e / max(c, 1):.1f}")
    console.print(table)
    kinds = Table(title="Entities")
    kinds.add_column("id")
    kinds.add_column("kind")
    for e in entities:
        kinds.add_row(e.id, e.kind.value)
    console.print(kinds)


def cmd_graph(args: argparse.Namespace) -> int:
    driver, store = _open_store(_settings(args))
    try:
        render_graph(*store.service_graph(), as_json=args.json)
    finally:
        driver.close()
    return 0


# -- demo -----------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from rootgraph.demo import run_demo

    return run_demo(_settings(args), console=console, as_json=args.json)


# -- entry point ----------------------------------------------------------------------

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
    add("demo", cmd_demo, "run the demo incident end to end on the local Neo4j")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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

        if isinstance(exc, (GraphError, LocalNeo4jError)):
            err_console.print(f"[red]error:[/red] {exc}")
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
