"""``read_window``'s bucket cache against the real Neo4j: served from memory only while
the stamps say nothing changed, across reader/writer instances (processes), clears and prunes."""

from __future__ import annotations

from rootgraph.graph.admin import GraphAdmin
from rootgraph.graph.records import Window
from rootgraph.graph.reader import WindowReader
from rootgraph.graph.window_cache import BucketCache
from rootgraph.graph.writer import GraphWriter
from test_graph_store import _bucket, _delta

INC, BASE = Window(600, 720), Window(0, 600)


def _requests(reader: WindowReader) -> dict[int, int]:
    data = reader.read_window(INC, BASE, 60)
    return {r.start_s: r.requests for r in data.service_buckets.get("shop/frontend", ())}


def test_second_read_is_served_from_memory_and_equal(writer: GraphWriter, reader: WindowReader) -> None:
    d = _delta("a")
    d.service_buckets[("shop/frontend", 660)] = _bucket(5, 0, 10.0)
    writer.apply_deltas([d])
    first = reader.read_window(INC, BASE, 60)
    misses = reader.cache.misses
    second = reader.read_window(INC, BASE, 60)
    assert second == first
    assert reader.cache.misses == misses  # nothing re-read
    assert reader.cache.hits >= 2
    uncached = WindowReader(reader._driver, reader._db, cache_buckets=0).read_window(INC, BASE, 60)
    assert uncached == first


def test_a_write_to_a_cached_minute_is_seen_by_the_next_read(reader: WindowReader, neo4j_driver) -> None:  # noqa: ANN001
    other = GraphWriter(neo4j_driver, reader._db)  # e.g. the ingest process
    other.apply_deltas([_delta("a")])
    assert _requests(reader) == {600: 10}
    d = _delta("b")
    d.service_buckets[("shop/frontend", 660)] = _bucket(5, 0, 10.0)
    other.apply_deltas([d])
    hits = reader.cache.hits
    assert _requests(reader) == {600: 20, 660: 5}
    assert reader.cache.hits == hits  # both minutes changed: both re-read
    other.apply_deltas([_delta("c")])  # touches minute 600 only
    assert _requests(reader) == {600: 30, 660: 5}
    assert reader.cache.hits == hits + 1  # minute 660 still valid


def test_clear_and_prune_invalidate(writer: GraphWriter, reader: WindowReader, neo4j_driver) -> None:  # noqa: ANN001
    d = _delta("a")
    d.service_buckets[("shop/frontend", 0)] = _bucket(3, 0, 10.0)
    writer.apply_deltas([d])
    assert _requests(reader) == {0: 3, 600: 10}
    GraphAdmin(neo4j_driver, reader._db).prune(older_than_s=600, batch_ids_older_than_ms=0)
    assert _requests(reader) == {600: 10}
    with neo4j_driver.session(database=reader._db) as s:
        assert s.run("MATCH (s:BucketStamp) RETURN collect(s.t) AS ts").single()["ts"] == [600]
    GraphAdmin(neo4j_driver, reader._db).clear()  # the reader is not told
    assert _requests(reader) == {}
    writer.apply_deltas([_delta("again")])
    assert _requests(reader) == {600: 10}


def test_cache_is_bounded_lru() -> None:
    from rootgraph.graph.window_cache import Block
    c = BucketCache(max_blocks=2)
    for t in (60, 120, 180):
        c.put(t, Block(f"v{t}", (), ()))
    assert len(c) == 2 and c.get(60, "v60") is None and c.get(180, "v180") is not None
    assert c.get(180, "stale") is None
    BucketCache(0).put(60, Block("v", (), ()))


def test_warm_reads_only_what_changed_and_read_window_reuses_the_assembled_window(
        writer: GraphWriter, reader: WindowReader) -> None:
    writer.apply_deltas([_delta("a")])
    assert reader.warm(0, 720) == 1  # minute 600 is the only stamped bucket time
    assert reader.warm(0, 720) == 0
    first = reader.read_window(INC, BASE, 60)
    assert reader.read_window(INC, BASE, 60) is first and first.version
    writer.apply_deltas([_delta("b")])
    assert reader.warm(0, 720) == 1
    second = reader.read_window(INC, BASE, 60)
    assert second is not first and second.version != first.version
    assert second.service_buckets["shop/frontend"][0].requests == 20


def test_audit_json_round_trips_a_window() -> None:
    import json

    from rootgraph.graph.records import decode_window, window_json
    from rootgraph.inference.synthetic import generate_incident

    window, _ = generate_incident(40, seed=5)
    doc = json.loads(window_json({"window": window, "symptoms": ["x"], "top_k": 3}))
    assert doc["symptoms"] == ["x"] and doc["window"]["incident"] == [window.incident.start_s,
                                                                       window.incident.end_s]
    assert decode_window(doc["window"]) == window
