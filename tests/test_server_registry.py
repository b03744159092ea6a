"""ModelRegistry asks Neo4j for the current model version at most every check interval.

Against the real Neo4j: a promote made through another store (another process, as
``rootgraph model promote`` is) is invisible until the interval has passed on the
registry's clock, and visible at the first call after it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from rootgraph.graph.model_versions import ModelStore
from rootgraph.inference.network import DEFAULT_PARAMS
from rootgraph.inference.serialize import params_to_json
from rootgraph.server.registry import ModelRegistry

pytestmark = pytest.mark.neo4j


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _counting(models: ModelStore) -> tuple[ModelStore, list[int]]:
    calls = [0]
    real = models.current_version

    def current_version() -> str | None:
        calls[0] += 1
        return real()

    models.current_version = current_version  # type: ignore[method-assign]
    return models, calls


def test_a_promote_elsewhere_answers_after_the_interval_and_calls_between_cost_no_read(
        store, neo4j_driver, neo4j_settings) -> None:  # noqa: ANN001
    db = neo4j_settings.neo4j_database
    mine, reads = _counting(ModelStore(neo4j_driver, db))
    clock = _Clock()
    registry = ModelRegistry(mine, check_interval_s=5.0, clock=clock)
    assert registry.model_version == DEFAULT_PARAMS.version

    other = ModelStore(neo4j_driver, db)  # "another process"
    other.create("learned-x", DEFAULT_PARAMS.version, params_to_json(replace(DEFAULT_PARAMS, version="learned-x")))
    other.promote("learned-x")

    before = reads[0]
    clock.t += 4.9
    for _ in range(20):
        assert registry.model_version == DEFAULT_PARAMS.version  # within the interval: cached
    assert reads[0] == before  # ... and not one Neo4j read for it

    clock.t += 0.2
    assert registry.model_version == "learned-x"
    assert reads[0] == before + 1


def test_interval_zero_asks_on_every_call(store, neo4j_driver, neo4j_settings) -> None:  # noqa: ANN001
    db = neo4j_settings.neo4j_database
    mine, reads = _counting(ModelStore(neo4j_driver, db))
    registry = ModelRegistry(mine, check_interval_s=0.0, clock=_Clock())
    before = reads[0]
    for _ in range(3):
        assert registry.model_version == DEFAULT_PARAMS.version
    assert reads[0] == before + 3
