"""``coreml-routes convert``: one model by one route, in that route's pinned env."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

HELP = """\
Convert a zoo model to Core ML by one route. The route runs in its own pinned toolchain
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
"""


def register(subparsers):
    import backends
    import zoo
    routes = backends.all_routes()
    p = subparsers.add_parser(
        "convert", help="convert a zoo model by one route", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="routes:\n" + "\n".join("  {:<10} {}".format(n, b.summary) for n, b in routes.items())
        + "\n\nmodels:\n" + "\n".join("  {:<18} {}".format(n, e.summary) for n, e in zoo.MODELS.items()))
    p.add_argument("--route", required=True, metavar="ROUTE",
                   help="conversion route: " + ", ".join(routes))
    p.add_argument("--model", required=True, metavar="NAME", help="zoo model (listed below)")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="official PANNs checkpoint ({'model': state_dict}, e.g. "
                        "MobileNetV1_mAP=0.389.pth); keys and shapes must match exactly. "
                        "Loaded with torch's weights_only unpickler. Default: seeded weights")
    p.add_argument("--samples", type=int, default=32000, metavar="N",
                   help="length of the example waveform in samples (32 kHz; default 32000 = 1 s). "
                        "The converted model takes exactly this input shape")
    p.add_argument("--out", default="build", metavar="DIR",
                   help="output root; files go to DIR/<model>/<route>/ (default: build)")
    p.add_argument("--hooks", metavar="FILE",
                   help="Python file defining HOOKS = {route: {op type: function}} to replace how "
                        "an op converts (v3: ONNX op -> onnx-coreml function; v4/v9: TorchScript "
                        "op -> MIL composite). See examples/hooks_pad.py")
    p.set_defaults(run=run)


def resolve(args):
    """The route and zoo entry named on the command line, checked: (backend, entry)."""
    import backends
    import zoo
    from coreml_routes.errors import UserError
    try:
        backend = backends.get(args.route)
        entry = zoo.get(args.model)
        entry.check_samples(args.samples)
    except (backends.UnknownRoute, zoo.ZooError) as e:
        raise UserError(str(e))
    if args.hooks and not os.path.isfile(args.hooks):
        raise UserError("hooks file not found: {}".format(args.hooks))
    return backend, entry


def checkpoint_npz(checkpoint, entry, tmp):
    """Read ``checkpoint`` safely, check it fits ``entry`` strictly, and write its tensors as
    plain arrays to an .npz in ``tmp`` for the route env; None without a checkpoint."""
    import zoo
    from coreml_routes.checkpoint import load_state_arrays, save_npz
    from coreml_routes.errors import UserError
    if not checkpoint:
        return None
    arrays = load_state_arrays(checkpoint)
    try:  # check here too, to name the user's file rather than our temporary copy
        zoo.load_weights(entry.build(), arrays, where=checkpoint)
    except zoo.ZooError as e:
        raise UserError(str(e))
    path = os.path.join(tmp, "weights.npz")
    save_npz(arrays, path)
    return path


def run(args) -> int:
    from backends.runner import BadInput, convert_isolated
    from coreml_routes.envs import child_env, env_python
    from coreml_routes.errors import UserError

    backend, entry = resolve(args)
    with tempfile.TemporaryDirectory(prefix="coreml-routes-") as tmp:
        weights = checkpoint_npz(args.checkpoint, entry, tmp)
        python = env_python(backend)
        try:
            record = convert_isolated(python, backend.name, entry.name, os.path.abspath(args.out),
                                      args.samples, weights=weights,
                                      hooks=os.path.abspath(args.hooks) if args.hooks else None,
                                      env=child_env())
        except BadInput as e:
            raise UserError(str(e).replace("error: ", "", 1))
    print_record(record, os.path.join(args.out, entry.name, backend.name))
    return 0 if record["status"] == "ok" else 1


def print_record(record, folder):
    seconds = record.get("seconds") or {}
    timing = ", ".join("{} {:.2f} s".format(k, v) for k, v in seconds.items()
                       if k in ("export", "trace", "convert", "save"))
    if record["status"] == "ok":
        count = record.get("layer_count", record.get("op_count"))
        print("ok: {} by {} -> {} ({}, {} layers/ops, {:.1f} MB; {})".format(
            record["model"], record["route"], folder, record.get("spec_type"), count,
            record.get("file_bytes", 0) / 1e6, timing))
    else:
        where = folder if not os.path.exists(os.path.join(folder, "conversion.failed.json")) \
            else os.path.join(folder, "conversion.failed.json") + " (earlier conversion kept)"
        sys.stderr.write("failed: {} by {} at stage {}: {} (record: {})\n".format(
            record["model"], record["route"], record.get("stage"), record.get("error"), where))
