"""reduce_* ops: axes (default: all) and keep_dims; argmax / argmin take one axis."""
from __future__ import annotations

import numpy as np

from coreml_reference import kernels
from coreml_reference.mlprogram.registry import axes_of, register, scalar


def _axes(x, axes):
    return tuple(axes_of(axes, np.ndim(x))) if axes is not None else None


REDUCTIONS = {"reduce_" + kind: fn for kind, fn in kernels.REDUCTIONS.items()}


def _make(fn):
    def op(ctx, x, axes=None, keep_dims=False):
        x = np.asarray(x)
        return fn(x, _axes(x, axes), bool(scalar(keep_dims)))
    return op


for _name, _fn in REDUCTIONS.items():
    register(_name)(_make(_fn))


def _arg(fn):
    def op(ctx, x, axis=-1, keep_dims=False, output_dtype="int32"):
        x = np.asarray(x)
        axis = axes_of(axis, x.ndim)[0]
        out = fn(x, axis=axis)          # ties: the first index, as numpy
        if bool(scalar(keep_dims)):
            out = np.expand_dims(out, axis)
        return out.astype(np.int32)
    return op


register("reduce_argmax")(_arg(np.argmax))
register("reduce_argmin")(_arg(np.argmin))
