"""Accuracy on pre-aggregated input (issue 16, part 3): the suite through connector metrics.

    ROOTGRAPH_BENCH_INSTANCE=... ROOTGRAPH_BENCH_BOLT_PORT=... ROOTGRAPH_BENCH_HTTP_PORT=... \\
        .venv/bin/python bench/servicegraph.py [--cases sockshop,boutique] [--spanmetrics] \\
        [--cases-dir DIR] [--tag T]

Per case of ``rootgraph.simulate.suite()`` (the same simulated spans as
``bench/accuracy.py``, read from ``bench/out/cases/<case>/`` -- or from ``--cases-dir``
when its copy is current, never written there):

1. the spans are turned into the metrics the Collector's servicegraph connector (and with
   ``--spanmetrics`` also the spanmetrics connector) would export, interval by interval:
   ``bench/connector_model.py``, a MODEL of the connectors written from their source (no
   Collector binary here; its docstring lists what it reproduces and what it idealises);
2. rootgraph's ``App`` runs in-process over the benchmark Neo4j (graph cleared per case)
   and every export is POSTed to its real OTLP/HTTP metrics receiver (``/v1/metrics``,
   protobuf), in time order; no span is sent. Any rejected data point fails the run;
3. deployments are recorded through ``RecordDeployment`` as in ``bench/accuracy.py``
   (CI/CD reports them whatever the telemetry input);
4. ``RankCauses(incident start, incident end, top_k=5)``; AC@1/AC@3/Avg@5 as in
   ``bench/accuracy.py`` (RCAEval's definition, ``host:``/``node:`` the same machine).

With ``--spanmetrics`` the service statistics come from the spanmetrics connector
(``ROOTGRAPH_CONNECTOR_SERVICE_STATS=spanmetrics``) and the edges from servicegraph.
Results: ``bench/out/servicegraph/<mode>[-tag].json`` and ``report-<mode>.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import score_ranks  # noqa: E402
from common import CASES, OUT, Service, case_files, log, rank_case, record_deployments, stop_neo4j  # noqa: E402
from connector_model import connector_requests, read_spans  # noqa: E402

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse  # noqa: E402

from rootgraph.client import RootGraphClient  # noqa: E402
from rootgraph.simulate import Labels, ScenarioSpec, suite  # noqa: E402

RESULTS = OUT / "servicegraph"


def case_dir(spec: ScenarioSpec, extra: Path | None) -> tuple[Path, Labels]:
    """The case's files: ``extra``'s copy when current (read only), else our own."""
    if extra is not None:
        d = extra / spec.name
        if (d / "spec.txt").exists() and (d / "spec.txt").read_text() == repr(spec) and (d / "traces.jsonl").exists():
            return d, Labels.load(d / "labels.json")
    return case_files(spec, CASES)


def post_metrics(url: str, body: bytes) -> int:
    """One OTLP/HTTP metrics export; returns the rejected data points (retries 429/503)."""
    for attempt in range(6):
        req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/x-protobuf"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                r = ExportMetricsServiceResponse.FromString(resp.read())
                if r.partial_success.rejected_data_points:
                    log(f"    rejected {r.partial_success.rejected_data_points}: {r.partial_success.error_message}")
                return r.partial_success.rejected_data_points
        except urllib.error.HTTPError as exc:
            if exc.code not in (429, 502, 503, 504) or attempt == 5:
                raise RuntimeError(f"metrics export failed: HTTP {exc.code} {exc.read()[:300]!r}") from None
            time.sleep(0.5 * (attempt + 1))
    return 0


def run_case(spec: ScenarioSpec, d: Path, labels: Labels, spanmetrics: bool) -> dict:
    """One case on a fresh ``App`` (every case replays the same simulated epoch: the
    counter differencing of one process must not see the previous case's series) over
    the benchmark Neo4j, cleared first."""
    svc = Service(connector_service_stats="spanmetrics" if spanmetrics else "servicegraph",
                  detector_interval_seconds=0.0)  # RankCauses is the question here, not detection
    try:
        svc.reset()
        return _run_case(svc, spec, d, labels, spanmetrics)
    finally:
        svc.close()


def _run_case(svc: Service, spec: ScenarioSpec, d: Path, labels: Labels, spanmetrics: bool) -> dict:
    t = time.perf_counter()
    spans = read_spans(d / "traces.jsonl")
    read_s = time.perf_counter() - t
    url = svc.otlp_http.replace("/v1/traces", "/v1/metrics")
    t = time.perf_counter()
    n = points = rejected = 0
    for req in connector_requests(spans, spanmetrics=spanmetrics):
        points += sum(len(getattr(m, m.WhichOneof("data")).data_points)
                      for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)
        rejected += post_metrics(url, req.SerializeToString())
        n += 1
    send_s = time.perf_counter() - t
    if rejected:
        raise RuntimeError(f"{spec.name}: {rejected} data points rejected")
    stats = svc.app.ingestor.stats()
    out: dict = {"case": spec.name, "spans": len(spans), "requests": n, "points": points,
                 "read_s": round(read_s, 1), "send_s": round(send_s, 1),
                 "ignored": {k[8:]: v for k, v in stats.items() if k.startswith("ignored:")},
                 "resets": stats.get("metric_series_resets", 0)}
    with RootGraphClient(svc.api, timeout_s=120) as rg:
        record_deployments(rg, spec, labels)
        rank_case(rg, labels, out)
        out["entities"] = len(rg.service_graph().entities)
    out.update(score_ranks(out["ranks"], labels))
    return out


def report(rows: list[tuple[ScenarioSpec, Labels, dict]], mode: str, wall_s: float) -> str:
    n = len(rows)
    ac1 = sum(r["ac1"] for _, _, r in rows) / max(n, 1)
    ac3 = sum(r["ac3"] for _, _, r in rows) / max(n, 1)
    avg5 = sum(r["avg5"] for _, _, r in rows) / max(n, 1)
    decoys = sum(1 for _, l, _ in rows if l.decoys)
    decoy_first = sum(1 for _, _, r in rows if r["decoy_first"])
    lines = [f"Input: {mode}. {n} cases, AC@1 **{ac1:.2f}**, AC@3 **{ac3:.2f}**, Avg@5 {avg5:.2f}, "
             f"decoys ranked first {decoy_first}/{decoys}" + (f" ({wall_s / 60:.0f} min wall)." if wall_s else "."),
             "", "| case | root | top 3 (metrics input) | AC@1 | AC@3 |", "|---|---|---|---|---|"]
    for spec, labels, r in rows:
        lines.append(f"| {spec.name} | {', '.join(labels.root_causes)} | {', '.join(r['ranks'][:3])} | "
                     f"{r['ac1']:.2f} | {r['ac3']:.2f} |")
    by_kind: dict[str, list[float]] = {}
    for spec, _, r in rows:
        kind = spec.name.split("-", 2)[-1] if not spec.name.startswith("generated") else spec.name.split("-", 3)[-1]
        kind = kind.split("-", 1)[-1] if kind[:2].isdigit() else kind
        by_kind.setdefault(kind, []).append(r["ac1"])
    lines += ["", "AC@1 by fault kind: " + ", ".join(f"{k} {sum(v) / len(v):.2f} ({len(v)})"
                                                     for k, v in sorted(by_kind.items()))]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default="", help="comma-separated substrings of case names")
    p.add_argument("--cases-dir", default="", help="read current case files from here (never written)")
    p.add_argument("--spanmetrics", action="store_true", help="service statistics from the spanmetrics connector")
    p.add_argument("--tag", default="")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--keep-neo4j", action="store_true")
    args = p.parse_args(argv)
    mode = "servicegraph+spanmetrics" if args.spanmetrics else "servicegraph"
    specs = suite()
    if args.cases:
        keys = args.cases.split(",")
        specs = [s for s in specs if any(k in s.name for k in keys)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_file = RESULTS / (f"{mode}-{args.tag}.json" if args.tag else f"{mode}.json")
    done: dict[str, dict] = json.loads(out_file.read_text()) if args.resume and out_file.exists() else {}
    extra = Path(args.cases_dir) if args.cases_dir else None
    log(f"{len(specs)} cases, input {mode}")
    t0 = time.perf_counter()
    rows = []
    ran = 0  # cases answered now (not read back with --resume)
    try:
        for spec in specs:
            d, labels = case_dir(spec, extra)
            if spec.name not in done:
                done[spec.name] = run_case(spec, d, labels, args.spanmetrics)
                ran += 1
                out_file.write_text(json.dumps(done, indent=1))
            r = done[spec.name]
            rows.append((spec, labels, r))
            hit = "ok  " if r["ac1"] == 1 else "MISS"
            log(f"  {hit} {spec.name:36s} {r['spans']:7d} spans -> {r['points']:6d} points in {r['requests']:3d} "
                f"exports (send {r['send_s']:4.1f} s)  top {r['ranks'][:3]}")
    finally:
        if not args.keep_neo4j:
            stop_neo4j()
    text = report(rows, mode, time.perf_counter() - t0 if ran else 0.0)
    (RESULTS / f"report-{mode}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
