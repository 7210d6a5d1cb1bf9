"""``coreml-routes diagnose``: say where a route breaks (logic in the ``diagnose`` package)."""
from __future__ import annotations

import argparse
import os
import tempfile

HELP = """\
Convert a model (a zoo model or your own, as for convert) by one route (as `convert` does, with --hooks if given) and say where it
breaks:
  - conversion fails: convert sub-modules alone (children, then theirs), each in the route's
    env with the inputs it really receives, down to the smallest one that still fails; name
    that module, its type, the op being converted and the converter's message;
  - outputs diverge from PyTorch: evaluate the Core ML model with the reference evaluator and
    compare every intermediate blob / var with PyTorch's value of the same name (in
    PyTorch's axis order when the converter permuted them); name the first layer that
    departs (type, name, shapes, error) and its inputs, and say how many values were
    compared;
  - --precision fp16: the first layer whose fp16 emulation overflows (inf/NaN) or falls
    below the fp16 SNR threshold against the fp32 evaluation.
Routes whose artifact runs only in their own env are searched there:
  - et (.pte): the whole program run (partitions by the reference evaluator, the ops left
    outside Core ML by torch) against PyTorch's outputs; then the first Core ML partition
    whose outputs, fed PyTorch's inputs to it, depart from its edge program's, and the
    first op inside it (--precision fp16: partitions in GPU / Neural Engine emulation, held
    to the fp16 tolerance);
  - coreai (.aimodel): Apple's Core AI interpreter against PyTorch's outputs; then the
    first op whose interpreter value (IntermediateLogger) departs from PyTorch's value of
    the torch node it lowers (--precision fp16: the fp16 program, route variant fp16).
Prints a report and writes DIR/<model>/<route>/diagnosis.json (diagnosis-fp16.json).
Exit 0 when the route converts and matches, 1 when a fault was found.
"""


def register(subparsers):
    import backends
    from coreml_routes import model_args
    p = subparsers.add_parser("diagnose", help="say where a route breaks (conversion, "
                              "divergence or fp16)", description=HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--route", required=True, metavar="ROUTE",
                   help="conversion route: " + ", ".join(backends.all_routes()))
    model_args.add_arguments(p)
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32",
                   help="fp32: divergence from PyTorch; fp16: first overflow / precision loss")
    p.add_argument("--hooks", metavar="FILE", action="append", default=[],
                   help="conversion hooks file, as for convert; repeatable")
    p.add_argument("--out", default="build", metavar="DIR", help="output root (default: build)")
    p.set_defaults(run=run)


def run(args) -> int:
    from coreml_routes import model_args
    from coreml_routes.commands.convert import checked_hooks, resolve_route
    from pipeline.conversions import single_route_python
    from pipeline.envs import child_env
    from coreml_routes.errors import UserError
    from diagnose import diagnose
    from diagnose.report import render

    backend = resolve_route(args)
    with tempfile.TemporaryDirectory(prefix="coreml-routes-") as tmp:
        request = model_args.resolve(args, tmp)
        python = single_route_python(backend, request)
        try:
            result = diagnose(python, backend.name, request.source.spec,
                              os.path.abspath(args.out), request.samples,
                              weights=request.weights_npz,
                              hooks=checked_hooks(args),
                              precision=args.precision, env=child_env(), name=request.name,
                              inputs=request.inputs_npz, outputs=request.outputs,
                              input_note=request.input_note)
        except ImportError as e:   # the evaluator or onnxruntime missing from this install
            raise UserError("cannot evaluate the converted model here: {}".format(e))
    print(render(result))
    return 0 if result["verdict"] in ("matches", "fp16 within tolerance") else 1
