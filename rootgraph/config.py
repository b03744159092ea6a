"""Typed configuration with every default in one place.

Resolution order for each field, as in opentelemetry-python's ``BatchSpanProcessor``:
explicit argument → environment variable → default. ``Settings.validate`` names the
field in every message so a typo in an environment variable is obvious.

Secrets: the Neo4j password comes from ``NEO4J_PASSWORD``, or from the file named by
``NEO4J_PASSWORD_FILE`` (which must not be readable by group or others), or — for the
local server the project provisions — from that server's generated password file. It
is held in a ``Secret`` whose ``repr`` never shows the value, so it cannot leak into a
log line or an exception message by accident.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Mapping

__all__ = ["ConfigError", "MAX_INGEST_WORKERS", "Secret", "Settings", "load_settings", "read_secret_file"]


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field."""


@dataclass(frozen=True)
class Secret:
    """A string that does not print itself."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret(****)"

    __str__ = __repr__


def read_secret_file(path: Path) -> str:
    """Read a secret from ``path``, refusing files that group or others can read."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: secret file must be readable by its owner only (chmod 600), "
            f"found mode {stat.S_IMODE(mode):o}"
        )
    return path.read_text(encoding="utf-8").strip()


#: Upper bound of ``ingest_workers``: each worker is a process with a pipe to the front.
MAX_INGEST_WORKERS = 256
#: Most workers ``ingest_workers = 0`` (auto) starts. Why a cap: the front (receivers,
#: the by-trace split, the one Neo4j writer) is one GIL-bound process at ~6 µs of CPU a
#: span against a worker's ~10 µs (bench/scaleout.py), so it saturates at about two
#: workers' load; workers past a few add ~90 MiB each, not throughput. Beyond that, run
#: ingest replicas behind the Collector (README "Scale-out").
AUTO_MAX_INGEST_WORKERS = 4


def usable_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota.

    Why not ``os.cpu_count()``: that counts the machine's CPUs, so a container limited to
    2 CPUs on a 64-core node would start 64 workers to share 2 CPUs' worth of time. The
    quota (``/sys/fs/cgroup/cpu.max``: ``"<quota> <period>"`` or ``"max <period>"``) is
    rounded up, as Go's automaxprocs and the JVM do.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):  # no cgroup v2 CPU controller here
        pass
    return max(1, cpus)


def _default_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rootgraph"


@dataclass(frozen=True)
class Settings:
    """All of rootgraph's settings. Construct with :func:`load_settings`."""

    #: Where the provisioned Neo4j, its instances and caches live (outside the tree).
    home: Path = field(default_factory=_default_home)
    #: An existing Neo4j to use instead of the local one (``NEO4J_URI``).
    neo4j_uri: str = ""
    neo4j_user: str = "neo4j"
    neo4j_password: Secret | None = None
    neo4j_database: str = "neo4j"
    #: Local provisioned Neo4j (used when ``neo4j_uri`` is empty).
    local_instance: str = "default"
    local_bolt_port: int = 7687
    local_http_port: int = 7474
    local_heap: str = "1g"
    local_pagecache: str = "512m"
    local_start_timeout_s: float = 180.0
    #: Listen addresses of ``rootgraph serve``; loopback unless told otherwise.
    api_address: str = "127.0.0.1:50051"
    otlp_grpc_address: str = "127.0.0.1:4317"
    otlp_http_address: str = "127.0.0.1:4318"
    #: Statistics bucket width and how long buckets are kept.
    bucket_seconds: int = 60
    retention_hours: int = 24 * 7
    #: OTLP request size limit after decompression.
    max_request_bytes: int = 64 * 1024 * 1024
    #: Most OTLP requests written in one Neo4j transaction (group commit; 1 = off).
    ingest_group_max: int = 32
    #: Ingest worker processes of ``rootgraph serve`` (server/workers.py): spans are
    #: sharded by trace id across them so a trace's halves meet in one worker; 1 = the
    #: single-process path; 0 (the default) = one per usable CPU (:func:`usable_cpus`,
    #: which honours a container's CPU limit) less the serving process's own, at most
    #: ``AUTO_MAX_INGEST_WORKERS`` (:attr:`Settings.ingest_worker_count`). Measured
    #: (BENCHMARKS.md "Scale-out"): one process is GIL-bound at ~12 µs of CPU a span (one
    #: core: ~80k spans/s at best); sharded, the serving process costs ~6 µs and the
    #: workers ~10 µs a span, so it needs a core of its own and the workers the rest. On
    #: the 2-core machine (Neo4j and the senders on it too) 2 workers were -3 %, -9 %
    #: and -11 % spans/s against one process in the like-for-like phases of three runs,
    #: at +30 % of rootgraph's CPU a span: the default there is the single process.
    ingest_workers: int = 0
    #: How long an unpaired span half waits for its partner (seconds; ingest/config.py):
    #: longer keeps more halves in memory, shorter turns late halves into fallback edges.
    #: The same default as ``IngestConfig.pending_ttl_s`` (a test keeps them equal; not
    #: imported, so that client commands do not load the ingest stage).
    pairing_wait_seconds: float = 10.0
    #: Which Collector connector's metrics give per-service statistics when both the
    #: servicegraph and spanmetrics connectors send (ingest/connectors.py): taking both
    #: would count every request twice. Same default as ``IngestConfig``.
    connector_service_stats: str = "servicegraph"
    #: Bucket times of statistics kept in memory for reads (graph/window_cache.py);
    #: 150 covers a 30-minute baseline + incident and BlastRadius's hour. 0 = off.
    window_cache_buckets: int = 150
    #: How often the API asks Neo4j which model version is current (server/registry.py):
    #: a ``rootgraph model promote``/``rollback`` from another process answers within
    #: this many seconds, and a RankCauses between checks costs no Neo4j round trip.
    #: 0 = ask on every call.
    model_check_seconds: float = 5.0
    #: Continuous detection (issue 15; server/detector.py): how often the API process
    #: looks for newly complete buckets (seconds; 0 = no detector in this process).
    detector_interval_seconds: float = 1.0
    #: How far behind the newest bucket time seen in the data a bucket must end before
    #: it is judged (seconds): spans of a bucket may arrive after the next one began.
    detector_lateness_seconds: int = 0
    #: Complete buckets judged against the baseline each step (the incident window).
    detector_incident_buckets: int = 2
    #: Buckets before them that form the learned baseline.
    detector_baseline_buckets: int = 30
    #: Consecutive judged buckets a baseline symptom must show before it opens an
    #: incident (SLO burns and firing alerts count at once).
    detector_confirm_buckets: int = 2
    #: Judged buckets without any of its symptoms after which an incident is resolved.
    detector_resolve_buckets: int = 5
    #: False incidents a day the detector's bucket-level tests allow, spread over every
    #: service it judges in every bucket (Bonferroni: alpha = this / (services x buckets
    #: a day)). 1 is issue 15's target for a healthy day.
    detector_false_alarms_per_day: float = 1.0
    #: How long the detector lease lasts unrenewed (seconds): a replica taking over
    #: waits at most this long after its holder died.
    detector_lease_seconds: float = 10.0
    #: SLO file (JSON, format in server/detector.py ``load_slos``); empty = none.
    slo_file: str = ""
    #: Optional bearer token required on mutating RPCs (``ROOTGRAPH_TOKEN``).
    api_token: Secret | None = None

    def validate(self) -> "Settings":
        """Raise :class:`ConfigError` naming the first invalid field; return self."""
        for name in ("local_bolt_port", "local_http_port"):
            port = getattr(self, name)
            if not 0 < port < 65536:
                raise ConfigError(f"{name}: port must be in 1..65535, got {port}")
        if self.local_bolt_port == self.local_http_port:
            raise ConfigError("local_http_port: must differ from local_bolt_port")
        if self.bucket_seconds < 1 or 3600 % self.bucket_seconds:
            raise ConfigError(
                f"bucket_seconds: must divide an hour evenly, got {self.bucket_seconds}"
            )
        if self.retention_hours < 1:
            raise ConfigError(f"retention_hours: must be >= 1, got {self.retention_hours}")
        if self.max_request_bytes < 1024:
            raise ConfigError(f"max_request_bytes: must be >= 1024, got {self.max_request_bytes}")
        if not 0 <= self.ingest_workers <= MAX_INGEST_WORKERS:
            raise ConfigError(f"ingest_workers: must be in 0..{MAX_INGEST_WORKERS} (0: one per usable CPU), "
                              f"got {self.ingest_workers}")
        if self.ingest_group_max < 1:
            raise ConfigError(f"ingest_group_max: must be >= 1, got {self.ingest_group_max}")
        if not 0 < self.pairing_wait_seconds <= 3600:  # also refuses nan
            raise ConfigError(f"pairing_wait_seconds: must be in (0, 3600], got {self.pairing_wait_seconds}")
        if self.connector_service_stats not in ("servicegraph", "spanmetrics"):
            raise ConfigError("connector_service_stats: must be 'servicegraph' or 'spanmetrics', "
                              f"got {self.connector_service_stats!r}")
        if self.window_cache_buckets < 0:
            raise ConfigError(f"window_cache_buckets: must be >= 0, got {self.window_cache_buckets}")
        if not 0 <= self.model_check_seconds <= 3600:
            raise ConfigError(f"model_check_seconds: must be in 0..3600, got {self.model_check_seconds}")
        if not 0 <= self.detector_interval_seconds <= 3600:
            raise ConfigError(f"detector_interval_seconds: must be in 0..3600, got {self.detector_interval_seconds}")
        if not 0 <= self.detector_lateness_seconds <= 3600:
            raise ConfigError(f"detector_lateness_seconds: must be in 0..3600, got {self.detector_lateness_seconds}")
        if not 1 <= self.detector_incident_buckets <= 60:
            raise ConfigError(f"detector_incident_buckets: must be in 1..60, got {self.detector_incident_buckets}")
        if not 3 <= self.detector_baseline_buckets <= 1440:
            raise ConfigError(f"detector_baseline_buckets: must be in 3..1440, got {self.detector_baseline_buckets}")
        if not 1 <= self.detector_confirm_buckets <= 60:
            raise ConfigError(f"detector_confirm_buckets: must be in 1..60, got {self.detector_confirm_buckets}")
        if not 1 <= self.detector_resolve_buckets <= 1440:
            raise ConfigError(f"detector_resolve_buckets: must be in 1..1440, got {self.detector_resolve_buckets}")
        if not 0 < self.detector_false_alarms_per_day <= 1000:
            raise ConfigError("detector_false_alarms_per_day: must be in (0, 1000], got "
                              f"{self.detector_false_alarms_per_day}")
        if not 1 <= self.detector_lease_seconds <= 3600:
            raise ConfigError(f"detector_lease_seconds: must be in 1..3600, got {self.detector_lease_seconds}")
        if self.slo_file and not Path(self.slo_file).is_file():
            raise ConfigError(f"slo_file: no such file {self.slo_file!r}")
        if self.local_start_timeout_s <= 0:
            raise ConfigError("local_start_timeout_s: must be > 0")
        for name in ("api_address", "otlp_grpc_address", "otlp_http_address"):
            addr = getattr(self, name)
            host, _, port = addr.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"{name}: expected HOST:PORT, got {addr!r}")
        if self.neo4j_uri and not self.neo4j_uri.split("://", 1)[0] in {
            "bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc",
        }:
            raise ConfigError(f"neo4j_uri: unsupported scheme in {self.neo4j_uri!r}")
        if not self.local_instance.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"local_instance: letters, digits, - and _ only, got {self.local_instance!r}")
        return self

    @property
    def uses_local_neo4j(self) -> bool:
        return not self.neo4j_uri

    @property
    def ingest_worker_count(self) -> int:
        """The ingest processes ``serve`` runs: ``ingest_workers``, or for 0 (auto) one
        per usable CPU but the serving process's own, up to ``AUTO_MAX_INGEST_WORKERS``;
        1 is the single-process path. So 2 CPUs run one process (front + 1 worker would
        be the single process plus pipes) and 4 CPUs run 3 workers."""
        return self.ingest_workers or max(1, min(usable_cpus() - 1, AUTO_MAX_INGEST_WORKERS))


#: Environment variable for each field that can be set from the environment.
_ENV: dict[str, str] = {
    "home": "ROOTGRAPH_HOME",
    "neo4j_uri": "NEO4J_URI",
    "neo4j_user": "NEO4J_USER",
    "neo4j_database": "NEO4J_DATABASE",
    "local_instance": "ROOTGRAPH_NEO4J_INSTANCE",
    "local_bolt_port": "ROOTGRAPH_NEO4J_BOLT_PORT",
    "local_http_port": "ROOTGRAPH_NEO4J_HTTP_PORT",
    "local_heap": "ROOTGRAPH_NEO4J_HEAP",
    "local_pagecache": "ROOTGRAPH_NEO4J_PAGECACHE",
    "api_address": "ROOTGRAPH_API_ADDRESS",
    "otlp_grpc_address": "ROOTGRAPH_OTLP_GRPC_ADDRESS",
    "otlp_http_address": "ROOTGRAPH_OTLP_HTTP_ADDRESS",
    "bucket_seconds": "ROOTGRAPH_BUCKET_SECONDS",
    "retention_hours": "ROOTGRAPH_RETENTION_HOURS",
    "max_request_bytes": "ROOTGRAPH_MAX_REQUEST_BYTES",
    "ingest_group_max": "ROOTGRAPH_INGEST_GROUP_MAX",
    "ingest_workers": "ROOTGRAPH_INGEST_WORKERS",
    "pairing_wait_seconds": "ROOTGRAPH_PAIRING_WAIT_SECONDS",
    "connector_service_stats": "ROOTGRAPH_CONNECTOR_SERVICE_STATS",
    "window_cache_buckets": "ROOTGRAPH_WINDOW_CACHE_BUCKETS",
    "model_check_seconds": "ROOTGRAPH_MODEL_CHECK_SECONDS",
    "detector_interval_seconds": "ROOTGRAPH_DETECTOR_INTERVAL_SECONDS",
    "detector_lateness_seconds": "ROOTGRAPH_DETECTOR_LATENESS_SECONDS",
    "detector_incident_buckets": "ROOTGRAPH_DETECTOR_INCIDENT_BUCKETS",
    "detector_baseline_buckets": "ROOTGRAPH_DETECTOR_BASELINE_BUCKETS",
    "detector_confirm_buckets": "ROOTGRAPH_DETECTOR_CONFIRM_BUCKETS",
    "detector_resolve_buckets": "ROOTGRAPH_DETECTOR_RESOLVE_BUCKETS",
    "detector_false_alarms_per_day": "ROOTGRAPH_DETECTOR_FALSE_ALARMS_PER_DAY",
    "detector_lease_seconds": "ROOTGRAPH_DETECTOR_LEASE_SECONDS",
    "slo_file": "ROOTGRAPH_SLO_FILE",
}


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build validated settings: ``overrides`` → ``env`` (default ``os.environ``) → defaults."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    types = {f.name: f.type for f in fields(Settings)}
    for name, var in _ENV.items():
        raw = env.get(var)
        if raw is None or raw == "":
            continue
        kind = types[name]
        try:
            if kind in ("int", int):
                values[name] = int(raw)
            elif kind in ("float", float):
                values[name] = float(raw)
            elif kind in ("Path", Path):
                values[name] = Path(raw).expanduser()
            else:
                values[name] = raw
        except ValueError:
            raise ConfigError(f"{name}: {var}={raw!r} is not a valid {kind}") from None
    if env.get("NEO4J_PASSWORD"):
        values["neo4j_password"] = Secret(env["NEO4J_PASSWORD"])
    elif env.get("NEO4J_PASSWORD_FILE"):
        values["neo4j_password"] = Secret(read_secret_file(Path(env["NEO4J_PASSWORD_FILE"])))
    if env.get("ROOTGRAPH_TOKEN"):
        values["api_token"] = Secret(env["ROOTGRAPH_TOKEN"])
    elif env.get("ROOTGRAPH_TOKEN_FILE"):
        values["api_token"] = Secret(read_secret_file(Path(env["ROOTGRAPH_TOKEN_FILE"])))
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - set(types)
    if unknown:
        raise ConfigError(f"{sorted(unknown)[0]}: unknown setting")
    return replace(Settings(), **values).validate()  # type: ignore[arg-type]
