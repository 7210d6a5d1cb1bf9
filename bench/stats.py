"""Latency statistics, stated once: warm-up runs are discarded, then N timed runs."""
from __future__ import annotations

import math
import time


def percentile(values, q):
    """Nearest-rank percentile: the smallest sample with at least q% of samples at or
    below it. A real measurement, never an interpolation between two runs."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def median(values):
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no samples")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def summarize_ms(seconds, warmup):
    """Timed runs (in seconds) -> the latency block every results file uses."""
    ms = [s * 1000.0 for s in seconds]
    return {"unit": "ms", "median": round(median(ms), 4), "p90": round(percentile(ms, 90), 4),
            "min": round(min(ms), 4), "runs": len(ms), "warmup": warmup}


def time_calls(fn, repeat, warmup):
    """Call ``fn()`` ``warmup`` times untimed, then ``repeat`` times timed; -> latency block."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return summarize_ms(seconds, warmup)
