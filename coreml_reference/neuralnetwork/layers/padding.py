"""padding (constant / reflection / replication on the last two axes), constantPad (N-d)
and crop."""
from __future__ import annotations

import numpy as np

from coreml_reference.kernels import pad_constant, pad_reflect
from coreml_reference.neuralnetwork.layers.conv import border_amounts
from coreml_reference.neuralnetwork.layers.registry import register, require_rank, shape_list


@register("padding")
def padding(ctx, p, inputs):
    x = inputs[0]
    require_rank(x, 2, ctx)
    (top, bottom), (left, right) = border_amounts(p.paddingAmounts)
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    kind = p.WhichOneof("PaddingType")
    if kind == "constant":
        return pad_constant(x, widths, np.float32(p.constant.value))
    if kind == "reflection":
        h, w = x.shape[-2:]
        # reflection repeats no border pixel, so it can pad at most size - 1
        if max(top, bottom) >= h and (top or bottom) or max(left, right) >= w and (left or right):
            raise ctx.shape_error("reflection padding {} needs input larger than that, got {}".format(
                [top, bottom, left, right], shape_list(x.shape)))
        return pad_reflect(x, top, bottom, left, right)
    if kind == "replication":
        return np.pad(x, widths, mode="edge")
    raise ctx.unsupported("padding type {}".format(kind))


@register("constantPad")
def constant_pad(ctx, p, inputs):
    x = inputs[0]
    amounts = ([int(v) for v in inputs[1].reshape(-1)] if len(inputs) > 1
               else [int(v) for v in p.padAmounts])
    if len(amounts) != 2 * x.ndim:
        raise ctx.shape_error("padAmounts has {} values; input of shape {} needs {} (2 per axis)".format(
            len(amounts), shape_list(x.shape), 2 * x.ndim))
    pairs = [(amounts[2 * i], amounts[2 * i + 1]) for i in range(x.ndim)]
    if p.padToGivenOutputSizeMode:      # the non-zero entry is the output size on that side
        pairs = [((max(0, before - size), 0) if before else (0, max(0, after - size)))
                 for (before, after), size in zip(pairs, x.shape)]
    if not any(before or after for before, after in pairs):
        return x        # onnx-coreml writes all-zero pads before average pools
    return pad_constant(x, pairs, np.float32(p.value))


@register("crop")
def crop(ctx, p, inputs):
    x = inputs[0]
    require_rank(x, 3, ctx)
    h, w = x.shape[-2:]
    if len(inputs) > 1:
        ref = inputs[1]
        oh, ow = (int(v) for v in (list(p.offset) or [0, 0]))
        th, tw = ref.shape[-2:]
        if oh + th > h or ow + tw > w:
            raise ctx.shape_error("cannot crop {} at offset [{}, {}] from {}".format(
                shape_list(ref.shape), oh, ow, shape_list(x.shape)))
        return x[..., oh:oh + th, ow:ow + tw]
    (top, bottom), (left, right) = border_amounts(p.cropAmounts)
    if top + bottom >= h or left + right >= w:
        raise ctx.shape_error("crop amounts {} remove all of {}".format(
            [top, bottom, left, right], shape_list(x.shape)))
    return x[..., top:h - bottom, left:w - right]
