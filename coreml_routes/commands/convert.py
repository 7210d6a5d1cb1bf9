"""``coreml-routes convert``: one model by one route, in that route's pinned env."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

HELP = """\
Convert a model for Apple devices by one route: a zoo model or your own (--model
FILE.py:FUNCTION, package.module:FUNCTION, a TorchScript .pt/.ts or an .onnx file, with
--input/--inputs). The route runs in its own pinned toolchain (a tox env, created on first
use) in a separate process, so a converter crash is recorded as a failed conversion, not a
crash of this command.

writes DIR/<model>/<route>/:
  model.mlmodel | model.mlpackage   the Core ML model (NeuralNetwork | ML Program)
  model.pte, partitions/<i>.mlpackage
                                    route et: the ExecuTorch program and its Core ML
                                    partitions, unpacked
  model.aimodel                     route coreai: the Core AI asset
  model.onnx                        the intermediate ONNX file (route v3 only)
  golden.npz                        the example input and PyTorch's outputs
                                    (keys input:<name>, output:<name>)
  conversion.json                   status, error and stage, seconds per stage,
                                    toolchain versions, spec type, layer/op histogram
A failed run never overwrites an earlier successful one (it writes conversion.failed.json).

After saving, the model is evaluated against golden.npz by the reference evaluator (fp32;
et: partitions by it, the ops left outside Core ML by torch; coreai: Apple's Core AI
interpreter in the route's env):
conversion.json's "verified" says matches / diverges / cannot evaluate, with the worst SNR
and max abs error; "torch_drift" compares the route env's torch with this host's torch on
the same weights and inputs.
Exit 0 converted (and not diverging), 1 the route failed or the model diverges, 2 bad input.
Variants are part of the folder name: --precision P writes DIR/<model>/<route>+P/ when P is
not the route's default precision, --compress NAME writes DIR/<model>/<route>+NAME/. The
plain <route>/ folder is the route's default, as users get it from that toolchain (v9,
v9-export: coremltools' fp16 ML Program; et: fp16 Core ML partitions; coreai: a program
typed as the module, fp32 for a float32 module).
"""


def register(subparsers):
    import backends
    import zoo
    from coreml_routes import model_args
    routes = backends.all_routes()
    p = subparsers.add_parser(
        "convert", help="convert a model by one route", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="routes:\n" + "\n".join("  {:<10} {}".format(n, b.summary) for n, b in routes.items())
        + "\n\nzoo models:\n" + "\n".join("  {:<18} {}".format(n, e.summary) for n, e in zoo.MODELS.items())
        + "\n\nyour own model: --model my_model.py:build --input x:1x3x224x224 (see README)")
    p.add_argument("--route", required=True, metavar="ROUTE",
                   help="conversion route: " + ", ".join(routes))
    model_args.add_arguments(p)
    p.add_argument("--out", default="build", metavar="DIR",
                   help="output root; files go to DIR/<model>/<route>/ (default: build)")
    p.add_argument("--hooks", metavar="FILE", action="append", default=[],
                   help="Python file defining HOOKS = {route: {op type: function}} to replace how "
                        "an op converts (v3: ONNX op -> onnx-coreml function; v4/v9: TorchScript "
                        "op -> MIL composite; v9-export, et: ATen op -> MIL composite; coreai: "
                        "aten::<op>.<overload> -> Core AI lowering); repeatable. See "
                        "examples/hooks_pad.py, examples/hooks_log.py")
    from backends.variants import PRECISION_VARIANTS, SUMMARIES
    precision_routes = [(n, b) for n, b in routes.items()
                        if any(v in PRECISION_VARIANTS for v in b.variants)]
    p.add_argument("--precision", choices=["fp16", "fp32"],
                   help="the precision the program is typed in, for routes that offer both "
                        "(the other routes build NeuralNetworks, whose precision Core ML picks per "
                        "device): " + "; ".join(
                            "{} {} (default), {} into <route>+{}/".format(
                                n, _default_precision(b), _other_precision(b),
                                _other_precision(b)) for n, b in precision_routes)
                        + ". An fp32-typed ML Program runs on CPU and GPU only, never the Neural "
                          "Engine")
    compressions = [n for n in SUMMARIES if n not in PRECISION_VARIANTS]
    p.add_argument("--compress", metavar="NAME", choices=compressions,
                   help="compressed weights, by the route's own toolchain, into <route>+NAME/: "
                        + "; ".join("{} = {}".format(n, SUMMARIES[n].replace("%", "%%"))
                                    for n in compressions)
                        + ". By route: " + "; ".join(
                            "{}: {}".format(n, ", ".join(v for v in b.variants
                                                         if v not in PRECISION_VARIANTS) or "none")
                            for n, b in routes.items()))
    p.set_defaults(run=run)


def resolve_route(args):
    """The backend named by --route, and the hooks file checked."""
    import backends
    backend = backends.get(args.route)
    checked_hooks(args)
    return backend


def checked_hooks(args):
    """--hooks as absolute paths (None when not given); a missing file is bad input."""
    from coreml_routes.errors import UserError
    paths = args.hooks or []
    for path in paths:
        if not os.path.isfile(path):
            raise UserError("hooks file not found: {}".format(path))
    return [os.path.abspath(p) for p in paths] or None


def variant_of(args, backend):
    """The variant that --precision / --compress ask for (None: the route's default)."""
    from backends import variants
    from coreml_routes.errors import UserError
    precision = getattr(args, "precision", None)
    compress = getattr(args, "compress", None)
    if precision and compress:
        raise UserError("give --precision or --compress, not both (compressed variants start from "
                        "the route's default precision)")
    if precision:
        if precision in backend.variants:
            return precision
        if _other_precision(backend) is None:
            raise UserError("route {} builds a NeuralNetwork (fp32 weights; Core ML picks the "
                            "precision per device): --precision applies to routes that type their "
                            "program (ML Program, ExecuTorch, Core AI); for float16 weights use "
                            "--compress fp16w".format(backend.name))
        return None     # the route's default is typed in that precision
    variants.check(backend, compress)
    return compress


def _other_precision(backend):
    """The precision variant the route builds besides its default (fp32 / fp16), or None."""
    from backends.variants import PRECISION_VARIANTS
    return next((v for v in backend.variants if v in PRECISION_VARIANTS), None)


def _default_precision(backend):
    other = _other_precision(backend)
    return None if other is None else ("fp16" if other == "fp32" else "fp32")


def run(args) -> int:
    from coreml_routes import model_args
    from concurrent.futures import ThreadPoolExecutor
    from pipeline.conversions import (convert_route, host_first, host_reference,
                                           require_applicable)

    from backends.builds import route_dir
    backend = resolve_route(args)
    variant = variant_of(args, backend)
    with tempfile.TemporaryDirectory(prefix="coreml-routes-") as tmp:
        request = model_args.resolve(args, tmp)
        require_applicable(backend, request)
        with ThreadPoolExecutor(1) as pool:
            # PyTorch's host run goes first for the user's own model (their mistakes, once;
            # the weights), else alongside the conversion.
            host = host_reference(request, tmp) if host_first(request) else \
                pool.submit(host_reference, request, tmp)
            record = convert_route(request, backend, os.path.abspath(args.out),
                                   hooks=checked_hooks(args),
                                   host=host, variant=variant)
    print_record(record, route_dir(args.out, request.name, backend.name, variant), request)
    if record["status"] != "ok" or (record.get("verified") or {}).get("status") == "diverges":
        return 1
    return 0


def print_record(record, folder, request):
    from bench.artifacts import CONVERTER_STAGES
    seconds = record.get("seconds") or {}
    timing = ", ".join("{} {:.2f} s".format(k, v) for k, v in seconds.items()
                       if k in CONVERTER_STAGES)
    if record["status"] != "ok":
        where = folder if not os.path.exists(os.path.join(folder, "conversion.failed.json")) \
            else os.path.join(folder, "conversion.failed.json") + " (earlier conversion kept)"
        sys.stderr.write("failed: {} by {} at stage {}: {} (record: {})\n".format(
            record["model"], record["route"], record.get("stage"), record.get("error"), where))
        return
    from bench.units import human_bytes
    count = record.get("layer_count", record.get("op_count"))
    print("converted: {} by {} -> {} ({}, {} layers/ops, {}; {})".format(
        record["model"], record["route"], folder, record.get("spec_type"), count,
        human_bytes(record.get("file_bytes", 0)), timing))
    verified = record.get("verified") or {}
    figures = ""
    if isinstance(verified.get("max_abs_error"), float):
        figures = ", worst SNR {} dB, max abs error {:.3g}".format(
            _db(verified["worst_snr_db"]), verified["max_abs_error"])
    print("verified: {}{} ({})".format(verified.get("status"), figures, verified.get("reason")))
    drift = record.get("torch_drift") or {}
    if "not_measured" in drift:
        print("torch drift: not measured ({})".format(drift["not_measured"]))
    else:
        print("torch drift: {} vs host torch {}: max abs error {:.3g}, SNR {} dB".format(
            (record.get("toolchain") or {}).get("torch"), drift["host_torch"],
            drift["max_abs_error"], _db(drift["snr_db"])))
    if verified.get("status") == "diverges":
        print("find where: {}".format(request.command("diagnose", record["route"])))


def _db(x):
    return "{:.1f}".format(x) if isinstance(x, (int, float)) else str(x)
