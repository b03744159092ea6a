"""What the graph stage needs to know of the configuration, as Protocols.

``graph/`` does not depend on the surface's ``rootgraph.config.Settings``: it declares
here exactly the fields it reads, and ``Settings`` satisfies both protocols
structurally (tests may pass anything with the same fields). Defaults and validation
stay in one place, ``rootgraph/config.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from rootgraph.config import Secret

__all__ = ["LocalNeo4jSettings", "Neo4jTarget"]


class LocalNeo4jSettings(Protocol):
    """The project's own local Neo4j: where it lives, its instance, ports and memory."""

    @property
    def home(self) -> Path: ...
    @property
    def local_instance(self) -> str: ...
    @property
    def local_bolt_port(self) -> int: ...
    @property
    def local_http_port(self) -> int: ...
    @property
    def local_heap(self) -> str: ...
    @property
    def local_pagecache(self) -> str: ...
    @property
    def local_start_timeout_s(self) -> float: ...


class Neo4jTarget(LocalNeo4jSettings, Protocol):
    """Which Neo4j to open: an existing server (``neo4j_uri`` set) or the local one."""

    @property
    def neo4j_uri(self) -> str: ...
    @property
    def neo4j_user(self) -> str: ...
    @property
    def neo4j_password(self) -> Secret | None: ...
    @property
    def uses_local_neo4j(self) -> bool: ...
