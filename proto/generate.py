"""Regenerate the Python protobuf/gRPC stubs from ``proto/rootgraph/v1/rootgraph.proto``.

One command (``make proto`` or ``python proto/generate.py``). The stubs are written
beside the .proto into ``proto/rootgraph/v1/`` (installed as the ``rootgraph.v1``
package) and committed; ``tests/test_proto_stubs.py`` fails when they are stale.
grpcio-tools is pinned exactly in pyproject's test extra so the output is reproducible.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PROTO_FILE = "rootgraph/v1/rootgraph.proto"
GENERATED = ("rootgraph_pb2.py", "rootgraph_pb2.pyi", "rootgraph_pb2_grpc.py")


def generate(out_dir: Path) -> list[Path]:
    """Run protoc into ``out_dir`` (a tree root); return the generated files."""
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    args = [
        "protoc", f"-I{PROTO_ROOT}", f"-I{include}",
        f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}",
        PROTO_FILE,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")
    return [out_dir / "rootgraph" / "v1" / name for name in GENERATED]


if __name__ == "__main__":
    for path in generate(PROTO_ROOT):
        print(path.relative_to(PROTO_ROOT.parent))
    sys.exit(0)
