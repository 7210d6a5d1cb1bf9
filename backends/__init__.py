"""Conversion routes behind one interface (``backends.base.Backend``).

The registry finds every module in ``backends/routes/`` that defines ``BACKEND``: adding a
route is adding a file. Route modules are cheap to import (no toolchain at import time).
"""
from __future__ import annotations

import importlib
import pkgutil
from collections import OrderedDict

from backends.base import BadInput, Backend, ConversionError, Job, Stages  # noqa: F401 (public API)


class UnknownRoute(BadInput):
    pass


def all_routes():
    """route name -> Backend, in a stable order (v3, v4, v9, v9-export, ...)."""
    package = importlib.import_module("backends.routes")
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module("backends.routes." + info.name)
        backend = getattr(module, "BACKEND", None)
        if isinstance(backend, Backend):
            found.append(backend)
    return OrderedDict((b.name, b) for b in sorted(found, key=lambda b: (b.order, b.name)))


def get(name):
    known = all_routes()
    if name not in known:
        raise UnknownRoute("unknown route {!r}; known routes: {}".format(name, ", ".join(known)))
    return known[name]
