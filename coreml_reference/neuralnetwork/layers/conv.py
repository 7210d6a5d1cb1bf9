"""convolution and convolution3d (incl. grouped, depthwise, dilated, deconvolution).

convolution: input [..., C, H, W] (rank >= 4, leading axes are batch), weights
[C_out, C_in / groups, kH, kW] (deconvolution: [C_in, C_out / groups, kH, kW]).
convolution3d: input [N, C, D, H, W], weights laid out the same way with a depth axis.
The layers only translate their parameters into explicit per-dimension padding; the
arithmetic is the shared kernels' (coreml_reference.kernels), as on the ML Program side.
"""
from __future__ import annotations

from coreml_reference.kernels import (ConvPlan, conv_nd, conv_transpose_nd, effective_kernel,
                                      same_padding)
from coreml_reference.neuralnetwork.layers.registry import (pair, register, require_rank,
                                                            shape_list)


@register("convolution")
def convolution(ctx, p, inputs):
    x = inputs[0]
    require_rank(x, 4, ctx)
    xb = x if x.ndim == 4 else x.reshape((-1,) + x.shape[-3:])
    out = _deconvolution(p, xb, ctx) if p.isDeconvolution else _cached_plan(ctx, p, xb, inputs)(xb)
    return out if x.ndim == 4 else out.reshape(x.shape[:-3] + out.shape[1:])


def _cached_plan(ctx, p, xb, inputs):
    if len(inputs) > 1:                      # weights as a second input: they may change
        return _plan(ctx, p, xb, inputs[1])
    # constant weights: checked and laid out once per input shape, as a runtime compiles once
    return ctx.prepared("plans", (xb.shape, xb.dtype.str), lambda: _plan(ctx, p, xb))


def _plan(ctx, p, xb, weights=None):
    """The ConvPlan of a (non-transposed) convolution layer for inputs shaped like ``xb``."""
    kernel, strides, dilations = pair(p.kernelSize, 3), pair(p.stride, 1), pair(p.dilationFactor, 1)
    groups = p.nGroups or 1
    c_out, c_group = int(p.outputChannels), int(p.kernelChannels)
    c_in, h, w = xb.shape[1:]
    if c_in != c_group * groups or c_out % groups:
        raise ctx.shape_error("input has {} channels; kernelChannels {} x nGroups {} expected "
                              "(outputChannels {})".format(c_in, c_group, groups, c_out))
    bias = ctx.weights(p.bias, (c_out,), "bias") if p.hasBias else None
    shape = (c_out, c_group) + kernel
    if weights is None:
        weights = ctx.weights(p.weights, shape)
    if tuple(weights.shape) != shape:
        raise ctx.shape_error("weights have shape {}, expected {}".format(
            shape_list(weights.shape), list(shape)))
    if p.WhichOneof("ConvolutionPaddingType") == "same":
        pads = same_padding((h, w), kernel, strides, dilations, lower=p.same.asymmetryMode == 1)
    else:
        pads = border_amounts(p.valid.paddingAmounts)
    _check_fits(ctx, (h, w), pads, kernel, dilations)
    return ConvPlan(xb.shape, xb.dtype, weights, bias, strides, pads, dilations, groups)


def _deconvolution(p, xb, ctx):
    """Transposed convolution of [N, C, H, W]: the full result cropped by the padding, or
    ``outputShape`` from the top-left crop on (zero-filled past the full result)."""
    kernel, strides, dilations = pair(p.kernelSize, 3), pair(p.stride, 1), pair(p.dilationFactor, 1)
    groups = p.nGroups or 1
    c_in, h, w = xb.shape[1:]
    c_out, c_in_w = int(p.outputChannels), int(p.kernelChannels)
    bias = ctx.weights(p.bias, (c_out,), "bias") if p.hasBias else None
    if c_in != c_in_w or c_in % groups or c_out % groups:
        raise ctx.shape_error("input has {} channels; deconvolution kernelChannels {} "
                              "nGroups {} outputChannels {}".format(c_in, c_in_w, groups, c_out))
    weights = ctx.weights(p.weights, (c_in, c_out // groups) + kernel, axis=1)  # per output channel
    full = [(n - 1) * s + k for n, s, k in zip((h, w), strides, effective_kernel(kernel, dilations))]
    if p.WhichOneof("ConvolutionPaddingType") == "same":
        pads = [_split(f - n * s, p.same.asymmetryMode == 1) for f, n, s in zip(full, (h, w), strides)]
    else:
        pads = border_amounts(p.valid.paddingAmounts)
    output_shape = [int(v) for v in p.outputShape] if len(p.outputShape) == 2 else None
    return conv_transpose_nd(xb, weights, bias, strides, pads, dilations, groups, output_shape)


def _split(total, before_heavy=False):
    small, big = total // 2, total - total // 2
    return (big, small) if before_heavy else (small, big)


def _check_fits(ctx, sizes, pads, kernel, dilations):
    padded = [n + b + a for n, (b, a) in zip(sizes, pads)]
    spans = effective_kernel(kernel, dilations)
    if any(pn < k for pn, k in zip(padded, spans)):
        raise ctx.shape_error("kernel {} (dilated {}) is larger than the padded input {}".format(
            list(kernel), list(spans), padded))


def border_amounts(amounts):
    """[(top, bottom), (left, right)] from a BorderAmounts message (unset: no padding)."""
    edges = list(amounts.borderAmounts)
    if not edges:
        return [(0, 0), (0, 0)]
    return [(int(edges[0].startEdgeSize), int(edges[0].endEdgeSize)),
            (int(edges[1].startEdgeSize), int(edges[1].endEdgeSize))]


# --- 3-D -------------------------------------------------------------------------------------

CUSTOM, VALID, SAME = 0, 1, 2


def custom_padding_3d(p):
    return [(p.customPaddingFront, p.customPaddingBack), (p.customPaddingTop, p.customPaddingBottom),
            (p.customPaddingLeft, p.customPaddingRight)]


@register("convolution3d")
def convolution3d(ctx, p, inputs):
    x = inputs[0]
    if x.ndim != 5:
        raise ctx.shape_error("input must have rank 5 [N, C, D, H, W], got shape {}".format(
            shape_list(x.shape)))
    kernel = (p.kernelDepth or 1, p.kernelHeight or 1, p.kernelWidth or 1)
    strides = (p.strideDepth or 1, p.strideHeight or 1, p.strideWidth or 1)
    dilations = (p.dilationDepth or 1, p.dilationHeight or 1, p.dilationWidth or 1)
    groups = p.nGroups or 1
    c_in, c_out = int(p.inputChannels), int(p.outputChannels)
    sizes = x.shape[2:]
    if x.shape[1] != c_in or c_in % groups or c_out % groups:
        raise ctx.shape_error("input has {} channels; inputChannels {} outputChannels {} "
                              "nGroups {}".format(x.shape[1], c_in, c_out, groups))
    bias = ctx.weights(p.bias, (c_out,), "bias") if p.hasBias else None
    if p.isDeconvolution:
        weights = ctx.weights(p.weights, (c_in, c_out // groups) + kernel, axis=1)
        full = [(n - 1) * s + k for n, s, k in zip(sizes, strides,
                                                   effective_kernel(kernel, dilations))]
        if p.paddingType == SAME:
            pads = [_split(f - n * s) for f, n, s in zip(full, sizes, strides)]
        elif p.paddingType == CUSTOM:
            pads = custom_padding_3d(p)
        else:
            pads = [(0, 0)] * 3
        output_shape = [int(v) for v in p.outputShape] if len(p.outputShape) == 3 else None
        return conv_transpose_nd(x, weights, bias, strides, pads, dilations, groups, output_shape)
    weights = ctx.weights(p.weights, (c_out, c_in // groups) + kernel)
    if p.paddingType == SAME:
        pads = same_padding(sizes, kernel, strides, dilations)
    elif p.paddingType == CUSTOM:
        pads = custom_padding_3d(p)
    else:
        pads = [(0, 0)] * 3
    _check_fits(ctx, sizes, pads, kernel, dilations)
    return conv_nd(x, weights, bias, strides, pads, dilations, groups)
