"""Layers that make values: loadConstant (rank 5), loadConstantND, fillLike / Static /
Dynamic, rangeStatic / Dynamic, getShape."""
from __future__ import annotations

import numpy as np

from coreml_reference.neuralnetwork.layers.registry import register


@register("loadConstant")
def load_constant(ctx, p, inputs):
    shape = [int(d) for d in p.shape]
    if len(shape) != 3:
        raise ctx.shape_error("shape must be [C, H, W], got {}".format(shape))
    return ctx.weights(p.data, shape, "data").reshape([1, 1] + shape)


@register("loadConstantND")
def load_constant_nd(ctx, p, inputs):
    return ctx.weights(p.data, [int(d) for d in p.shape], "data")


@register("fillLike")
def fill_like(ctx, p, inputs):
    return np.full(inputs[0].shape, p.value, dtype=np.float32)


@register("fillStatic")
def fill_static(ctx, p, inputs):
    return np.full([int(d) for d in p.targetShape], p.value, dtype=np.float32)


@register("fillDynamic")
def fill_dynamic(ctx, p, inputs):
    return np.full([int(d) for d in inputs[0].reshape(-1)], p.value, dtype=np.float32)


@register("rangeStatic")
def range_static(ctx, p, inputs):
    return _range(p.startValue, p.endValue, p.stepSizeValue, ctx)


@register("rangeDynamic")
def range_dynamic(ctx, p, inputs):
    end = float(inputs[0].reshape(-1)[0])
    start = float(inputs[1].reshape(-1)[0]) if len(inputs) > 1 else p.startValue
    step = float(inputs[2].reshape(-1)[0]) if len(inputs) > 2 else p.stepSizeValue
    return _range(start, end, step, ctx)


def _range(start, end, step, ctx):
    if step == 0:
        raise ctx.shape_error("range step is 0")
    return np.arange(start, end, step, dtype=np.float32)


@register("getShape")
def get_shape(ctx, p, inputs):
    return np.asarray(inputs[0].shape, dtype=np.float32)
