"""The ``coreml-routes`` command. Each subcommand lives in its own module with
``register(subparsers)``; errors the user can fix print one ``error:`` line, exit 2.

Subcommand modules import nothing heavy at module level or in ``register``: ``--help`` and
``predict`` must start fast, so torch and coremltools are imported only where used."""
from __future__ import annotations

import argparse
import importlib
import sys

from coreml_routes import __version__
from bad_input import EXIT_CODE, BadInput
from coreml_routes.quiet import hide_expected_warnings

SUBCOMMANDS = ["convert", "compare", "predict", "bench", "report", "diagnose", "ops",
               "export_xctest"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="coreml-routes",
        description="Convert PyTorch models to Core ML by every route (coremltools 3 via ONNX, "
                    "coremltools 4, coremltools 9), check each against PyTorch, benchmark them.")
    parser.add_argument("--version", action=VersionAction, nargs=0,
                        help="print the version and each route's toolchain, then exit")
    parser.add_argument("-v", "--verbose", action="store_true", default=False,
                        help="also show warnings that are expected on Linux (see README)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module("coreml_routes.commands." + name).register(subparsers)
    for sub in subparsers.choices.values():   # -v also after the subcommand
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="also show warnings that are expected on Linux, and what "
                              "was adapted silently (e.g. an input's dtype)")
    return parser


class VersionAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        from pipeline.envs import toolchains
        lines = ["coreml-routes {}".format(__version__)]
        lines += ["  {:<10} {}".format(route, ", ".join(pins)) for route, pins in toolchains().items()]
        sys.stdout.write("\n".join(lines) + "\n")
        parser.exit()


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        hide_expected_warnings()
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    from backends.runner import interrupts_once
    try:
        with interrupts_once():
            return args.run(args)
    except BadInput as e:
        sys.stderr.write("error: {}\n".format(e))
        return EXIT_CODE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: partial files removed, finished ones kept\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
