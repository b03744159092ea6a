"""Provision and run a real local Neo4j 5 Community server, without Docker.

Neo4j publishes its Community server as Maven artifacts, so Maven lays out a ``lib/``
like the tarball's (shared/neo4j-local.md). Verified here on 2026-11-29:

* ``org.neo4j:neo4j:5.26.30`` (runtime scope) brings server, Bolt, Cypher and the
  record storage engine: 214 jars, ~137 MB, ~15 s to resolve on a warm network.
* ``org.neo4j.client:neo4j-browser:5.24.0`` is the newest Browser on Maven Central; its
  jar's ``browser/`` folder is served at ``http://127.0.0.1:7474/browser/``.
* ``org.neo4j.server.CommunityEntryPoint --console-mode`` with the launcher's JVM flags
  starts in ~6 s; the log prints ``Bolt enabled on …`` then ``Started.``.
* ``AdminTool dbms set-initial-password`` works without the launcher script.
* The Browser applies rootgraph's style and opens its guide on connect
  (``browser.post_connect_cmd``); the guide is served from a copy of the Browser jar put
  ahead of ``lib/`` on the classpath (``graph/browser.py`` says why).

Layout under ``home`` (``LocalNeo4jSettings``) (outside the work tree):

``neo4j-<version>/lib``            the server, shared by all instances, keyed by version
``instances/<name>/{conf,data,logs,run,plugins}``  one server's state
``instances/<name>/password``      generated password, mode 0600
``instances/<name>/neo4j.pid``     pid of the running JVM
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rootgraph.config import Secret, read_secret_file
from rootgraph.graph.config import LocalNeo4jSettings
from rootgraph.graph.browser import GUIDE_FILE, browser_jar_with_guide, post_connect_cmd

__all__ = [
    "NEO4J_VERSION",
    "BROWSER_VERSION",
    "LocalNeo4j",
    "LocalNeo4jError",
    "LocalStatus",
]

NEO4J_VERSION = "5.26.30"
BROWSER_VERSION = "5.24.0"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.rootgraph</groupId><artifactId>neo4j-local</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.neo4j</groupId><artifactId>neo4j</artifactId>
      <version>{neo4j}</version></dependency>
    <dependency><groupId>org.neo4j.client</groupId><artifactId>neo4j-browser</artifactId>
      <version>{browser}</version></dependency>
  </dependencies>
</project>
"""

_JVM_FLAGS = (
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-XX:+UseG1GC",
    "-XX:+ExitOnOutOfMemoryError",
)


class LocalNeo4jError(RuntimeError):
    """Provisioning or starting the local server failed; the message says what to do."""


@dataclass(frozen=True)
class LocalStatus:
    running: bool
    pid: int | None
    bolt_uri: str
    browser_url: str
    instance_dir: Path


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class LocalNeo4j:
    """One named local Neo4j instance: provision, start, stop, status.

    Starting twice is harmless (the second call sees the running server); stopping
    sends SIGTERM and waits for ``Stopped.``, escalating to SIGKILL only after a
    deadline, so no stray JVM is left behind.
    """

    def __init__(self, settings: LocalNeo4jSettings) -> None:
        self._s = settings
        self.server_home = settings.home / f"neo4j-{NEO4J_VERSION}"
        self.instance_dir = settings.home / "instances" / settings.local_instance
        self.bolt_uri = f"bolt://127.0.0.1:{settings.local_bolt_port}"
        self.browser_url = f"http://127.0.0.1:{settings.local_http_port}/browser/"
        self.guide_url = self.browser_url + GUIDE_FILE

    # -- provisioning -------------------------------------------------------------

    def provisioned(self) -> bool:
        return (self.server_home / ".complete").exists()

    def provision(self, log=print) -> None:  # noqa: ANN001 - a progress callback
        """Resolve the server from Maven Central into the versioned cache (once)."""
        if self.provisioned():
            return
        java, mvn = shutil.which("java"), shutil.which("mvn")
        if not java:
            raise LocalNeo4jError("Java 17+ is needed to run the local Neo4j: `java` is not on PATH")
        if not mvn:
            raise LocalNeo4jError(
                "Maven is needed to fetch Neo4j from Maven Central: `mvn` is not on PATH "
                "(or set NEO4J_URI to use an existing Neo4j)"
            )
        self._s.home.mkdir(parents=True, exist_ok=True)
        log(f"Fetching Neo4j {NEO4J_VERSION} Community and Browser {BROWSER_VERSION} with Maven…")
        with tempfile.TemporaryDirectory(dir=self._s.home, prefix=".provision-") as tmp:
            work = Path(tmp)
            (work / "pom.xml").write_text(
                _POM.format(neo4j=NEO4J_VERSION, browser=BROWSER_VERSION), encoding="utf-8"
            )
            staged = work / "home"
            # -C: fail on checksum mismatch, so what we run is what Central published.
            cmd = [
                mvn, "-B", "-q", "-C", "-f", str(work / "pom.xml"),
                "dependency:copy-dependencies", "-DincludeScope=runtime",
                f"-DoutputDirectory={staged / 'lib'}",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
                raise LocalNeo4jError(f"Maven could not resolve Neo4j {NEO4J_VERSION}:\n{tail}")
            for jar in (f"neo4j-{NEO4J_VERSION}.jar", f"neo4j-server-{NEO4J_VERSION}.jar",
                        f"neo4j-bolt-{NEO4J_VERSION}.jar", f"neo4j-browser-{BROWSER_VERSION}.jar"):
                if not (staged / "lib" / jar).exists():
                    raise LocalNeo4jError(f"provisioned server is missing {jar}")
            (staged / ".complete").write_text(f"{NEO4J_VERSION} {BROWSER_VERSION}\n")
            if self.server_home.exists():
                shutil.rmtree(self.server_home)
            staged.rename(self.server_home)
        log(f"Neo4j cached in {self.server_home}")

    # -- instance -----------------------------------------------------------------

    @property
    def _pid_file(self) -> Path:
        return self.instance_dir / "neo4j.pid"

    @property
    def password_file(self) -> Path:
        return self.instance_dir / "password"

    def password(self) -> Secret:
        return Secret(read_secret_file(self.password_file))

    def _running_pid(self) -> int | None:
        try:
            pid = int(self._pid_file.read_text())
        except (OSError, ValueError):
            return None
        if _pid_alive(pid) and "CommunityEntryPoint" in _cmdline(pid):
            return pid
        return None

    def status(self) -> LocalStatus:
        pid = self._running_pid()
        return LocalStatus(pid is not None, pid, self.bolt_uri, self.browser_url, self.instance_dir)

    def _write_conf(self) -> Path:
        conf = self.instance_dir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        d = self.instance_dir
        lines = {
            "server.default_listen_address": "127.0.0.1",
            "server.default_advertised_address": "127.0.0.1",
            "server.bolt.listen_address": f"127.0.0.1:{self._s.local_bolt_port}",
            "server.http.listen_address": f"127.0.0.1:{self._s.local_http_port}",
            "server.https.enabled": "false",
            "server.memory.pagecache.size": self._s.local_pagecache,
            "server.directories.data": str(d / "data"),
            "server.directories.logs": str(d / "logs"),
            "server.directories.run": str(d / "run"),
            "server.directories.plugins": str(d / "plugins"),
            "server.directories.import": str(d / "import"),
            "dbms.usage_report.enabled": "false",
            "client.allow_telemetry": "false",  # no usage banner or pings from the Browser
            # On every connect: apply browser.grass, then open the ready-queries guide.
            "browser.post_connect_cmd": post_connect_cmd(self.guide_url),
            # Neo4j's default list plus the host the guide is served from.
            "browser.remote_content_hostname_whitelist": "guides.neo4j.com,localhost,127.0.0.1",
            "db.tx_log.rotation.retention_policy": "256M size",
        }
        (conf / "neo4j.conf").write_text(
            "".join(f"{k}={v}\n" for k, v in lines.items()), encoding="utf-8"
        )
        return conf

    def _ensure_password(self, conf: Path) -> None:
        if self.password_file.exists():
            return
        if (self.instance_dir / "data" / "dbms").exists():
            raise LocalNeo4jError(
                f"{self.instance_dir} has data but no password file; remove the directory "
                "to start afresh"
            )
        # AdminTool's option parser reads a leading '-' as an option (token_urlsafe draws
        # one about 1 time in 64), so the password starts with a letter.
        pw = "p" + secrets.token_urlsafe(24)
        env = dict(os.environ, NEO4J_HOME=str(self.server_home), NEO4J_CONF=str(conf))
        proc = subprocess.run(
            ["java", "-cp", f"{self.server_home / 'lib'}/*", "org.neo4j.cli.AdminTool",
             "dbms", "set-initial-password", pw],
            env=env, capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            # The message could echo the command line; do not include the password.
            raise LocalNeo4jError("setting the initial Neo4j password failed:\n"
                                  + proc.stderr.replace(pw, "****")[-2000:])
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(pw + "\n")

    def start(self, log=print) -> LocalStatus:  # noqa: ANN001
        """Start the server if it is not running and wait until Bolt answers."""
        current = self.status()
        if current.running:
            return current
        self.provision(log)
        for name, port in (("Bolt", self._s.local_bolt_port), ("HTTP", self._s.local_http_port)):
            if _port_in_use(port):
                raise LocalNeo4jError(
                    f"port {port} ({name}) on 127.0.0.1 is taken by another process; stop it "
                    f"or choose another port (ROOTGRAPH_NEO4J_{name.upper()}_PORT)"
                )
        for sub in ("data", "logs", "run", "plugins", "import"):
            (self.instance_dir / sub).mkdir(parents=True, exist_ok=True)
        conf = self._write_conf()
        self._ensure_password(conf)
        lib = self.server_home / "lib"
        # Neo4j serves /browser/ from the first browser/ folder on the classpath: this copy
        # (the Browser plus the guide) comes before lib/'s original.
        browser_jar = browser_jar_with_guide(
            lib / f"neo4j-browser-{BROWSER_VERSION}.jar", self.instance_dir / "browser"
        )
        cmd = [
            "java", f"-Xms{self._s.local_heap}", f"-Xmx{self._s.local_heap}", *_JVM_FLAGS,
            "-cp", f"{self.instance_dir / 'plugins'}/*:{conf}/*:{browser_jar}:{lib}/*",
            "org.neo4j.server.CommunityEntryPoint",
            f"--home-dir={self.server_home}", f"--config-dir={conf}", "--console-mode",
        ]
        console = self.instance_dir / "logs" / "console.log"
        with open(console, "wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.instance_dir,
            )
        self._pid_file.write_text(str(proc.pid))
        log(f"Starting Neo4j {NEO4J_VERSION} (pid {proc.pid}, log {console})…")
        self._wait_ready(proc, console)
        return self.status()

    def _wait_ready(self, proc: subprocess.Popen, console: Path) -> None:
        deadline = time.monotonic() + self._s.local_start_timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = console.read_text(errors="replace").splitlines()[-20:]
                raise LocalNeo4jError("Neo4j exited during start-up:\n" + "\n".join(tail))
            text = console.read_text(errors="replace")
            if "\nStarted." in text or " INFO  Started." in text:
                return
            time.sleep(0.2)
        self.stop()
        raise LocalNeo4jError(
            f"Neo4j did not start within {self._s.local_start_timeout_s:.0f}s; see {console}"
        )

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop the server; return whether one was running."""
        pid = self._running_pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        os.killpg(pid, signal.SIGTERM) if _is_group_leader(pid) else os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _pid_alive(pid):
            _reap(pid)
            time.sleep(0.1)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                _reap(pid)
                time.sleep(0.05)
        self._pid_file.unlink(missing_ok=True)
        return True


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _reap(pid: int) -> None:
    """Collect the exit status if the server is our own child (avoids a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
