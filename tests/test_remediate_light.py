"""``rootgraph remediate`` depends on the public client only (issue 17, item 1).

Two checks: no module of the package imports the server, graph or inference stages
(read from the source, so a lazy import inside a function is caught too), and importing
the whole package in a fresh interpreter loads none of the inference stack.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rootgraph.remediate

PACKAGE = Path(rootgraph.remediate.__file__).parent
#: What the remediation client may import from rootgraph: the public client surface.
ALLOWED = ("rootgraph.client", "rootgraph.results", "rootgraph.config", "rootgraph.v1", "rootgraph.remediate")


def _rootgraph_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m == "rootgraph" or m.startswith("rootgraph.")}


def test_the_package_imports_only_the_public_client_surface() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 9
    for path in modules:
        bad = [m for m in _rootgraph_imports(path) if not m.startswith(ALLOWED)]
        assert not bad, f"{path.name} imports {bad}"


def test_importing_every_module_loads_no_inference_stack_or_server() -> None:
    names = ", ".join(f"rootgraph.remediate.{p.stem}" for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__init__")
    probe = (f"import sys, {names}; print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('pgmpy', 'pandas', 'numpy', 'scipy', 'neo4j') or m.startswith(('rootgraph.server', "
             "'rootgraph.inference', 'rootgraph.ingest'))))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout.strip() == "[]" and proc.stderr == ""
