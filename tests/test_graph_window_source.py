"""The fake ``InMemoryWindows`` keeps the ``WindowSource`` contract of the real reader:
the same deltas give the same windows, entities and service graph (real Neo4j)."""

from __future__ import annotations

from dataclasses import replace

from rootgraph.graph.records import (
    LOG_TEMPLATES_PER_BUCKET, Deployment, Entity, EntityKind, GraphDelta, LogCounts, MetricAgg, Window, window_json,
    decode_window,
)
from rootgraph.graph.reader import WindowReader
from rootgraph.graph.window_source import InMemoryWindows, WindowSource
from rootgraph.graph.writer import GraphWriter
from test_graph_store import _bucket, _delta


def _deltas() -> list[GraphDelta]:
    """Batches that exercise every rule: re-send, async edge, hosts, versions, deployments,
    rows outside the window and an entity with no rows at all."""
    a = _delta("a")
    a.entities["shop/queue"] = Entity("shop/queue", "queue", EntityKind.MESSAGING, "shop")
    a.entities["shop/idle"] = Entity("shop/idle", "idle", EntityKind.SERVICE, "shop")
    a.edges[("shop/frontend", "shop/queue")] = _bucket(4, 0, 1.0)
    a.async_edges = {("shop/frontend", "shop/queue")}
    a.edge_buckets[("shop/frontend", "shop/queue", 660)] = _bucket(4, 0, 1.0)
    a.service_buckets[("shop/frontend", 60)] = _bucket(2, 0, 3.0)   # in the baseline
    a.service_buckets[("shop/frontend", 900)] = _bucket(7, 7, 9.0)  # after the incident
    b = _delta("b")
    b.versions = {("shop/frontend", "1.1.0"): 650_000}              # implicit deployment
    b.deployments = [Deployment("ci-9", "shop/frontend", "1.2.0", 700_000, "1.1.0", "abc", "ci",
                                (("env", "prod"),))]
    b.service_buckets[("shop/frontend", 660)] = _bucket(3, 1, 4.0, 2.0, 1)
    # logs: 20 templates in "a" (over the bound), two more ids and a known one in "b"
    a.log_buckets[("shop/frontend", 660)] = LogCounts(
        40, [0, 0, 0, 30, 2, 7, 1], {11, 12, 13}, {str(i): 2 for i in range(20)}, 0)
    a.log_templates = {("shop/frontend", str(i)): f"template {i} <*>" for i in range(20)}
    b.log_buckets[("shop/frontend", 660)] = LogCounts(6, [0, 0, 0, 0, 0, 6, 0], {12, 14}, {"0": 3, "98": 2, "99": 1}, 0)
    b.log_buckets[("pod:cart-1", 60)] = LogCounts(1, [1, 0, 0, 0, 0, 0, 0], set(), {}, 1)
    b.log_templates = {("shop/frontend", "0"): "template 0 <*> (generalised)", ("shop/frontend", "98"): "x"}
    # metrics: a pod's CPU in two batches, merged
    a.metric_buckets[("pod:cart-1", 660, "cpu_utilization")] = MetricAgg(0.5, 2, 0.2, 0.3)
    b.metric_buckets[("pod:cart-1", 660, "cpu_utilization")] = MetricAgg(0.9, 1, 0.9, 0.9)
    b.metric_buckets[("pod:cart-1", 900, "restarts")] = MetricAgg(1.0, 1, 1.0, 1.0)
    return [a, b, _delta("a")]  # "a" re-sent: counted once


def test_fake_and_real_reader_give_the_same_windows(writer: GraphWriter, reader: WindowReader) -> None:
    fake = InMemoryWindows()
    for d in _deltas():
        assert writer.apply_deltas([d]) == fake.apply_deltas([d])
    dep = Deployment("argo-1", "shop/checkout", "3.0", 120_000, source="api")
    assert writer.record_deployment(dep) is fake.record_deployment(dep) is True
    assert isinstance(fake, WindowSource) and isinstance(reader, WindowSource)
    for incident, baseline in ((Window(600, 720), Window(0, 600)), (Window(660, 720), Window(600, 660)),
                               (Window(900, 960), Window(840, 900)), (Window(2000, 2060), Window(1940, 2000))):
        real, mine = reader.read_window(incident, baseline, 60), fake.read_window(incident, baseline, 60)
        assert replace(mine, version="") == replace(real, version="")
        assert mine.version and fake.read_window(incident, baseline, 60).version == mine.version
    full = fake.read_window(Window(600, 720), Window(0, 600), 60)
    (row,) = full.log_buckets["shop/frontend"]
    assert (row.records, row.severity, row.error_spans, row.error_records) == (46, (0, 0, 0, 30, 2, 13, 1), 4, 14)
    # the first 16 ids of "a" (by count, then id) keep slots; 4 of "a" and 98, 99 of "b" are "other"
    assert len(row.templates) == LOG_TEMPLATES_PER_BUCKET and row.templates[0] == ("0", 5)
    assert row.other_templates == 4 * 2 + 2 + 1 and sum(n for _, n in row.templates) + row.other_templates == 46
    assert full.log_templates["shop/frontend"]["0"] == "template 0 <*> (generalised)"
    assert set(full.log_templates["shop/frontend"]) == {t for t, _ in row.templates}
    (cpu,) = full.metric_buckets["pod:cart-1"]["cpu_utilization"]
    assert (cpu.start_s, cpu.sum, cpu.count, cpu.min, cpu.max) == (660, 1.4, 3, 0.2, 0.9)
    assert "restarts" not in full.metric_buckets["pod:cart-1"]  # t=900 is outside the window
    assert "pod:cart-1" not in full.entities  # evidence keyed by id; the entity set is the spans'
    # the audit record keeps them
    assert decode_window(__import__("orjson").loads(window_json({"w": full}))["w"]) == replace(full, version="")
    assert {d.id for d in full.deployments} == {"argo-1", "span-version:shop/frontend:1.1.0", "ci-9"}
    assert [e.is_async for e in full.edges if e.callee == "shop/queue"] == [True]
    assert "shop/idle" not in full.entities and full.runs_on == {"shop/frontend": ("host:node-1",)}
    assert fake.service_graph() == reader.service_graph()
    for eid in ("shop/idle", "host:node-1", "shop/checkout", "nope"):
        assert fake.entity(eid) == reader.entity(eid)


def test_log_and_metric_rows_are_cached_coherently_and_pruned(writer: GraphWriter, reader: WindowReader,
                                                              store) -> None:  # noqa: ANN001
    """Bucket stamps cover the new rows (a cached read sees a later write) and retention
    deletes them with the span statistics (and templates no longer counted)."""
    def delta(batch: str, t: int, n: int) -> GraphDelta:
        return GraphDelta(batch_id=batch, log_buckets={("svc", t): LogCounts(n, [0, 0, 0, n, 0, 0, 0], set(),
                                                                            {f"t{t}": n}, 0)},
                          log_templates={("svc", f"t{t}"): f"text {t}"},
                          metric_buckets={("pod:p", t, "memory_bytes"): MetricAgg(float(n), 1, float(n), float(n))})
    incident, baseline = Window(6000, 6120), Window(0, 6000)
    writer.apply_deltas([delta("x1", 60, 1), delta("x2", 6000, 2)])
    assert reader.read_window(incident, baseline, 60).log_buckets["svc"][1].records == 2
    writer.apply_deltas([delta("x3", 6000, 5)])  # same bucket, read through the cache
    w = reader.read_window(incident, baseline, 60)
    assert [r.records for r in w.log_buckets["svc"]] == [1, 7]
    assert [r.sum for r in w.metric_buckets["pod:p"]["memory_bytes"]] == [1.0, 7.0]
    assert w.log_templates == {"svc": {"t60": "text 60", "t6000": "text 6000"}}
    store.prune(older_than_s=3000, batch_ids_older_than_ms=0)
    w = reader.read_window(incident, baseline, 60)
    assert [r.start_s for r in w.log_buckets["svc"]] == [6000]
    assert [r.start_s for r in w.metric_buckets["pod:p"]["memory_bytes"]] == [6000]
    assert w.log_templates == {"svc": {"t6000": "text 6000"}} and store.counts()["log_templates"] == 1
