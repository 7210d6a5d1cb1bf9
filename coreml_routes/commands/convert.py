"""``coreml-routes convert``: one model by one route, in that route's pinned env."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

HELP = """\
Convert a model to Core ML by one route: a zoo model or your own (--model FILE.py:FUNCTION,
package.module:FUNCTION, a TorchScript .pt/.ts or an .onnx file, with --input/--inputs). The route runs in its own pinned toolchain
(a tox env, created on first use) in a separate process, so a converter crash is recorded
as a failed conversion, not a crash of this command.

writes DIR/<model>/<route>/:
  model.mlmodel | model.mlpackage   the Core ML model (NeuralNetwork | ML Program)
  model.onnx                        the intermediate ONNX file (route v3 only)
  golden.npz                        the example input and PyTorch's outputs
                                    (keys input:<name>, output:<name>)
  conversion.json                   status, error and stage, seconds per stage,
                                    toolchain versions, spec type, layer/op histogram
A failed run never overwrites an earlier successful one (it writes conversion.failed.json).

After saving, the model is evaluated with the reference evaluator (fp32) against golden.npz:
conversion.json's "verified" says matches / diverges / cannot evaluate, with the worst SNR
and max abs error; "torch_drift" compares the route env's torch with this host's torch on
the same weights and inputs.
Exit 0 converted (and not diverging), 1 the route failed or the model diverges, 2 bad input.
Variants are part of the folder name: --precision fp32 writes DIR/<model>/<route>+fp32/,
--compress NAME writes DIR/<model>/<route>+NAME/. The plain <route>/ folder is the route's
default, as users get it from that toolchain (v9, v9-export: coremltools' fp16 ML Program).
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
    p.add_argument("--hooks", metavar="FILE",
                   help="Python file defining HOOKS = {route: {op type: function}} to replace how "
                        "an op converts (v3: ONNX op -> onnx-coreml function; v4/v9: TorchScript "
                        "op -> MIL composite). See examples/hooks_pad.py")
    from backends.variants import SUMMARIES
    p.add_argument("--precision", choices=["fp16", "fp32"],
                   help="ML Program routes (v9, v9-export): fp16 is coremltools' default (the plain "
                        "<route>/ folder); fp32 writes <route>+fp32/ (runs on CPU and GPU only, "
                        "never the Neural Engine)")
    p.add_argument("--compress", metavar="NAME", choices=[n for n in SUMMARIES if n != "fp32"],
                   help="compressed weights, by the route's own toolchain, into <route>+NAME/: "
                        + "; ".join("{} = {}".format(n, t) for n, t in SUMMARIES.items() if n != "fp32")
                        + ". v3/v4: fp16w, lin8, lut4, lut6; v9/v9-export: lin8, lut4, lut6, prune50")
    p.set_defaults(run=run)


def resolve_route(args):
    """The backend named by --route, and the hooks file checked."""
    import backends
    from coreml_routes.errors import UserError
    backend = backends.get(args.route)
    if args.hooks and not os.path.isfile(args.hooks):
        raise UserError("hooks file not found: {}".format(args.hooks))
    return backend


def variant_of(args, backend):
    """The variant that --precision / --compress ask for (None: the route's default)."""
    from backends import variants
    from coreml_routes.errors import UserError
    precision = getattr(args, "precision", None)
    compress = getattr(args, "compress", None)
    if precision and compress:
        raise UserError("give --precision or --compress, not both (compressed variants start from "
                        "the route's default precision)")
    if precision and "fp32" not in backend.variants:
        raise UserError("route {} builds a NeuralNetwork (fp32 weights; Core ML picks the precision "
                        "per device): --precision applies to ML Program routes only; for float16 "
                        "weights use --compress fp16w".format(backend.name))
    variant = compress or ("fp32" if precision == "fp32" else None)
    variants.check(backend, variant)
    return variant


def run(args) -> int:
    from coreml_routes import model_args
    from concurrent.futures import ThreadPoolExecutor
    from pipeline.conversions import (convert_route, host_reference, needs_shared_weights,
                                           require_applicable)

    from backends.builds import route_dir
    backend = resolve_route(args)
    variant = variant_of(args, backend)
    with tempfile.TemporaryDirectory(prefix="coreml-routes-") as tmp:
        request = model_args.resolve(args, tmp)
        require_applicable(backend, request)
        with ThreadPoolExecutor(1) as pool:
            # PyTorch's host run goes alongside the conversion, unless it makes the weights.
            host = host_reference(request, tmp) if needs_shared_weights(request) else \
                pool.submit(host_reference, request, tmp)
            record = convert_route(request, backend, os.path.abspath(args.out),
                                   hooks=os.path.abspath(args.hooks) if args.hooks else None,
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
