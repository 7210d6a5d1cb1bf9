"""Core ML's protobuf classes, without importing all of coremltools.

``import coremltools`` imports its converters and torch (about 5 s); reading a spec needs
only the generated ``coremltools/proto/*_pb2`` modules (about 0.1 s). When coremltools is not
imported yet, its ``proto`` package is loaded alone, under its own name ``coremltools.proto``:
a later ``import coremltools`` finds it in ``sys.modules`` and reuses it, so specs and MLModels
a caller makes with coremltools are instances of the very same classes, whichever came first.

The generated modules import each other with ``from . import X_pb2``; for a submodule not yet
loaded, Python resolves that with ``__import__("coremltools.proto.X_pb2")``, which imports the
top-level ``coremltools`` first. The package's module ``__getattr__`` (PEP 562) loads such a
submodule by its full name instead, so that step never happens.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys

PACKAGE = "coremltools.proto"


def module(name: str):
    """``coremltools.proto.<name>`` (e.g. ``"Model_pb2"``), importing as little as possible."""
    if PACKAGE not in sys.modules and "coremltools" not in sys.modules:
        _load_package_alone()
    return importlib.import_module("{}.{}".format(PACKAGE, name))


def _load_package_alone():
    found = importlib.util.find_spec("coremltools")   # locates it; runs nothing
    if found is None or not found.submodule_search_locations:
        raise ImportError("coremltools is not installed: it provides Core ML's protobuf classes")
    folder = "{}/proto".format(found.submodule_search_locations[0])
    spec = importlib.util.spec_from_file_location(
        PACKAGE, "{}/__init__.py".format(folder), submodule_search_locations=[folder])
    package = importlib.util.module_from_spec(spec)
    package.__getattr__ = _submodule
    sys.modules[PACKAGE] = package     # before running it: its `from . import` needs it there
    try:
        spec.loader.exec_module(package)
    except BaseException:
        del sys.modules[PACKAGE]
        raise


def _submodule(name):
    if not name.endswith("_pb2"):
        raise AttributeError("module {!r} has no attribute {!r}".format(PACKAGE, name))
    return importlib.import_module("{}.{}".format(PACKAGE, name))


def Model():
    """The ``Model_pb2.Model`` class."""
    return module("Model_pb2").Model
