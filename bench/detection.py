"""Detection benchmark (issue 15), the parts that run in minutes.

    .venv/bin/python bench/detection.py --cost        # judging one bucket at 2,000 services

``--cost``: one bucket's judgement as the detector makes it (``baseline_symptoms`` over a
2-bucket incident window against 30 baseline buckets, ``Topology`` and one
``IncidentTracker.step``) on ``inference.synthetic.generate_incident(2000)`` windows
(2,000 services, ~10 % anomalous: the expensive case, every symptom scored and
correlated), median and max over seeds. The Neo4j read of the window is not included
(bench/latency.py measures reads; the detector's reads come from the warmed cache).

Not here yet (see the report of issue 15): the suite's faults replayed with a long
healthy lead-in, the simulated healthy day, the storm through the webhook at bench
scale and stream latency; tests/test_detector_server.py covers each at test scale.
"""

from __future__ import annotations

import argparse
import statistics
import time

from rootgraph.graph.records import Window, WindowData
from rootgraph.inference.detector import DetectorConfig, IncidentTracker, Topology, baseline_symptoms
from rootgraph.inference.synthetic import generate_incident


def _narrow(w: WindowData, buckets: int = 2) -> WindowData:
    """The detector's window: the last ``buckets`` minutes as incident, 30 before as baseline."""
    end = w.incident.end_s
    inc = Window(end - 60 * buckets, end)
    base = Window(inc.start_s - 1800, inc.start_s)
    return WindowData(inc, base, w.bucket_seconds, w.entities, w.service_buckets, w.edges, w.runs_on,
                      w.deployments)


def cost(n_services: int, seeds: int) -> None:
    cfg = DetectorConfig(incident_buckets=2, baseline_buckets=30, confirm_buckets=2, resolve_buckets=5)
    times, cpu, counts = [], [], []
    baseline_symptoms(_narrow(generate_incident(20, seed=99, baseline_minutes=32, incident_minutes=15)[0]))
    for seed in range(seeds):  # (above: warm-up, the detector's lazy imports are paid once per process)
        w, _ = generate_incident(n_services, seed=seed, baseline_minutes=32, incident_minutes=15)
        data = _narrow(w)
        tracker = IncidentTracker(cfg, lambda t: f"inc-{t}")
        t0, c0 = time.perf_counter(), time.process_time()
        syms = baseline_symptoms(data)
        tracker.step(data.incident.start_s, syms, Topology(data))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        counts.append(len(syms))
    # Wall time on a shared machine includes other processes' turns; CPU time is the
    # detector's own cost.
    print(f"services={n_services} seeds={seeds} symptoms/bucket median={statistics.median(counts)} "
          f"judge s/bucket wall median={statistics.median(times):.3f} max={max(times):.3f} "
          f"cpu median={statistics.median(cpu):.3f} max={max(cpu):.3f}")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--cost", action="store_true")
    p.add_argument("--services", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    if args.cost:
        cost(args.services, args.seeds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
