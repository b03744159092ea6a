"""``rootgraph serve`` as a child process, for benchmarks, load and fault drills.

Why a separate process: the client and the server must not share a GIL or a heap,
as in production, so that throughput, RSS (``/proc/<pid>/status`` VmRSS/VmHWM) and a
SIGKILL mean what they say. Ports are picked free on loopback; Neo4j is addressed
through ``NEO4J_URI`` + ``NEO4J_PASSWORD_FILE`` exactly as an operator would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["ServerProcess", "free_port", "health_status"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health_status(address: str, timeout_s: float = 1.0) -> str:
    """Standard gRPC health of the whole server: SERVING, NOT_SERVING or UNREACHABLE."""
    try:
        with grpc.insecure_channel(address) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""),
                                                       timeout=timeout_s)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    except grpc.RpcError:
        return "UNREACHABLE"


class ServerProcess:
    """One ``rootgraph serve`` child on free loopback ports."""

    def __init__(self, neo4j_uri: str, password_file: Path, log_path: Path,
                 extra_env: dict[str, str] | None = None, role: str = "all",
                 workers: int | None = None) -> None:
        self.role = role
        #: ``--workers`` (None: the server's default, ``Settings.ingest_workers``)
        self.workers = workers
        self.api = f"127.0.0.1:{free_port()}"
        self.otlp_grpc = f"127.0.0.1:{free_port()}"
        self.otlp_http = f"127.0.0.1:{free_port()}"
        self._env = dict(os.environ, NEO4J_URI=neo4j_uri, NEO4J_PASSWORD_FILE=str(password_file),
                         **(extra_env or {}))
        self._env.pop("NEO4J_PASSWORD", None)
        self._env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        self._log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 60.0) -> "ServerProcess":
        exe = Path(sys.executable).with_name("rootgraph")
        cmd = [str(exe), "serve", "--api", self.api, "--otlp-grpc", self.otlp_grpc,
               "--otlp-http", self.otlp_http, "--role", self.role]
        if self.workers is not None:
            cmd += ["--workers", str(self.workers)]
        with open(self._log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=self._env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        self.wait_status("SERVING", timeout_s)
        return self

    def wait_status(self, want: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"rootgraph serve exited with {self.proc.returncode}; see {self._log_path}")
            if health_status(self.otlp_grpc if self.role == "ingest" else self.api) == want:
                return
            time.sleep(0.1)
        raise TimeoutError(f"server did not report {want} within {timeout_s:.0f}s")

    def memory_kb(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) of the server process, in kB."""
        out: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        return out

    def tree_pids(self) -> list[int]:
        """The server and its ingest workers (children, recursively), server first."""
        out, todo = [], [self.pid]
        while todo:
            pid = todo.pop(0)
            out.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    todo += [int(c) for c in (task / "children").read_text().split()]
                except OSError:
                    continue
        return out

    def worker_pids(self) -> list[int]:
        """The ingest workers (``multiprocessing`` spawn children, not its resource tracker)."""
        out = []
        for pid in self.tree_pids()[1:]:
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    out.append(pid)
            except OSError:
                continue
        return out

    def tree_memory_kb(self) -> int:
        """VmRSS summed over the server and its workers, in kB."""
        total = 0
        for pid in self.tree_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its live workers so far (``/proc/<pid>/stat``)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.tree_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        return total / tick

    def metrics(self) -> dict[str, float]:
        """The server's ``/metrics`` (Prometheus text) as ``{name: value}``."""
        with urllib.request.urlopen(f"http://{self.otlp_http}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    continue
        return out

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (graceful: drains, flushes waiting halves) and wait."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no drain, no flush — the crash case."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
