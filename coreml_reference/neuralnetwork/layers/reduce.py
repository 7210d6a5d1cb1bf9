"""reduce (old: axis C/H/W/HW/CHW, keeps dims) and the iOS 13 reduce* layers
(axes / keepDims / reduceAll), and cumSum."""
from __future__ import annotations

import numpy as np

from coreml_reference import kernels
from coreml_reference.neuralnetwork.layers.registry import normalize_axis, register, require_rank


# NeuralNetwork layer name -> the shared arithmetic in coreml_reference.kernels.
REDUCERS = {
    "reduceSum": kernels.REDUCTIONS["sum"],
    "reduceMean": kernels.REDUCTIONS["mean"],
    "reduceMax": kernels.REDUCTIONS["max"],
    "reduceMin": kernels.REDUCTIONS["min"],
    "reduceProd": kernels.REDUCTIONS["prod"],
    "reduceL1": kernels.REDUCTIONS["l1_norm"],
    "reduceL2": kernels.REDUCTIONS["l2_norm"],
    "reduceSumSquare": kernels.REDUCTIONS["sum_square"],
    "reduceLogSum": kernels.REDUCTIONS["log_sum"],
    "reduceLogSumExp": kernels.REDUCTIONS["log_sum_exp"],
}


def _nd_reducer(function):
    def layer(ctx, p, inputs):
        x = inputs[0]
        if p.reduceAll or not len(p.axes):
            axes = tuple(range(x.ndim))
        else:
            axes = tuple(sorted({normalize_axis(a, x.ndim, ctx) for a in p.axes}))
        out = function(x, axes, bool(p.keepDims))
        if out.ndim == 0:          # Core ML has no rank-0 blobs: a full reduction is [1]
            out = out.reshape(1)
        return out
    return layer


for _name, _function in REDUCERS.items():
    register(_name)(_nd_reducer(_function))


# old ReduceLayerParams
_AXES = {0: (-3, -2, -1), 1: (-2, -1), 2: (-3,), 3: (-2,), 4: (-1,)}
SUM, AVG, PROD, LOGSUM, SUMSQUARE, L1, L2, MAX, MIN, ARGMAX = range(10)


@register("reduce")
def reduce(ctx, p, inputs):
    x = inputs[0]
    axes = _AXES[p.axis]
    require_rank(x, len(axes), ctx)
    mode = p.mode
    if mode == ARGMAX:
        if len(axes) != 1:
            raise ctx.shape_error("ARGMAX reduces one axis (C, H or W)")
        return np.expand_dims(np.argmax(x, axis=axes[0]), axes[0]).astype(np.float32)
    if mode == LOGSUM:
        eps = np.float32(p.epsilon or 1e-6)
        return np.sum(np.log(x + eps), axis=axes, keepdims=True)
    names = {SUM: "reduceSum", AVG: "reduceMean", PROD: "reduceProd", SUMSQUARE: "reduceSumSquare",
             L1: "reduceL1", L2: "reduceL2", MAX: "reduceMax", MIN: "reduceMin"}
    if mode not in names:
        raise ctx.unsupported("reduce mode {}".format(mode))
    return REDUCERS[names[mode]](x, axes, True)


@register("cumSum")
def cum_sum(ctx, p, inputs):
    x = inputs[0]
    # A second input, when given, holds the axis.
    axis = int(np.asarray(inputs[1]).reshape(-1)[0]) if len(inputs) > 1 else int(p.axis)
    return kernels.cumsum(x, normalize_axis(axis, x.ndim, ctx), p.excludeFinalSum, p.reverse)
