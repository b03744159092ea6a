"""The README's main job: a demo incident end to end on the local Neo4j.

Stage 1 of the demo (foundation): provision and start Neo4j, load a tiny example
graph, print it, and point at the Browser. Later stages replace the example graph with
a simulated incident replayed through the OTLP exporter and ranked over gRPC.
"""

from __future__ import annotations

import json

from rich.console import Console

from rootgraph.config import Settings
from rootgraph.graph.model import Entity, EntityKind, GraphDelta, StatsBucket

__all__ = ["run_demo"]


def _example_delta() -> GraphDelta:
    d = GraphDelta(batch_id="demo-example-graph")
    for eid, kind in (("user", EntityKind.USER), ("frontend", EntityKind.SERVICE),
                      ("checkout", EntityKind.SERVICE), ("db:postgresql/orders", EntityKind.DATABASE)):
        d.entities[eid] = Entity(eid, eid.split("/")[-1], kind)
    for (a, b), (n, e) in {("user", "frontend"): (100, 1), ("frontend", "checkout"): (60, 1),
                           ("checkout", "db:postgresql/orders"): (120, 0)}.items():
        d.edges[(a, b)] = StatsBucket(requests=n, errors=e)
    return d


def run_demo(settings: Settings, *, console: Console, as_json: bool = False) -> int:
    from rootgraph.cli import _open_store, render_graph
    from rootgraph.graph.local import LocalNeo4j

    driver, store = _open_store(settings)
    try:
        store.apply_delta(_example_delta())
        graph = store.service_graph()
    finally:
        driver.close()
    render_graph(*graph, as_json=as_json)
    if settings.uses_local_neo4j and not as_json:
        local = LocalNeo4j(settings)
        console.print(f"\nNeo4j Browser: [bold]{local.browser_url}[/bold]  "
                      f"(user neo4j, password in {local.password_file})")
        console.print("Try: [cyan]MATCH p=(:Entity)-[:CALLS]->(:Entity) RETURN p[/cyan]")
    return 0
