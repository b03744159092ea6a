"""Shared plumbing of the accuracy and latency benchmarks (issue 6, parts 3 and 4).

* :func:`case_files` simulates a :class:`ScenarioSpec` once into
  ``bench/out/cases/<name>/{traces.jsonl,labels.json}`` (Collector file-exporter OTLP
  JSON lines, produced by the real OpenTelemetry SDK) and reuses the files while the
  spec is unchanged (``spec.txt`` holds its repr);
* :class:`Service` runs the full rootgraph service in-process (``server.app.App``) on
  loopback ports over a benchmark-owned local Neo4j instance, and replays OTLP JSON lines
  into its OTLP/HTTP endpoint exactly as the OTLP/HTTP exporter sends them
  (``POST /v1/traces``, ``application/x-protobuf``, retry on 429/502/503/504);
* :func:`peer_data` turns the same OTLP JSON lines into what the trace-based peers read
  (one row per span, RCAEval's ``traces.csv`` columns) plus the call graph and placement
  seen in those spans (see ``bench/peers.py``); :func:`write_peer_files` writes them, for
  this and for the real-data adapter ``bench/real/peer_input.py``.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from rootgraph.config import load_settings
from rootgraph.simulate import Labels, ScenarioSpec, parse_otlp_json_line, run_to_files

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CASES = OUT / "cases"

#: The benchmarks' own Neo4j instance (never the default or the test one).
INSTANCE = os.environ.get("ROOTGRAPH_BENCH_INSTANCE", "accuracy")
BOLT_PORT = int(os.environ.get("ROOTGRAPH_BENCH_BOLT_PORT", "47787"))
HTTP_PORT = int(os.environ.get("ROOTGRAPH_BENCH_HTTP_PORT", "47774"))


def log(*args: object) -> None:
    print(*args, flush=True)


# -- case files --------------------------------------------------------------------------


def case_files(spec: ScenarioSpec, root: Path = CASES, regenerate: bool = False) -> tuple[Path, Labels]:
    """``(dir, labels)`` of ``spec``'s simulated files, simulating only when needed."""
    d = root / spec.name
    fingerprint = repr(spec)

    def fresh() -> bool:
        return ((d / "labels.json").exists() and (d / "traces.jsonl").exists()
                and (d / "spec.txt").exists() and (d / "spec.txt").read_text() == fingerprint)

    d.mkdir(parents=True, exist_ok=True)
    lock = d / ".simulating"
    while True:  # another benchmark process may be simulating this case right now
        if not regenerate and fresh():
            return d, Labels.load(d / "labels.json")
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            if time.time() - lock.stat().st_mtime > 3600:
                lock.unlink(missing_ok=True)  # left behind by a killed run
            time.sleep(5)
    t = time.perf_counter()
    try:
        os.close(fd)
        (d / "spec.txt").unlink(missing_ok=True)
        labels = run_to_files(spec, d)
        (d / "spec.txt").write_text(fingerprint)
    finally:
        lock.unlink(missing_ok=True)
    for stale in ("peer",):
        p = d / stale
        if p.exists():
            for f in p.iterdir():
                f.unlink()
    log(f"  simulated {spec.name}: {labels.spans} spans in {time.perf_counter() - t:.1f} s")
    return d, labels


# -- the service -------------------------------------------------------------------------


class Service:
    """rootgraph's ``App`` in-process on loopback ports, over the benchmark Neo4j."""

    def __init__(self, *, instance: str = INSTANCE, bolt_port: int = BOLT_PORT, http_port: int = HTTP_PORT,
                 heap: str | None = None, pagecache: str | None = None, **settings: object) -> None:
        from rootgraph.graph.connect import open_driver
        from rootgraph.server.app import App

        extra: dict[str, object] = dict(settings)  # e.g. the detector's (bench/detection.py)
        if heap:
            extra["local_heap"] = heap
        if pagecache:
            extra["local_pagecache"] = pagecache
        # Simulated data starts at a fixed epoch (2026-01-01): retention must not prune it
        # while the benchmark runs (the prune thread deletes buckets older than this).
        self.settings = load_settings(
            local_instance=instance, local_bolt_port=bolt_port, local_http_port=http_port,
            api_address="127.0.0.1:0", otlp_grpc_address="127.0.0.1:0", otlp_http_address="127.0.0.1:0",
            retention_hours=24 * 365 * 50, **extra)
        self.driver = open_driver(self.settings, log=lambda *a, **k: None)
        self.app = App(self.settings, self.driver).start()
        self.api = f"127.0.0.1:{self.app.ports['api']}"
        self.otlp_http = f"http://127.0.0.1:{self.app.ports['otlp_http']}/v1/traces"

    def reset(self) -> None:
        """Forget the previous case: waiting span halves, then every node in Neo4j."""
        self.app.ingestor.flush_all()
        self.app.admin.clear()

    def replay(self, traces: Path) -> tuple[int, float]:
        """POST every line of ``traces`` as protobuf; returns (requests, seconds)."""
        t = time.perf_counter()
        n = 0
        with open(traces, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    post_otlp(self.otlp_http, parse_otlp_json_line(line).SerializeToString())
                    n += 1
        self.app.ingestor.flush_all()  # the halves still waiting for their partner land now
        return n, time.perf_counter() - t

    def close(self) -> None:
        self.app.stop(grace_s=2.0)
        self.driver.close()


def post_otlp(url: str, body: bytes, attempts: int = 6) -> None:
    """One OTLP/HTTP export with the exporter's semantics (retryable codes, backoff)."""
    delay = 0.5
    for i in range(attempts):
        req = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                resp.read()
                return
        except urllib.error.HTTPError as exc:
            if exc.code not in (429, 502, 503, 504) or i == attempts - 1:
                raise RuntimeError(f"OTLP/HTTP export failed: HTTP {exc.code} {exc.read()[:200]!r}") from None
            time.sleep(float(exc.headers.get("Retry-After") or delay))
            delay *= 2


def stop_neo4j(instance: str = INSTANCE, bolt_port: int = BOLT_PORT, http_port: int = HTTP_PORT) -> None:
    from rootgraph.graph.local import LocalNeo4j

    LocalNeo4j(load_settings(local_instance=instance, local_bolt_port=bolt_port,
                             local_http_port=http_port)).stop()


# -- the same data for the peers ----------------------------------------------------------

PEER_COLUMNS = ("traceID", "spanID", "parentSpanID", "serviceName", "methodName", "operationName",
                "startTime", "duration", "error", "kind")


def _attrs(items: list[dict]) -> dict[str, str]:
    out = {}
    for kv in items or ():
        v = kv.get("value", {})
        for key in ("stringValue", "intValue", "boolValue", "doubleValue"):
            if key in v:
                out[kv["key"]] = str(v[key])
                break
    return out


def peer_data(case_dir: Path, labels: Labels) -> Path:
    """Write ``peer/spans.csv.gz`` and ``peer/meta.json`` of a simulated case for ``bench/peers.py``.

    Reads the case's OTLP JSON lines (``traces.jsonl``) into :func:`write_peer_files`
    rows; the host/node placement comes from the resource attributes.
    """
    out = case_dir / "peer"
    if (out / "meta.json").exists() and (out / "spans.csv.gz").exists():
        return out
    rows: list[list] = []
    runs_on: dict[str, set[str]] = defaultdict(set)
    with open(case_dir / "traces.jsonl", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            for rs in json.loads(line).get("resourceSpans", ()):
                ra = _attrs(rs.get("resource", {}).get("attributes"))
                svc = ra.get("service.name", "unknown")
                if ra.get("service.namespace"):
                    svc = f"{ra['service.namespace']}/{svc}"
                if ra.get("host.name"):
                    runs_on[svc].add(f"host:{ra['host.name']}")
                if ra.get("k8s.node.name"):
                    runs_on[svc].add(f"node:{ra['k8s.node.name']}")
                for ss in rs.get("scopeSpans", ()):
                    for sp in ss.get("spans", ()):
                        kind = int(sp.get("kind", 0))
                        start = int(sp["startTimeUnixNano"])
                        dur = int(sp["endTimeUnixNano"]) - start
                        err = int(sp.get("status", {}).get("code", 0) == 2)
                        rows.append([sp["traceId"], sp["spanId"], sp.get("parentSpanId", ""), svc, sp.get("name", ""),
                                     sp.get("name", ""), start // 1000, max(dur // 1000, 1), err, kind,
                                     _attrs(sp.get("attributes")) if kind in (3, 4) else None])
    return write_peer_files(out, rows, runs_on, case=labels.scenario, inject_us=int(labels.incident[0] * 1e6),
                            baseline_us=(int(labels.baseline[0] * 1e6), int(labels.baseline[1] * 1e6)),
                            incident_us=(int(labels.incident[0] * 1e6), int(labels.incident[1] * 1e6)))


def write_peer_files(out: Path, rows: list[list], runs_on: dict[str, set[str]], *, case: str, inject_us: int,
                     baseline_us: tuple[int, int], incident_us: tuple[int, int]) -> Path:
    """Write ``out/spans.csv.gz`` and ``out/meta.json``, what ``bench/peers.py`` reads.

    ``rows``: one per span, :data:`PEER_COLUMNS` (times in microseconds) plus a last item,
    the span's attributes (a dict, or None; only CLIENT/PRODUCER spans' are used). Every
    data source (the simulator's OTLP JSON, ``bench/real/peer_input.py``'s Nezha rows)
    goes through here, so every peer sees the same layout.

    The entity naming is rootgraph's so every method answers in the same ids: a service is
    ``namespace/name``; a CLIENT/PRODUCER span that no SERVER/CONSUMER span continues (a
    call to an uninstrumented database, queue or external API) gets one extra child row
    whose ``serviceName`` is the virtual node rootgraph would create (``db:…``,
    ``queue:…``, ``ext:…``; ``ingest.pairing.virtual_peer``), with the client span's
    timing and status -- what a tracing UI shows as an "uninstrumented peer" (database and
    messaging spans always get it: a queue is a hop even when a consumer continues the
    trace). Without it
    no trace-based method could ever name a database. The call graph (caller → callee,
    from parent/child spans across services) and the host/node placement (``runs_on``)
    go into ``meta.json``.
    """
    from rootgraph.ingest.pairing import virtual_peer

    out.mkdir(parents=True, exist_ok=True)
    # client span ids that a server/consumer span continues
    continued = {r[2] for r in rows if r[9] in (2, 5) and r[2]}
    by_id = {r[1]: r for r in rows}
    edges: dict[tuple[str, str], int] = defaultdict(int)
    extra = []
    for r in rows:
        attrs = r.pop()
        attrs = attrs or {}
        # Databases never have server spans and a queue is a real hop (producer → queue →
        # consumer): those always get their virtual row, so the operation exists in the
        # baseline too; other client calls only when nothing continues them.
        always = bool(attrs.get("db.system") or attrs.get("db.system.name") or attrs.get("messaging.system"))
        if r[9] in (3, 4) and (always or r[1] not in continued):
            peer = virtual_peer(attrs)
            if peer is not None:
                extra.append([r[0], r[1] + "v", r[1], peer[0], r[4], r[5], r[6], r[7], r[8], 2])
                edges[(r[3], peer[0])] += 1
        p = by_id.get(r[2])
        if p is not None and p[3] != r[3]:
            edges[(p[3], r[3])] += 1
    rows.extend(extra)
    rows.sort(key=lambda r: (r[0], r[6]))  # RCAEval data comes grouped by trace
    with gzip.open(out / "spans.csv.gz", "wt", newline="", compresslevel=3) as g:
        w = csv.writer(g)
        w.writerow(PEER_COLUMNS)
        w.writerows(rows)
    meta = {
        "case": case,
        "inject_time_us": inject_us,
        "baseline_us": list(baseline_us),
        "incident_us": list(incident_us),
        "edges": sorted([a, b, n] for (a, b), n in edges.items()),
        "runs_on": {s: sorted(h) for s, h in sorted(runs_on.items())},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return out


def lead_in_specs(names: list[str], lead_min: int, incident_min: int) -> list[ScenarioSpec]:
    """Suite cases by name (or ``["all"]``) with a ``lead_min``-minute healthy lead-in and
    ``incident_min`` minutes of fault: the detection and remediation benchmarks' cases
    (the detector needs 31 buckets of history before it judges one)."""
    from rootgraph.simulate import suite

    specs = {s.name: s for s in suite()}
    chosen = list(specs) if names == ["all"] else names
    return [replace(specs[n], name=f"{n}-lead{lead_min}", baseline_s=60.0 * lead_min,
                    incident_s=60.0 * incident_min) for n in chosen]


def record_deployments(rg, spec: ScenarioSpec, labels: Labels) -> None:  # noqa: ANN001 - a RootGraphClient
    """The case's deployments through RecordDeployment, as a CI pipeline reports them
    (idempotent ids, so a rerun records nothing twice)."""
    for d in labels.deployments:
        rg.record_deployment(d.service, d.version, id=f"ci:{spec.name}:{d.service}:{d.version}:{d.at_s:.0f}",
                             at=d.at_s, previous_version=d.previous, source="api", attributes={"pipeline": "bench"})


def rank_case(rg, labels: Labels, out: dict):  # noqa: ANN001,ANN201 - a RootGraphClient; its answer
    """RankCauses over the case's incident window, timed at the client; the answer's
    ``rank_ms``, ranked ``ranks`` and their ``probs`` go into ``out``. Returns the answer."""
    t = time.perf_counter()
    ans = rg.rank_causes(labels.incident[0], labels.incident[1], top_k=5)
    out["rank_ms"] = round((time.perf_counter() - t) * 1000, 1)
    out["ranks"] = [c.entity for c in ans.causes]
    out["probs"] = [round(c.probability, 4) for c in ans.causes]
    return ans


def fresh_spec(spec: ScenarioSpec, **changes: object) -> ScenarioSpec:
    return replace(spec, **changes)
