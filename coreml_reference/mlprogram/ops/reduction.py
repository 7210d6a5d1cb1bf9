"""reduce_* ops: axes (default: all) and keep_dims; argmax / argmin take one axis."""
from __future__ import annotations

import numpy as np

from coreml_reference.mlprogram.registry import axes_of, register, scalar


def _axes(x, axes):
    return tuple(axes_of(axes, np.ndim(x))) if axes is not None else None


def _log_sum_exp(x, axis, keepdims):
    # Subtract the max first so exp cannot overflow.
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


REDUCTIONS = {
    "reduce_sum": lambda x, a, k: np.sum(x, axis=a, keepdims=k),
    "reduce_mean": lambda x, a, k: np.mean(x, axis=a, keepdims=k),
    "reduce_max": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "reduce_min": lambda x, a, k: np.min(x, axis=a, keepdims=k),
    "reduce_prod": lambda x, a, k: np.prod(x, axis=a, keepdims=k),
    "reduce_l1_norm": lambda x, a, k: np.sum(np.abs(x), axis=a, keepdims=k),
    "reduce_l2_norm": lambda x, a, k: np.sqrt(np.sum(x * x, axis=a, keepdims=k)),
    "reduce_sum_square": lambda x, a, k: np.sum(x * x, axis=a, keepdims=k),
    "reduce_log_sum": lambda x, a, k: np.log(np.sum(x, axis=a, keepdims=k)),
    "reduce_log_sum_exp": _log_sum_exp,
}


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
