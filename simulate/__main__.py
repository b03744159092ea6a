"""``python -m rootgraph.simulate``: run one scenario (or a suite case) to files or live.

Examples::

    python -m rootgraph.simulate --topology sockshop --fault db:mongodb/orders --out out/
    python -m rootgraph.simulate --topology boutique --fault adservice --kind error \\
        --decoy currencyservice --endpoint http://127.0.0.1:4318
    python -m rootgraph.simulate --case sockshop-09-bad_deploy --out out/
    python -m rootgraph.simulate --list

The fault kind defaults from the entity id: ``db:``/``queue:``/``ext:`` →
backend_error, ``host:``/``node:`` → host, a service → error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

from .faults import Fault, FaultKind
from .scenario import ScenarioSpec, run_live, run_to_files
from .suite import suite
from .topologies import NAMES


def _default_kind(entity: str) -> FaultKind:
    if entity.startswith(("db:", "queue:", "ext:")):
        return FaultKind.BACKEND_ERROR
    if entity.startswith(("host:", "node:")):
        return FaultKind.HOST
    return FaultKind.ERROR


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rootgraph.simulate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--topology", default="sockshop",
                   help=f"{', '.join(NAMES)} or generated-<n>[-<seed>] (default sockshop)")
    p.add_argument("--case", help="run a suite case by name instead of --topology/--fault")
    p.add_argument("--list", action="store_true", help="list suite cases and exit")
    p.add_argument("--fault", action="append", default=[], metavar="ENTITY",
                   help="root-cause entity id (repeatable), e.g. db:mongodb/orders, host:node-2")
    p.add_argument("--kind", action="append", default=[], choices=[k.value for k in FaultKind],
                   help="fault kind for the matching --fault (default from the entity id)")
    p.add_argument("--intensity", type=float, help="fault intensity (see faults.py)")
    p.add_argument("--onset", type=float, default=0.0, help="onset, seconds into the incident")
    p.add_argument("--decoy", action="append", default=[], help="service given an innocent deploy")
    p.add_argument("--baseline", type=float, default=1800.0, help="baseline seconds (default 1800)")
    p.add_argument("--incident", type=float, default=720.0, help="incident seconds (default 720)")
    p.add_argument("--rate", type=float, default=3.0, help="user requests per second (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=float, help="epoch seconds of the scenario start "
                   "(default a fixed 2026-01-01; 'now' minus the duration with --now)")
    p.add_argument("--now", action="store_true", help="end the scenario at the current time")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--out", help="directory for traces.jsonl and labels.json")
    out.add_argument("--endpoint", help="live OTLP endpoint, e.g. http://127.0.0.1:4317 or :4318")
    p.add_argument("--protocol", choices=["grpc", "http"], help="default: 4318 → http, else grpc")
    p.add_argument("--labels", help="where to write labels.json in live mode")
    return p


def _spec(args: argparse.Namespace) -> ScenarioSpec:
    if args.case:
        by_name = {c.name: c for c in suite()}
        if args.case not in by_name:
            raise SystemExit(f"unknown case {args.case!r}; see --list")
        spec = by_name[args.case]
    else:
        kinds = [FaultKind(k) for k in args.kind]
        faults = tuple(
            Fault(e, kinds[i] if i < len(kinds) else _default_kind(e), args.intensity, args.onset)
            for i, e in enumerate(args.fault))
        spec = ScenarioSpec(f"cli-{args.topology}", args.topology, faults, tuple(args.decoy),
                            seed=args.seed, baseline_s=args.baseline, incident_s=args.incident,
                            rate_rps=args.rate)
    if args.now:
        spec = replace(spec, start_epoch_s=int(time.time() - spec.baseline_s - spec.incident_s))
    elif args.start is not None:
        spec = replace(spec, start_epoch_s=int(args.start))
    return spec


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for c in suite():
            print(f"{c.name:40s} {c.topology:18s} {','.join(f.entity for f in c.faults)}")
        return 0
    if not (args.out or args.endpoint):
        raise SystemExit("give --out DIR or --endpoint URL")
    spec = _spec(args)
    t = time.perf_counter()
    if args.out:
        labels = run_to_files(spec, args.out)
    else:
        labels = run_live(spec, args.endpoint, protocol=args.protocol or "")
        if args.labels:
            labels.to_json(args.labels)
    dt = time.perf_counter() - t
    summary = {"scenario": labels.scenario, "root_causes": labels.root_causes,
               "blast_radius": labels.blast_radius, "requests": labels.requests,
               "spans": labels.spans, "seconds": round(dt, 2),
               "spans_per_second": round(labels.spans / dt) if dt else None, **labels.extra}
    print(json.dumps(summary, indent=2), file=sys.stderr)
    return 1 if labels.extra.get("export_failed") else 0


if __name__ == "__main__":
    raise SystemExit(main())
