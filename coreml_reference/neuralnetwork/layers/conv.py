"""convolution (incl. grouped, depthwise, dilated, deconvolution).

Input is [..., C, H, W] (rank >= 4, leading axes are batch). Weights are
[C_out, C_in / groups, kH, kW] (deconvolution: [C_in, C_out / groups, kH, kW]).
The arithmetic is shared with the ML Program side (coreml_reference.kernels): im2col and
BLAS for dense kernels, shifted views summed for depthwise ones.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from coreml_reference.kernels import conv2d
from coreml_reference.neuralnetwork.layers.registry import (pair, register, require_rank,
                                                            shape_list)


@register("convolution")
def convolution(p, inputs, ctx):
    x = inputs[0]
    require_rank(x, 4, ctx)
    if p.isDeconvolution:
        return deconvolution(p, x, ctx)
    groups = p.nGroups or 1
    kh, kw = pair(p.kernelSize, 3)
    sh, sw = pair(p.stride, 1)
    dh, dw = pair(p.dilationFactor, 1)
    c_out, c_group = int(p.outputChannels), int(p.kernelChannels)
    lead, (c_in, h, w) = x.shape[:-3], x.shape[-3:]
    if c_in != c_group * groups or c_out % groups:
        raise ctx.shape_error("input has {} channels; kernelChannels {} x nGroups {} expected "
                              "(outputChannels {})".format(c_in, c_group, groups, c_out))
    weights = inputs[1] if len(inputs) > 1 else ctx.weights(p.weights, (c_out, c_group, kh, kw))
    if tuple(weights.shape) != (c_out, c_group, kh, kw):
        raise ctx.shape_error("weights have shape {}, expected {}".format(
            shape_list(weights.shape), [c_out, c_group, kh, kw]))
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1          # dilated kernel extent
    pads = conv_padding(p, h, w, ekh, ekw, sh, sw)
    if h + pads[0] + pads[1] < ekh or w + pads[2] + pads[3] < ekw:
        raise ctx.shape_error("kernel {}x{} (dilated {}x{}) is larger than the padded input {}".format(
            kh, kw, ekh, ekw, [h + pads[0] + pads[1], w + pads[2] + pads[3]]))
    out = conv2d(x.reshape((-1, c_in, h, w)), weights, None, (sh, sw), pads, (dh, dw), groups)
    if p.hasBias:
        out += ctx.weights(p.bias, (c_out,), "bias")[:, None, None]
    ho, wo = out.shape[2:]
    return out.reshape(lead + (c_out, ho, wo))


def conv_padding(p, h, w, ekh, ekw, sh, sw):
    """(top, bottom, left, right) for ValidPadding / SamePadding, as the proto defines them."""
    if p.WhichOneof("ConvolutionPaddingType") == "same":
        th = max(0, (-(-h // sh) - 1) * sh + ekh - h)
        tw = max(0, (-(-w // sw) - 1) * sw + ekw - w)
        return same_split(th, tw, p.same.asymmetryMode)
    return border_amounts(p.valid.paddingAmounts)


def same_split(th, tw, mode):
    if mode == 1:   # TOP_LEFT_HEAVY: the extra pixel goes first
        return th - th // 2, th // 2, tw - tw // 2, tw // 2
    return th // 2, th - th // 2, tw // 2, tw - tw // 2


def border_amounts(amounts):
    edges = list(amounts.borderAmounts)
    if not edges:
        return 0, 0, 0, 0
    return (int(edges[0].startEdgeSize), int(edges[0].endEdgeSize),
            int(edges[1].startEdgeSize), int(edges[1].endEdgeSize))


def windows(xb, kernel, stride, dilation, out_hw):
    """Strided view [N, C, Ho, Wo, kH, kW] of every kernel placement (no copy)."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_hw
    view = sliding_window_view(xb, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    return view[:, :, :(ho - 1) * sh + 1:sh, :(wo - 1) * sw + 1:sw, ::dh, ::dw]


def deconvolution(p, x, ctx):
    """Transposed convolution: scatter-add each kernel tap's contribution, then crop."""
    groups = p.nGroups or 1
    kh, kw = pair(p.kernelSize, 3)
    sh, sw = pair(p.stride, 1)
    c_out, c_in_w = int(p.outputChannels), int(p.kernelChannels)
    lead, (c_in, h, w) = x.shape[:-3], x.shape[-3:]
    if c_in != c_in_w or c_in % groups or c_out % groups:
        raise ctx.shape_error("input has {} channels; deconvolution kernelChannels {} "
                              "nGroups {} outputChannels {}".format(c_in, c_in_w, groups, c_out))
    cg, og = c_in // groups, c_out // groups
    weights = ctx.weights(p.weights, (c_in, og, kh, kw), axis=1)   # quantized per output channel
    xb = x.reshape(-1, groups, cg, h * w)
    n = xb.shape[0]
    # [G, Og*kh*kw, Cg] @ [N, G, Cg, H*W] -> every tap's contribution at every input pixel
    kernel_cols = weights.reshape(groups, cg, og * kh * kw).transpose(0, 2, 1)
    contrib = np.matmul(kernel_cols, xb).reshape(n, groups, og, kh, kw, h, w)
    full_h, full_w = (h - 1) * sh + kh, (w - 1) * sw + kw
    full = np.zeros((n, groups, og, full_h, full_w), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            full[:, :, :, i:i + (h - 1) * sh + 1:sh, j:j + (w - 1) * sw + 1:sw] += contrib[:, :, :, i, j]
    full = full.reshape(n, c_out, full_h, full_w)
    out = _crop_deconv(p, full, h, w, sh, sw)
    if p.hasBias:
        out = out + ctx.weights(p.bias, (c_out,), "bias")[:, None, None]
    return out.reshape(lead + out.shape[1:])


def _crop_deconv(p, full, h, w, sh, sw):
    full_h, full_w = full.shape[2:]
    if p.WhichOneof("ConvolutionPaddingType") == "same":
        target = (h * sh, w * sw)
        top, _, left, _ = same_split(full_h - target[0], full_w - target[1], p.same.asymmetryMode)
    else:
        top, bottom, left, right = border_amounts(p.valid.paddingAmounts)
        target = (full_h - top - bottom, full_w - left - right)
    if len(p.outputShape) == 2:        # explicit output size wins; pad zeros past the end
        target = (int(p.outputShape[0]), int(p.outputShape[1]))
        need_h, need_w = top + target[0] - full_h, left + target[1] - full_w
        if need_h > 0 or need_w > 0:
            full = np.pad(full, ((0, 0), (0, 0), (0, max(0, need_h)), (0, max(0, need_w))))
    return full[:, :, top:top + target[0], left:left + target[1]]
