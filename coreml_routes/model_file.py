"""A user's model file read as text (``ast``, never imported): which functions it defines,
so that a ``--model`` naming none of them, or none at all, is one line that lists them.

    FILE.py              -> "FILE.py needs :FUNCTION ... it defines: build, tiny"
    FILE.py:biuld        -> "FILE.py defines no function biuld; it defines: build, tiny"

A name the file binds some other way (``from m import build``, ``build = make``, a class)
is no typo; a file with ``from m import *`` or a module ``__getattr__`` can bind any name,
so it is left to the import in the host's pre-flight (``backends.reference_run``).
"""
from __future__ import annotations

import ast

from coreml_routes.errors import UserError


def top_level(path):
    """(functions defined with def, every other name bound at top level, open-ended) of
    the file, or None when it cannot be read or parsed (the import will say why)."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return None
    functions, names, open_ended = [], set(), False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.append(node.name)
            open_ended = open_ended or node.name == "__getattr__"
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    open_ended = True
                names.add((alias.asname or alias.name).split(".")[0])
        else:   # assignments, and names bound inside if / try at top level
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
                elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(sub.name)
    return functions, names, open_ended


def _listing(functions):
    public = [f for f in functions if not f.startswith("_")] or functions
    return ", ".join(public) if public else "none"


def check_file_without_function(spec):
    """``--model FILE.py`` (no ``:FUNCTION``): UserError saying a file needs one, with the
    functions the file defines."""
    found = top_level(spec)
    defines = "; it defines: {}".format(_listing(found[0])) if found else ""
    raise UserError("--model {}: a model file needs :FUNCTION, the function that returns your "
                    "nn.Module (e.g. {}:{}){}".format(
                        spec, spec, (found and found[0] and _listing(found[0]).split(", ")[0])
                        or "build", defines))


def check_function(path, function, spec):
    """UserError when the file surely defines no ``function`` (a typo), listing those it does."""
    found = top_level(path)
    if found is None:
        return
    functions, names, open_ended = found
    if function in functions or function in names or open_ended:
        return
    raise UserError("--model {}: {} defines no function {}; it defines: {}".format(
        spec, path, function, _listing(functions)))


def check(source):
    """The host's cheap look at ``--model`` before anything runs (``backends.sources.Source``)."""
    import os
    from backends.sources import FACTORY, ZOO
    if source.kind == ZOO and source.spec.lower().endswith(".py"):
        check_file_without_function(source.spec)
    if source.kind == FACTORY and source.path.endswith(".py") and os.path.isfile(source.path):
        check_function(source.path, source.function, source.spec)
