"""rootgraph: root-cause inference over an OpenTelemetry-fed Neo4j dependency graph.

The public surface is the gRPC contract (``proto/rootgraph/v1``), the ``rootgraph``
CLI and the Python client (:mod:`rootgraph.client`).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
