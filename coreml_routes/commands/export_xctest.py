"""``coreml-routes export-xctest``: an Xcode parity package for one converted model."""
from __future__ import annotations

import argparse


HELP = """\
Write a Swift package that checks one converted model against PyTorch on a Mac or an
iPhone: Package.swift, the model as a resource, the golden input and outputs as JSON
({"shape": [...], "data": [...]}), and an XCTest case that compiles the model with
MLModel.compileModel(at:) and, for each compute unit (.cpuOnly, .cpuAndGPU,
.cpuAndNeuralEngine, .all), predicts and compares every output.

Tolerance per output: 10 x the max abs error of the reference evaluator's fp16 emulation
(the report's "fp16 accuracy (emulated GPU/NE)"); see parity/tolerance.py.

Run it on a Mac with `swift test`, or open Package.swift in Xcode and press Cmd-U (pick an
iPhone as the run destination to test on the phone).
"""


def register(subparsers):
    p = subparsers.add_parser("export-xctest", help="write an Xcode parity test package for one converted model",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", metavar="BUILD/<model>/<route>",
                   help="a build folder written by convert, e.g. build/pann_mobilenetv1/v4")
    p.add_argument("--out", metavar="DIR",
                   help="where the package goes (default: BUILD/<model>/<route>/xctest); an "
                        "earlier export there is replaced, any other content is refused")
    p.set_defaults(run=run)


def run(args) -> int:
    import parity
    facts = parity.export(args.folder, args.out)
    print("wrote {} ({} by {}; test file {})".format(facts["out"], *facts["source"].split("/", 1),
                                                       facts["test_file"]))
    for name, f in facts["outputs"].items():
        print("  {}: tolerance {:.3g} = {:g} x fp16 max abs error {:.3g}".format(
            name, f["tolerance"], facts["factor"], f["fp16_max_abs_error"]))
    return 0
