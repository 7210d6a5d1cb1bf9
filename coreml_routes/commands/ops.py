"""``coreml-routes ops``: the op names a hooks file can key on, for one model by one route."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

HELP = """\
List the op names a hooks file (--hooks FILE with HOOKS = {route: {op: function}}) can key
on when this route converts this model, with the number of nodes of each. The route
converts the model in its pinned env, as `convert` does, into a scratch folder (build/ is
left alone), and records the names its converter looks conversion functions up by:
  v3          ONNX op types (onnx-coreml also takes an ONNX node name)
  v4, v9      TorchScript op names, as coremltools' torch frontend keys them
  v9-export   op names of the torch.export program (ATen names, not TorchScript's)
A hook key that matches none of them does nothing; convert and diagnose warn about it.
"""


def register(subparsers):
    import backends
    from coreml_routes import model_args
    p = subparsers.add_parser("ops", help="list the op names a hook can take on a route",
                              description=HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--route", required=True, metavar="ROUTE",
                   help="conversion route: " + ", ".join(backends.all_routes()))
    model_args.add_arguments(p)      # a zoo model or your own, as for convert
    p.set_defaults(run=run, hooks=None)


def run(args) -> int:
    from backends.runner import convert_isolated
    from coreml_routes import model_args
    from coreml_routes.commands.convert import resolve_route
    from pipeline.conversions import single_route_python
    from pipeline.envs import child_env

    backend = resolve_route(args)
    with tempfile.TemporaryDirectory(prefix="coreml-routes-ops-") as tmp:
        request = model_args.resolve(args, tmp)
        python = single_route_python(backend, request)
        # into the scratch folder: build/ is left alone
        record = convert_isolated(python, backend.name, request.source.spec,
                                  os.path.join(tmp, "build"), request.samples,
                                  weights=request.weights_npz, env=child_env(),
                                  name=request.name, inputs=request.inputs_npz,
                                  outputs=request.outputs)
    ops = record.get("converter_ops")
    if not ops:
        sys.stderr.write("failed: {} by {} at stage {} before its converter saw any op: {}\n"
                         .format(request.name, backend.name, record.get("stage"),
                                 record.get("error")))
        return 1
    print(render(backend, request.name, ops))
    if record["status"] != "ok":
        print("note: the conversion then fails (stage {}: {}); the list has every node the "
              "converter was given".format(record.get("stage"), record.get("error")))
    return 0


def render(backend, model, ops):
    lines = ["route {} ({}), model {}: {} op names, {} nodes".format(
        backend.name, backend.hook_kind, model, len(ops), sum(ops.values())),
        "  {:>5}  {}".format("nodes", "op name (hook key)")]
    for name, count in sorted(ops.items(), key=lambda item: (-item[1], item[0])):
        lines.append("  {:>5}  {}".format(count, name))
    return "\n".join(lines)
