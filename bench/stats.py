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


# Apple's ModelBench app (apple/ml-mobileone): per round one untimed warm-up prediction,
# then 50 timed ones; each round drops its 10 fastest and 10 slowest and keeps the mean of
# the rest; the figure is the mean of the round means. ModelBench reloads the model every
# round; we load once and time loading and the first prediction separately.
MODELBENCH = {"method": "ModelBench", "rounds": 20, "inferences_per_round": 50,
              "warmup_per_round": 1, "trim_low": 10, "trim_high": 10}


def protocol_text(protocol):
    """A protocol dict -> the words every table uses for it."""
    return "{method}: {rounds} rounds x {inferences_per_round} after {warmup_per_round} warm-up, " \
           "{trim_low} lowest + {trim_high} highest of each round dropped".format(**protocol)


def summarize_rounds_ms(rounds, protocol=MODELBENCH):
    """Timed predictions (seconds), one list per round -> the ModelBench latency block:
    ``mean`` is the mean of each round's trimmed mean; median/p90/min/max are over every
    kept prediction; ``protocol`` says how they were taken."""
    low, high = protocol["trim_low"], protocol["trim_high"]
    round_means, kept = [], []
    for seconds in rounds:
        if len(seconds) <= low + high:
            raise ValueError("a round of {} predictions cannot drop {} + {}".format(len(seconds), low, high))
        middle = sorted(s * 1000.0 for s in seconds)[low:len(seconds) - high]
        round_means.append(sum(middle) / len(middle))
        kept += middle
    if not round_means:
        raise ValueError("no rounds")
    return {"unit": "ms", "mean": round(sum(round_means) / len(round_means), 4),
            "median": round(median(kept), 4), "p90": round(percentile(kept, 90), 4),
            "min": round(min(kept), 4), "max": round(max(kept), 4),
            "round_means": [round(m, 4) for m in round_means], "runs": len(kept),
            "protocol": dict(protocol)}


def time_rounds(fn, protocol=MODELBENCH):
    """Run ``fn()`` by ``protocol`` (rounds of warm-up + timed calls); -> latency block."""
    rounds = []
    for _ in range(protocol["rounds"]):
        for _ in range(protocol["warmup_per_round"]):
            fn()
        seconds = []
        for _ in range(protocol["inferences_per_round"]):
            start = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - start)
        rounds.append(seconds)
    return summarize_rounds_ms(rounds, protocol)
