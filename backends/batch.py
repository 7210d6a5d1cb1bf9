"""Convert zoo models by routes of this env, one process each, and record the results.

    python -m backends.batch --route v3 [--route ...] [--models a b] [--out build] [--results results]
        [--hooks FILE] [--variants all | NAME ...]

One line per model as it goes (under a progress bar on a terminal);
``results/conversion-<route>.json`` gets one entry per model (entries for other models are
kept; the file is replaced atomically). Ctrl-C removes the conversion in progress, prints one
line and exits 130. ``--variants`` converts those variants of each route instead of its
default (``all``: every variant the route has), into ``build/<model>/<route>+<variant>/`` and
``results/conversion-<route>+<variant>.json``. Runs on Python 3.7.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import backends
from backends import builds, variants
from backends.builds import read_json, write_json_atomic
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
    p.add_argument("--hooks", action="append", default=[],
                   help="hooks file passed to every conversion (HOOKS = {route: {op: fn}}); repeatable")
    p.add_argument("--variants", nargs="+", metavar="NAME",
                   help="convert these variants instead of the default ('all': the route's own)")
    args = p.parse_args(argv)
    try:
        args.jobs = [(route, variant) for route in args.route
                     for variant in route_variants(backends.get(route), args.variants)]
        for model in args.models:
            zoo.get(model)
    except BadInput as e:
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
    jobs = [(route, variant, model) for route, variant in args.jobs for model in args.models]
    progress = Progress(len(jobs))
    try:
        for done, (route, variant, model) in enumerate(jobs, 1):
            name = builds.folder_name(route, variant)
            progress.start("{} {}".format(name, model))
            start = time.time()
            try:
                record = convert_isolated(sys.executable, route, model, args.out, args.samples,
                                          hooks=[os.path.abspath(h) for h in args.hooks] or None,
                                          variant=variant)
            except BadInput as e:
                sys.stderr.write("error: {}\n".format(e))
                return 2
            record_result(args.results, name, model, record)
            progress.done("[{}/{}] {:<14} {:<18} {:<6} {:6.1f} s  {}".format(
                done, len(jobs), name, model, record["status"], time.time() - start,
                short_reason(record)))
    finally:
        progress.close()
    return 0


def route_variants(backend, names):
    """[None] (the default) without --variants; else the variants asked for, checked."""
    if not names:
        return [None]
    chosen = list(backend.variants) if names == ["all"] else names
    for name in chosen:
        variants.check(backend, name)
    return chosen


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
    data["models"][model] = record.to_json() if hasattr(record, "to_json") else record
    write_json_atomic(path, data)


def short_reason(record):
    if record["status"] == "ok":
        return "convert {:.1f} s".format(record.get("seconds", {}).get("convert", 0.0))
    return "[{}] {}".format(record.get("stage"), (record.get("error") or "")[:120])


if __name__ == "__main__":
    sys.exit(main())
