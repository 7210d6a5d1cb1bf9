"""``coreml-routes bench``: accuracy and latency of every converted model, per compute unit."""
from __future__ import annotations

import argparse
import os

from coreml_routes.errors import UserError

HELP = """\
Benchmark the converted models in BUILD/<model>/<route>/ and write OUT/<host>.json.
Variants found in BUILD (<route>+fp32, <route>+lut4, ... from convert --precision /
--compress) are measured after their route; --routes v9+lut4 picks one alone.

For every model x route (and variant):
  accuracy     max abs error and SNR (dB) of each output against PyTorch (golden.npz), top-5
               label agreement for clip_output; in fp32 and in fp16 emulation (the reference
               evaluator), with the first layer/op whose fp16 result holds inf/NaN
  static       parameters and weight precision (from the spec), file size, layer/op count;
               multiply-accumulates and parameters of the PyTorch module
  host         PyTorch eager CPU, onnxruntime CPU (the v3 route's model.onnx) and reference
               evaluator latency on this machine (median, p90, min over --repeat runs)
  macOS only   real Core ML per compute unit (CPU_ONLY, CPU_AND_GPU, CPU_AND_NE, ALL): load
               time and first prediction, each timed once; then latency by Apple's ModelBench
               method (20 rounds x 50 predictions after 1 warm-up a round, the 10 lowest and
               10 highest of each round dropped, mean of the round means); accuracy; per op
               the preferred and supported devices and estimated cost (MLComputePlan, ML
               Program), with the Neural Engine's share of that cost; an `xcrun coremlc
               compile` check. Elsewhere these cells say "not measured: needs macOS".
  et, coreai   accuracy on golden.npz's first case (the example input) and the stress tone,
               by the route's own runtime in its env (.tox/et, .tox/coreai): an ExecuTorch
               program's Core ML partitions by the reference evaluator and its other ops by
               torch (fp16 emulated in the partitions); a Core AI asset by Apple's Core AI
               interpreter (no fp16 emulation: those cells say so); static facts from the
               partitions / the asset. Device cells: ExecuTorch's pybindings on macOS; Core AI
               per compute unit kind (CPU, GPU, NE) on macOS 27+; else they say why.

BUILD may be a folder copied from another machine (build on Linux, measure on a Mac): it
needs this Python only, no tox env, and no path of the machine that built it.

Rows are written as they finish (atomically), so an interrupted run keeps what it measured.
A re-run replaces only the rows it measures, in this host's file; a row whose build is not
found keeps its earlier measurement; other hosts' files in OUT are left alone. Every row
says how it was timed. Render the tables with `coreml-routes report`.
"""


def register(subparsers):
    p = subparsers.add_parser("bench", help="benchmark accuracy and latency of converted models",
                              description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", metavar="M",
                   help="zoo models, or your models by id (build/<id>/) or as given to convert "
                        "(FILE.py:FUNCTION, .pt, .onnx) (default: all zoo models)")
    p.add_argument("--routes", nargs="+", metavar="ROUTE",
                   help="routes, with their variants found in BUILD, or single variants such as "
                        "v9+lut4 (default: all routes)")
    p.add_argument("--repeat", type=int, default=20, metavar="N",
                   help="timed runs per host latency figure (PyTorch, onnxruntime), after the "
                        "warm-up (default 20); Core ML always uses the ModelBench rounds")
    p.add_argument("--warmup", type=int, default=3, metavar="N",
                   help="untimed runs before timing the host figures (default 3); Core ML has "
                        "its own warm-up in each ModelBench round")
    p.add_argument("--reference-repeat", type=int, default=20, metavar="N",
                   help="timed runs of the reference evaluator (numpy; ~10 ms a run for the "
                        "PANNs models, so as many as PyTorch gets by default: 20)")
    p.add_argument("--build", default="build", metavar="DIR",
                   help="where the converted models are (default: build)")
    p.add_argument("--out", default="results", metavar="DIR",
                   help="where <host>.json goes (default: results)")
    p.add_argument("--host", metavar="NAME", help="host name for the results file (default: this machine's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def model_id(text):
    """A model id as in build/<id>/: a zoo name or id as it is, or the id a source spec
    (FILE.py:FUNCTION, .pt, .onnx) gets by default."""
    from backends import sources
    return sources.parse(text).default_name


def run(args) -> int:
    import backends
    import zoo
    from bench import results
    from bench.run import run_bench

    known_routes = list(backends.all_routes())
    models = [model_id(m) for m in args.models] if args.models else list(zoo.MODELS)
    routes = args.routes or known_routes
    unknown = [m for m in models if m not in zoo.MODELS and not os.path.isdir(os.path.join(args.build, m))]
    if unknown:
        raise UserError("unknown model {}; known models: {}, or a model id with a folder in {} "
                        "(convert or compare it first)".format(
                            ", ".join(repr(m) for m in unknown), ", ".join(zoo.MODELS), args.build))
    from backends.builds import split_folder_name as split
    from backends.variants import SUMMARIES
    unknown = [r for r in routes if split(r)[0] not in known_routes
               or split(r)[1] not in (None,) + tuple(SUMMARIES)]
    if unknown:
        raise UserError("unknown route {}; known routes: {} (variants: <route>+{})".format(
            ", ".join(repr(r) for r in unknown), ", ".join(known_routes), "|".join(SUMMARIES)))
    if args.repeat < 1 or args.warmup < 0 or args.reference_repeat < 1:
        raise UserError("--repeat and --reference-repeat must be >= 1 and --warmup >= 0")
    doc = run_bench(models, routes, args.build, args.out, repeat=args.repeat,
                    warmup=args.warmup, reference_repeat=args.reference_repeat,
                    host=args.host, progress=not args.no_progress)
    print("wrote {}".format(results.host_path(args.out, doc["host"]["name"])))
    return 0
