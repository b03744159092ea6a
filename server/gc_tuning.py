"""Garbage-collector tuning shared by the serving process and the ingest workers.

In its own module so that an ingest worker (``server/workers.py``) can use it without
importing ``server/app.py`` and with it the inference stage (~230 MiB per worker).
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_gc"]

#: gen-0 allocations, gen-0 runs per gen-1 run, gen-1 runs per gen-2 run (``tune_gc``)
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Make full (generation-2) garbage collections rare and cheap.

    Why: a RankCauses call allocates ~10^5-10^6 objects; with CPython's default thresholds
    a full collection ran every ~6 calls and scanned every tracked object of the process
    (imported modules, the read cache), pausing the call 150-210 ms -- the whole gap
    between p50 and p95 at 500 services (bench/latency.py "live"). Objects alive at start
    (modules, settings) are moved out of collection with ``gc.freeze``; larger gen-0/1
    thresholds make full collections ~100x rarer. Young cyclic garbage is still collected
    promptly by the gen-0/1 collections; acyclic garbage never waits for the collector.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLDS[0], GC_THRESHOLDS[1], GC_THRESHOLDS[2])
