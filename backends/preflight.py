"""The user's own mistakes, told apart from a toolchain's failure when the host's torch
runs the model once before any route (``backends.reference_run``): one line each, with the
file and line of the user's code where there is one.

- the factory is not in the file (``FILE.py:biuld``): the functions the file defines;
- ``FUNCTION()`` raises, or returns something other than an nn.Module;
- the forward fails on the inputs given: its error, and the inputs' names, shapes and dtypes.

An ImportError while building is not counted: the routes may install packages the host
lacks (``--requirements``). Runs on Python 3.7.
"""
from __future__ import annotations

import os

BUILD, FORWARD = "build", "forward"


def mistake(source, step, error, inputs=None):
    """The one-line message for ``error`` raised at ``step`` (BUILD or FORWARD) when it is
    the user's to fix, else None. ``inputs``: the arrays the forward was given."""
    from backends import sources
    from backends.base import BadInput, last_line
    if isinstance(error, BadInput):
        return str(error)
    if source.kind not in (sources.FACTORY, sources.TORCHSCRIPT):
        return None
    what = "{}: {}".format(type(error).__name__, last_line(str(error)))
    where = user_frame(error.__traceback__, source)
    at = "{}:{}: ".format(*where) if where else ""
    if step == BUILD:
        if source.kind != sources.FACTORY or isinstance(error, ImportError):
            return None
        if _missing_factory(error, source):
            return "{}: {} defines no function {}; it defines: {}".format(
                source.spec, source.path, source.function, ", ".join(functions_in(source)) or "none")
        if _not_a_module(error, source):
            return "{}: {}".format(source.spec, error)
        if where is None:
            return None   # raised outside the user's code (e.g. weights that do not fit)
        return "{}{}() raised {}".format(at, source.function, what)
    return "{}the model's forward fails on the inputs given ({}): {}".format(
        at, describe_inputs(inputs), what)


def _missing_factory(error, source):
    return isinstance(error, AttributeError) and str(error) == "{} has no function {}".format(
        source.path, source.function)


def _not_a_module(error, source):
    return isinstance(error, TypeError) and str(error).startswith(
        "{}() returned a ".format(source.function))


def describe_inputs(inputs):
    """``feats 1x50x41 float32, tokens 1x16 int64``."""
    return ", ".join("{} {} {}".format(name, "x".join(str(d) for d in a.shape) or "scalar", a.dtype)
                     for name, a in (inputs or {}).items())


def user_frame(tb, source):
    """(file, line) of the innermost traceback frame in the user's model file (a factory's
    .py, or the module a dotted factory names), else None."""
    files = set()
    if source.path and source.path.endswith(".py"):
        files.add(os.path.abspath(source.path))
    found = None
    while tb is not None:
        name = os.path.abspath(tb.tb_frame.f_code.co_filename)
        if name in files or (not files and _users(name)):
            found = (name, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _users(filename):
    """A file that is neither Python's, an installed package's, nor this project's."""
    import sysconfig
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    skip = [here] + [p for p in (sysconfig.get_paths().get(k) for k in ("stdlib", "purelib", "platlib")) if p]
    return filename.endswith(".py") and not any(filename.startswith(p + os.sep) for p in skip)


def functions_in(source):
    """Public functions defined at the top of the factory's .py file (read, not imported)."""
    import ast
    if not source.path.endswith(".py"):
        return []
    try:
        with open(source.path, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return []
    names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return [n for n in names if not n.startswith("_")] or names
