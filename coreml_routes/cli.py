"""The ``coreml-routes`` command. Each subcommand lives in its own module with
``register(subparsers)``; errors the user can fix print one ``error:`` line, exit 2."""
from __future__ import annotations

import argparse
import importlib
import sys

from coreml_routes.errors import UserError

SUBCOMMANDS = ["convert", "compare", "predict", "bench", "report", "diagnose", "ops",
               "export_xctest"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="coreml-routes",
        description="Convert PyTorch models to Core ML by every route (coremltools 3 via ONNX, "
                    "coremltools 4, coremltools 9), check each against PyTorch, benchmark them.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module("coreml_routes." + name)
        except ModuleNotFoundError as e:
            if e.name != "coreml_routes." + name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except UserError as e:
        sys.stderr.write("error: {}\n".format(e))
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
