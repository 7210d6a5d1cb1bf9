"""Convert zoo models by routes of this env, one process each, and record the results.

    python -m backends.batch --route v3 [--route ...] [--models a b] [--out build] [--results results]
        [--hooks FILE]

One line per model as it goes; ``results/conversion-<route>.json`` gets one entry per model
(entries for other models are kept; the file is replaced atomically). Runs on Python 3.7.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import backends
from backends.base import read_json, write_json_atomic
from backends.runner import BadInput, convert_isolated

RESULTS_SCHEMA = 1


def main(argv=None):
    import zoo
    p = argparse.ArgumentParser(prog="python -m backends.batch")
    p.add_argument("--route", action="append", required=True)
    p.add_argument("--models", nargs="+", default=list(zoo.MODELS))
    p.add_argument("--samples", type=int, default=32000)
    p.add_argument("--out", default="build")
    p.add_argument("--results", default="results")
    p.add_argument("--hooks", help="hooks file passed to every conversion (HOOKS = {route: {op: fn}})")
    args = p.parse_args(argv)
    try:
        for route in args.route:
            backends.get(route)
        for model in args.models:
            zoo.get(model)
    except (backends.UnknownRoute, zoo.ZooError) as e:
        sys.stderr.write("error: {}\n".format(e))
        return 2

    os.makedirs(args.results, exist_ok=True)
    total = len(args.route) * len(args.models)
    done = 0
    for route in args.route:
        for model in args.models:
            done += 1
            start = time.time()
            try:
                record = convert_isolated(sys.executable, route, model, args.out, args.samples,
                                          hooks=os.path.abspath(args.hooks) if args.hooks else None)
            except BadInput as e:
                sys.stderr.write("error: {}\n".format(e))
                return 2
            record_result(args.results, route, model, record)
            print("[{}/{}] {:<10} {:<18} {:<6} {:6.1f} s  {}".format(
                done, total, route, model, record["status"], time.time() - start,
                short_reason(record)), flush=True)
    return 0


def record_result(results_dir, route, model, record):
    path = os.path.join(results_dir, "conversion-{}.json".format(route))
    data = read_json(path) or {}
    if data.get("schema") != RESULTS_SCHEMA:
        data = {"schema": RESULTS_SCHEMA, "route": route, "models": {}}
    data["models"][model] = record
    write_json_atomic(path, data)


def short_reason(record):
    if record["status"] == "ok":
        return "convert {:.1f} s".format(record.get("seconds", {}).get("convert", 0.0))
    return "[{}] {}".format(record.get("stage"), (record.get("error") or "")[:120])


if __name__ == "__main__":
    sys.exit(main())
