"""Helpers every route that feeds PyTorch to coremltools' torch frontend shares (v4, v9,
v9-export): tracing, input types, user hooks, and which op names the frontend looks its
conversion functions up by. Imported only inside a route's own env; runs on Python 3.7.
"""
from __future__ import annotations

import contextlib

from backends.base import OpsSeen


def trace(job):
    """A TorchScript archive converts as it is; a module is traced on the example inputs."""
    import torch
    if job.scripted is not None:
        return job.scripted
    with torch.no_grad():
        return torch.jit.trace(job.module, job.torch_inputs())


def tensor_types(ct, job):
    """Core ML inputs as PyTorch's: int64 becomes int32 (Core ML has no int64 inputs)."""
    import numpy as np
    from backends.shapes import ct_shape, flexible
    dtypes = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int32}
    flex = flexible(job)     # RangeDim / EnumeratedShapes for the inputs asked flexible
    return [ct.TensorType(name=name, shape=ct_shape(ct, flex[name]) if name in flex else array.shape,
                          dtype=dtypes.get(array.dtype.name, np.float32))
            for name, array in job.inputs.items()]


def declared_input_shapes(spec):
    """The record's ``input_shapes``: how the saved Core ML model declares each input."""
    from backends.shapes import declared_texts
    return {"input_shapes": dict(declared_texts(spec))}


def register_hooks(hooks):
    """Install user op converters, replacing coremltools' own for those op names."""
    if not hooks:
        return
    from coremltools.converters.mil.frontend.torch.torch_op_registry import register_torch_op
    for op_name, fn in hooks.items():
        fn.__name__ = op_name      # the registry keys converters by function name
        register_torch_op(fn, override=True)


@contextlib.contextmanager
def watch_frontend():
    """Count into an ``OpsSeen`` every node of the graph coremltools' torch frontend
    is about to convert, by the key its op registry looks it up with — the name a hook
    must use. Counted before conversion starts, so a failing conversion still lists all."""
    from coremltools.converters.mil.frontend.torch.converter import TorchConverter
    seen, key = OpsSeen(), _registry_key()
    original = TorchConverter.convert

    def convert(self, *args, **kwargs):
        for node in _nodes(self.graph):
            seen.counts[key(node.kind)] += 1
        return original(self, *args, **kwargs)

    TorchConverter.convert = convert
    try:
        yield seen
    finally:
        TorchConverter.convert = original


def _registry_key():
    """The registry's own normalisation of a node kind (ct 9: ``relu_`` -> ``relu``,
    ``aten.mul.Tensor`` -> ``mul``); coremltools 4 looks node kinds up unchanged."""
    try:
        from coremltools.converters.mil.frontend.torch.utils import (
            sanitize_op_kind, unify_inplace_and_functional)
    except ImportError:
        return lambda kind: kind
    return lambda kind: unify_inplace_and_functional(sanitize_op_kind(kind))


def _nodes(graph):
    for node in graph.nodes:
        yield node
        for block in getattr(node, "blocks", None) or []:
            for inner in _nodes(block):
                yield inner
