"""Peer root-cause methods on the accuracy/latency cases; runs in ``.venv-peers``.

    .venv-peers/bin/python bench/peers.py --out results.json CASE_DIR/peer ...

Not imported by rootgraph and imports nothing of it: the peers pin versions that
conflict with rootgraph's runtime (``sfr-pyrca`` needs ``scikit-learn<1.2`` and so
``numpy<2``; rootgraph runs pgmpy with scikit-learn 1.9 / numpy 2), so they live in their
own virtualenv (``make bench-peers-setup``) and read the same case data from files
written by ``bench/common.py:peer_data``:

``spans.csv.gz``  one row per span, RCAEval ``traces.csv`` columns (µs), rootgraph ids
``meta.json``     injection time, windows, call edges, host/node placement

Methods (each gets the full baseline and the incident window, like rootgraph):

* ``tracerca`` -- ``RCAEval.e2e.tracerca`` (TraceRCA) on the span frame, unchanged.
* ``microrank`` -- ``RCAEval.e2e.microrank`` (MicroRank) on the span frame, unchanged,
  except that its input is cut to the last ``--microrank-baseline-s`` (default 600 s) of the
  baseline (and the incident window): its trace-kind step is O(traces²) in pure Python (30 min of baseline takes
  minutes per case). RCAEval's own cases have ~10 minutes before the injection.
* ``pyrca_bn`` -- ``pyrca.analyzers.bayesian.BayesianNetwork`` with PyRCA's documented flow
  (``applications/example/rca.py``): per-entity metric series (mean duration and error
  rate of the entity's SERVER/CONSUMER spans -- for a virtual node, its callers' calls --
  every ``--bucket-s`` seconds), ``StatsDetector`` trained on the baseline picks the
  anomalous metrics in the incident window, the network is the call graph seen in the
  spans (callee metric → caller metric, per metric; cycles broken at the lowest-traffic
  edge), trained by ``BayesianNetwork.train`` on the baseline; one root-cause node per
  entity and per host (``add_root_causes`` with PyRCA's default probabilities, the host
  node pointing at the latency of every service placed on it). ``BayesianNetwork.train``
  asserts both states of every variable in its training labels, which a healthy baseline
  never has, so the network is trained on baseline + incident (PyRCA trains on history
  that contains incidents) and metrics that never leave their band are left out.

Every method's answer is a ranked list of entity ids; operations (``service_method``)
map back to their service. A method that fails or exceeds ``--timeout-s`` records the
error instead of ranks.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def load(peer_dir: Path) -> tuple[pd.DataFrame, dict]:
    meta = json.loads((peer_dir / "meta.json").read_text())
    df = pd.read_csv(peer_dir / "spans.csv.gz", dtype={"traceID": str, "spanID": str, "parentSpanID": str})
    df["parentSpanID"] = df["parentSpanID"].fillna("")
    return df, meta


def _services_from_ops(ranks: list[str], df: pd.DataFrame) -> list[str]:
    op_to_svc = {f"{s}_{m}": s for s, m in df[["serviceName", "methodName"]].drop_duplicates().itertuples(index=False)}
    out: list[str] = []
    for op in ranks:
        svc = op_to_svc.get(op, op)
        if svc not in out:
            out.append(svc)
    return out


def run_tracerca(df: pd.DataFrame, meta: dict, args) -> list[str]:
    from RCAEval.e2e.tracerca import tracerca

    res = tracerca(df.copy(), inject_time=meta["inject_time_us"])
    return _services_from_ops(res["ranks"], df)


def run_microrank(df: pd.DataFrame, meta: dict, args) -> list[str]:
    from RCAEval.e2e.microrank import microrank

    # The last seconds of the *baseline*: it ends at the injection in the simulator's cases,
    # but a real case's baseline can lie in an earlier stretch of data (bench/real/).
    lo = meta["baseline_us"][1] - int(args.microrank_baseline_s * 1e6)
    cut = df[df["startTime"] >= lo]
    res = microrank(cut.copy(), inject_time=meta["inject_time_us"])
    return _services_from_ops(res["ranks"], cut)


def metric_frame(df: pd.DataFrame, meta: dict, bucket_s: int) -> pd.DataFrame:
    """Per-entity mean duration (ms) and error rate per bucket, server-side spans."""
    srv = df[df["kind"].isin([2, 5])]
    t0 = meta["baseline_us"][0]
    b = (srv["startTime"] - t0) // int(bucket_s * 1e6)
    g = srv.assign(b=b, ms=srv["duration"] / 1000.0).groupby(["serviceName", "b"])
    lat = g["ms"].mean().unstack(0)
    err = g["error"].mean().unstack(0)
    n_buckets = int((meta["incident_us"][1] - t0) // int(bucket_s * 1e6))
    idx = range(n_buckets)
    lat = lat.reindex(idx).ffill().bfill().fillna(0.0)
    err = err.reindex(idx).fillna(0.0)
    lat.columns = [f"{c}|lat" for c in lat.columns]
    err.columns = [f"{c}|err" for c in err.columns]
    out = pd.concat([lat, err], axis=1)
    out.index = pd.to_datetime(t0 // 1_000_000 + np.asarray(out.index) * bucket_s, unit="s")
    return out


def _dag_edges(meta: dict, entities: set[str]) -> list[tuple[str, str]]:
    """Call edges as cause→effect (callee → caller), cycles broken at the weakest edge."""
    import networkx as nx

    g = nx.DiGraph()
    for caller, callee, n in meta["edges"]:
        if caller in entities and callee in entities and caller != callee:
            g.add_edge(callee, caller, n=n)
    while True:
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            break
        u, v = min(cycle, key=lambda e: (g.edges[e[0], e[1]]["n"], e))[:2]
        g.remove_edge(u, v)
    return list(g.edges())


def run_pyrca_bn(df: pd.DataFrame, meta: dict, args) -> list[str]:
    from pyrca.analyzers.bayesian import BayesianNetwork, BayesianNetworkConfig
    from pyrca.outliers.stats import StatsDetector, StatsDetectorConfig

    from pyrca.utils.utils import estimate_thresholds

    m = metric_frame(df, meta, args.bucket_s)
    split = pd.to_datetime(meta["inject_time_us"] // 1_000_000, unit="s")
    base, inc = m[m.index < split], m[m.index >= split]
    detector = StatsDetector(StatsDetectorConfig())
    detector.train(base)
    anomalies = detector.predict(inc).to_dict()["anomalous_metrics"]
    # BayesianNetwork.train needs both states of every variable in its training labels
    # (it asserts cardinality 2), and a healthy baseline has no anomalies at all; so the
    # network is trained on the whole window, as PyRCA trains on history that contains
    # incidents. Metrics whose label never changes carry no evidence and are left out.
    cfg = BayesianNetworkConfig(graph=None)
    lo, hi = estimate_thresholds(m, {}, cfg.default_sigma, cfg.thres_win_size, cfg.thres_reduce_func)
    labels = (m.values > hi).astype(int) + (m.values < lo).astype(int)
    keep = [c for c, col in zip(m.columns, labels.T) if col.min() != col.max()]
    m = m[keep]
    anomalies = [a for a in anomalies if a in keep]
    entities = {c.rsplit("|", 1)[0] for c in keep}
    nodes = list(keep)
    adj = pd.DataFrame(0, index=nodes, columns=nodes)
    for cause, effect in _dag_edges(meta, entities):
        for metric in ("lat", "err"):
            a, b = f"{cause}|{metric}", f"{effect}|{metric}"
            if a in adj.columns and b in adj.columns:
                adj.loc[a, b] = 1
    bn = BayesianNetwork(BayesianNetworkConfig(graph=adj))
    bn.train(m)
    roots = [{"name": f"ROOT_{e}", "P(r=1)": 0.5,
              "metrics": [{"name": f"{e}|{x}"} for x in ("lat", "err") if f"{e}|{x}" in adj.columns]}
             for e in sorted(entities)]
    hosts: dict[str, list[str]] = {}
    for svc, infra in meta["runs_on"].items():
        if f"{svc}|lat" in adj.columns:
            for h in infra:
                if h.startswith("host:"):
                    hosts.setdefault(h, []).append(svc)
    roots += [{"name": f"ROOT_{h}", "P(r=1)": 0.5, "metrics": [{"name": f"{s}|lat"} for s in sorted(svcs)]}
              for h, svcs in sorted(hosts.items()) if len(svcs) >= 2]
    bn.add_root_causes(roots)
    if not anomalies:
        return []
    res = bn.find_root_causes(anomalies)
    out: list[str] = []
    for name, _score in res.root_cause_nodes:
        ent = str(name).removeprefix("ROOT_")
        ent = ent.rsplit("|", 1)[0] if ent.endswith(("|lat", "|err")) else ent
        if ent not in out:
            out.append(ent)
    return out


METHODS = {"tracerca": run_tracerca, "microrank": run_microrank, "pyrca_bn": run_pyrca_bn}


def _worker(q, method: str, peer_dir: str, args) -> None:
    try:
        df, meta = load(Path(peer_dir))
        t = time.perf_counter()
        ranks = METHODS[method](df, meta, args)
        q.put({"ranks": ranks, "seconds": time.perf_counter() - t})
    except Exception as exc:  # noqa: BLE001 - report, do not stop the benchmark
        q.put({"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300],
               "trace": traceback.format_exc()[-1500:]})


def run_one(method: str, peer_dir: Path, args) -> dict:
    """One method on one case in a child process (hard timeout, isolated memory)."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_worker, args=(q, method, str(peer_dir), args))
    t = time.perf_counter()
    p.start()
    p.join(args.timeout_s)
    if p.is_alive():
        p.kill()
        p.join()
        return {"error": f"timeout after {args.timeout_s:.0f} s", "seconds": time.perf_counter() - t}
    try:
        return q.get(timeout=5)
    except Exception:  # noqa: BLE001
        return {"error": f"crashed (exit code {p.exitcode})"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dirs", nargs="+", type=Path, help="case peer/ directories")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--timeout-s", type=float, default=300.0)
    p.add_argument("--microrank-baseline-s", type=float, default=600.0)
    p.add_argument("--bucket-s", type=int, default=10)
    p.add_argument("--retry", action="store_true", help="run again cases already in --out")
    args = p.parse_args(argv)
    results: dict[str, dict] = {}
    if args.out.exists():
        results = json.loads(args.out.read_text())
    for d in args.dirs:
        case = json.loads((d / "meta.json").read_text())["case"]
        for method in args.methods.split(","):
            key = f"{case}::{method}"
            if key in results and not args.retry:
                continue
            r = run_one(method, d, args)
            results[key] = r
            top = r.get("ranks", [])[:3]
            print(f"  {method:10s} {case:38s} {r.get('seconds', 0):6.1f} s  "
                  f"{top if 'ranks' in r else r['error']}", flush=True)
            args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
