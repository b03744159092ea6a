"""Traffic and fault simulator: real OpenTelemetry SDK spans with ground-truth labels.

Used by the demo and the benchmarks (issue 6). Quick start::

    from rootgraph.simulate import ScenarioSpec, Fault, FaultKind, run_to_files, suite
    spec = ScenarioSpec("demo", "sockshop", (Fault("db:mongodb/orders", FaultKind.BACKEND_ERROR),))
    labels = run_to_files(spec, "out/")        # out/traces.jsonl + out/labels.json
    labels = run_live(spec, "http://127.0.0.1:4317")

or ``python -m rootgraph.simulate --topology sockshop --fault db:mongodb/orders --out out/``.
"""

from .export import (
    OtlpJsonLinesExporter,
    SyncBatchSpanProcessor,
    live_exporter,
    parse_otlp_json_line,
    read_otlp_json_lines,
)
from .faults import Fault, FaultError, FaultKind
from .scenario import (
    DeploymentLabel,
    FaultLabel,
    Labels,
    ScenarioError,
    ScenarioSpec,
    run,
    run_live,
    run_to_files,
)
from .suite import suite
from .topologies import generate
from .topologies import get as get_topology
from .topology import Backend, BackendKind, Call, Entry, Operation, Service, Topology, TopologyError
from .truth import EntityImpact

__all__ = [
    "Backend",
    "BackendKind",
    "Call",
    "DeploymentLabel",
    "EntityImpact",
    "Entry",
    "Fault",
    "FaultError",
    "FaultKind",
    "FaultLabel",
    "Labels",
    "Operation",
    "OtlpJsonLinesExporter",
    "ScenarioError",
    "ScenarioSpec",
    "Service",
    "SyncBatchSpanProcessor",
    "Topology",
    "TopologyError",
    "generate",
    "get_topology",
    "live_exporter",
    "parse_otlp_json_line",
    "read_otlp_json_lines",
    "run",
    "run_live",
    "run_to_files",
    "suite",
]
