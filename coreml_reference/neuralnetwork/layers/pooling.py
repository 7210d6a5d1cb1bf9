"""pooling (MAX / AVERAGE / L2 over [..., C, H, W]) and pooling3d / globalPooling3d (MAX /
AVERAGE over [N, C, D, H, W]).

2-D padding types: VALID (+ explicit amounts), SAME, INCLUDE_LAST_PIXEL (Caffe's ceil mode);
avgPoolExcludePadding; global pooling. The layers translate these into explicit padding and
a ceil-mode flag, once per input shape; the windows are the shared kernels'
(coreml_reference.kernels.PoolPlan / pool_nd).
"""
from __future__ import annotations

import numpy as np

from coreml_reference.kernels import PoolPlan, pool_nd, same_padding
from coreml_reference.neuralnetwork.layers.conv import CUSTOM, SAME, border_amounts, custom_padding_3d
from coreml_reference.neuralnetwork.layers.registry import pair, register, require_rank, shape_list

MODES = {0: "max", 1: "avg", 2: "l2"}


@register("pooling")
def pooling(ctx, p, inputs):
    x = inputs[0]
    require_rank(x, 4, ctx)
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    xb = x.reshape(-1, c, h, w)
    plan = ctx.prepared("plans", (xb.shape, xb.dtype.str), lambda: _plan(ctx, p, xb))
    out = plan(xb)
    return out.reshape(lead + out.shape[1:])


def _plan(ctx, p, xb):
    """The PoolPlan of a pooling layer for inputs shaped like ``xb`` [N, C, H, W]."""
    h, w = xb.shape[-2:]
    mode = MODES.get(p.type)
    if mode is None:
        raise ctx.unsupported("pooling type {}".format(p.type))
    ceil_mode = False
    if p.globalPooling:
        kernel, strides, pads = (h, w), (1, 1), [(0, 0), (0, 0)]
    else:
        kernel, strides = pair(p.kernelSize, 3), pair(p.stride, 1)
        which = p.WhichOneof("PoolingPaddingType")
        if which == "same":
            pads = same_padding((h, w), kernel, strides, lower=p.same.asymmetryMode == 1)
        elif which == "includeLastPixel":
            ph, pw = pair(p.includeLastPixel.paddingAmounts, 0)
            pads, ceil_mode = [(ph, ph), (pw, pw)], True
        else:
            pads = border_amounts(p.valid.paddingAmounts)
    padded = [n + b + a for n, (b, a) in zip((h, w), pads)]
    if any(pn < k for pn, k in zip(padded, kernel)):
        raise ctx.shape_error("kernel {}x{} does not fit the padded input {}x{}".format(
            kernel[0], kernel[1], padded[0], padded[1]))
    if mode != "l2" and kernel == (1, 1) and strides == (1, 1) and pads == [(0, 0), (0, 0)]:
        return _same     # one-pixel windows (onnx-coreml writes them for AvgPool2d(1)): x exactly
    return PoolPlan(xb.shape, xb.dtype, kernel, strides, pads, mode,
                    exclude_padding=p.avgPoolExcludePadding, ceil_mode=ceil_mode)


def _same(x):
    return x


def _rank5(x, ctx):
    if x.ndim != 5:
        raise ctx.shape_error("input must have rank 5 [N, C, D, H, W], got shape {}".format(
            shape_list(x.shape)))


@register("pooling3d")
def pooling3d(ctx, p, inputs):
    x = inputs[0]
    _rank5(x, ctx)
    mode = MODES.get(p.type)
    if mode not in ("max", "avg"):
        raise ctx.unsupported("pooling3d type {}".format(p.type))
    kernel = (p.kernelDepth or 1, p.kernelHeight or 1, p.kernelWidth or 1)
    strides = (p.strideDepth or 1, p.strideHeight or 1, p.strideWidth or 1)
    if p.paddingType == SAME:
        pads = same_padding(x.shape[2:], kernel, strides)
    elif p.paddingType == CUSTOM:
        pads = custom_padding_3d(p)
    else:
        pads = [(0, 0)] * 3
    return pool_nd(x, kernel, strides, pads, mode, exclude_padding=p.countExcludePadding)


@register("globalPooling3d")
def global_pooling3d(ctx, p, inputs):
    x = inputs[0]
    _rank5(x, ctx)
    if p.type == 0:
        return np.max(x, axis=(2, 3, 4), keepdims=True)
    if p.type == 1:
        return np.mean(x, axis=(2, 3, 4), keepdims=True)
    raise ctx.unsupported("globalPooling3d type {}".format(p.type))
