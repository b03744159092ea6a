"""docker-compose.yml structure (no Docker engine here; `docker compose config` when a CLI exists)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_neo4j_526_community_with_browser_bolt_volume_and_healthcheck() -> None:
    neo4j = _compose()["services"]["neo4j"]
    assert neo4j["image"] == "neo4j:5.26-community"
    assert {"127.0.0.1:7474:7474", "127.0.0.1:7687:7687"} <= set(neo4j["ports"])
    assert any(v.endswith(":/data") for v in neo4j["volumes"])
    assert neo4j["healthcheck"]["test"]


def test_compose_service_is_built_and_wired_by_environment() -> None:
    compose = _compose()
    svc = compose["services"]["rootgraph"]
    assert svc["build"] == "."
    assert (ROOT / "Dockerfile").exists()
    assert svc["environment"]["NEO4J_URI"] == "bolt://neo4j:7687"
    assert "NEO4J_PASSWORD_FILE" in svc["environment"]  # a secret file, not a literal
    assert svc["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert {"127.0.0.1:50051:50051", "127.0.0.1:4317:4317", "127.0.0.1:4318:4318"} <= set(svc["ports"])
    assert svc["healthcheck"]["test"]
    for copied in ("graph", "ingest", "inference", "server", "proto"):
        assert f"COPY {copied} {copied}" in (ROOT / "Dockerfile").read_text()


def test_compose_publishes_ports_on_loopback_only() -> None:
    for name, svc in _compose()["services"].items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def _has_compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    proc = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    return proc.returncode == 0


@pytest.mark.skipif(not _has_compose_plugin(), reason="no docker CLI with the compose plugin")
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    secrets = ROOT / "secrets"
    created = not secrets.exists()
    secrets.mkdir(exist_ok=True)
    for name in ("neo4j_password", "neo4j_auth"):
        f = secrets / name
        if not f.exists():
            f.write_text("x")
    try:
        proc = subprocess.run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
    finally:
        if created:
            shutil.rmtree(secrets)
