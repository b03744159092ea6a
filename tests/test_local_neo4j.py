"""The project's own Neo4j: lifecycle, Browser, clear errors. Uses its own instance and ports."""

from __future__ import annotations

import os
import socket
import urllib.request
from pathlib import Path

import pytest

from rootgraph.config import load_settings
from rootgraph.graph.local import LocalNeo4j, LocalNeo4jError, _pid_alive


@pytest.fixture()
def lifecycle_settings(neo4j_settings):  # noqa: ANN001,ANN201 - after the session server is up
    return load_settings(local_instance="lifecycle", local_bolt_port=int(os.environ.get("ROOTGRAPH_TEST_LC_BOLT", "17787")),
                         local_http_port=int(os.environ.get("ROOTGRAPH_TEST_LC_HTTP", "17774")),
                         local_heap="512m", local_pagecache="64m")


def test_start_twice_is_harmless_browser_is_served_and_stop_leaves_no_process(lifecycle_settings) -> None:  # noqa: ANN001
    local = LocalNeo4j(lifecycle_settings)
    try:
        first = local.start(log=lambda m: None)
        second = local.start(log=lambda m: None)
        assert first.running and second.pid == first.pid
        with urllib.request.urlopen(local.browser_url, timeout=10) as resp:
            assert resp.status == 200 and b"<html" in resp.read(2048).lower()
        conf = (local.instance_dir / "conf" / "neo4j.conf").read_text()
        assert "server.default_listen_address=127.0.0.1" in conf
        mode = local.password_file.stat().st_mode & 0o777
        assert mode == 0o600
    finally:
        pid = local.status().pid
        assert local.stop() is True
    assert pid is not None and not _pid_alive(pid)
    assert local.status().running is False
    assert local.stop() is False  # stopping twice is harmless too


def test_a_taken_port_is_reported_clearly(lifecycle_settings) -> None:  # noqa: ANN001
    with socket.socket() as s:
        s.bind(("127.0.0.1", lifecycle_settings.local_bolt_port))
        s.listen(1)
        with pytest.raises(LocalNeo4jError, match=f"port {lifecycle_settings.local_bolt_port} .*taken"):
            LocalNeo4j(lifecycle_settings).start(log=lambda m: None)


def test_missing_java_or_maven_is_reported_clearly(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    settings = load_settings(home=tmp_path)  # nothing provisioned here
    monkeypatch.setenv("PATH", str(tmp_path))  # neither java nor mvn on PATH
    with pytest.raises(LocalNeo4jError, match="Java"):
        LocalNeo4j(settings).provision(log=lambda m: None)
