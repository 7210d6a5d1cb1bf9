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

The project README's sample table (between its <!-- sample-table --> markers) is written
from the same data, so it is never pasted by hand.
"""


def register(subparsers):
    p = subparsers.add_parser("report", help="render results/*.json as markdown tables and plots",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default="results", metavar="DIR",
                   help="folder with <host>.json and conversion-<route>.json; README.md and "
                        "the PNGs are written here (default: results)")
    p.add_argument("--readme", metavar="FILE",
                   help="also write the sample table between the <!-- sample-table --> markers "
                        "of FILE (default: the README.md beside the results folder, when it has "
                        "them)")
    p.set_defaults(run=run)


def run(args) -> int:
    from bench import report, results
    if not os.path.isdir(args.results):
        raise UserError("results folder not found: {}".format(args.results))
    # the project README beside the results folder (results/../README.md)
    readme = args.readme or os.path.join(os.path.dirname(os.path.abspath(args.results)), "README.md")
    if args.readme and not (os.path.isfile(readme) and report.has_sample_markers(readme)):
        raise UserError("--readme {}: no such file with {} ... {} markers".format(
            readme, report.SAMPLE_START, report.SAMPLE_END))
    hosts, conversions = results.read_all(args.results)
    if not hosts and not conversions:
        raise UserError("no results in {}: run `coreml-routes bench` (and the conversion envs) first"
                        .format(args.results))
    print("wrote {}".format(report.render(hosts, conversions, args.results)))
    text = report.sample(hosts, conversions)
    if text and os.path.isfile(readme) and report.has_sample_markers(readme):
        report.write_sample(readme, text)
        print("wrote the sample table in {}".format(readme))
    return 0
