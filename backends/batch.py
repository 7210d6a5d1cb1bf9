"""Convert zoo models by routes of this env, one process each, and record the results.

    python -m backends.batch --route v3 [--route ...] [--models a b] [--out build] [--results results]
        [--hooks FILE]

One line per model as it goes (under a progress bar on a terminal);
``results/conversion-<route>.json`` gets one entry per model (entries for other models are
kept; the file is replaced atomically). Ctrl-C removes the conversion in progress, prints one
line and exits 130. Runs on Python 3.7.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import backends
from backends.base import read_json, write_json_atomic
from backends.runner import BadInput, convert_isolated, interrupts_once

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

    try:
        with interrupts_once():
            return convert_all(args)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: finished conversions are kept, the one in progress was "
                         "removed\n")
        return 130


def convert_all(args):
    os.makedirs(args.results, exist_ok=True)
    jobs = [(route, model) for route in args.route for model in args.models]
    progress = Progress(len(jobs))
    try:
        for done, (route, model) in enumerate(jobs, 1):
            progress.start("{} {}".format(route, model))
            start = time.time()
            try:
                record = convert_isolated(sys.executable, route, model, args.out, args.samples,
                                          hooks=os.path.abspath(args.hooks) if args.hooks else None)
            except BadInput as e:
                sys.stderr.write("error: {}\n".format(e))
                return 2
            record_result(args.results, route, model, record)
            progress.done("[{}/{}] {:<10} {:<18} {:<6} {:6.1f} s  {}".format(
                done, len(jobs), route, model, record["status"], time.time() - start,
                short_reason(record)))
    finally:
        progress.close()
    return 0


class Progress(object):
    """A tqdm bar on a terminal; elsewhere (CI logs, pipes) one plain line per conversion."""

    def __init__(self, total, stream=None):
        self.stream = stream or sys.stdout
        self.bar = None
        if self.stream.isatty():
            try:
                from tqdm import tqdm
            except ImportError:   # not pinned in every route env: plain lines then
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, unit="conversion", file=self.stream)

    def start(self, label):
        if self.bar is not None:
            self.bar.set_postfix_str(label)

    def done(self, line):
        if self.bar is None:
            self.stream.write(line + "\n")
            self.stream.flush()
        else:
            self.bar.write(line, file=self.stream)
            self.bar.update()

    def close(self):
        if self.bar is not None:
            self.bar.close()


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
