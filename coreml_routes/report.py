"""``coreml-routes report``: results/*.json -> results/README.md with tables and plots."""
from __future__ import annotations

import argparse
import os

from coreml_routes.errors import UserError

HELP = """\
Render the benchmark results as markdown tables (results/README.md) and PNG plots beside it.

Reads every <host>.json written by `coreml-routes bench` (hosts side by side) and the
conversion-<route>.json files written by the conversion envs. Tables: one per model (a row
per route: converted?, conversion time, size, layers/ops, fp32 and fp16 accuracy, latency per
compute unit per host), the failures with stage and reason, and the host baselines
(PyTorch, onnxruntime, reference evaluator). Cells with no figure say why.
"""


def register(subparsers):
    p = subparsers.add_parser("report", help="render results/*.json as markdown tables and plots",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", metavar="DIR",
                   help="folder with <host>.json and conversion-<route>.json; README.md and "
                        "the PNGs are written here (default: results)")
    p.set_defaults(run=run)


def run(args) -> int:
    from bench import report, results
    if not os.path.isdir(args.results):
        raise UserError("results folder not found: {}".format(args.results))
    hosts, conversions = results.read_all(args.results)
    if not hosts and not conversions:
        raise UserError("no results in {}: run `coreml-routes bench` (and the conversion envs) first"
                        .format(args.results))
    print("wrote {}".format(report.render(hosts, conversions, args.results)))
    return 0
