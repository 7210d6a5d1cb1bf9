"""conv, conv_transpose and pooling: resolve MIL's pad_type into explicit padding, then
call the shared kernels."""
from __future__ import annotations

import numpy as np

from coreml_reference import kernels
from coreml_reference.mlprogram.registry import ints, register, scalar


def resolve_pads(ctx, pad_type, pad, sizes, kernel, strides, dilations):
    """[(before, after)] per spatial dimension for pad_type valid / custom / same / same_lower."""
    pad_type = str(scalar(pad_type)) if pad_type is not None else "valid"
    n = len(kernel)
    if pad_type == "valid":
        return [(0, 0)] * n
    if pad_type == "custom":
        values = ints(pad) if pad is not None else [0] * (2 * n)
        if len(values) != 2 * n:
            raise ctx.shape_error("pad has {} values, {} spatial dims need {}".format(
                len(values), n, 2 * n))
        return [(values[2 * i], values[2 * i + 1]) for i in range(n)]
    if pad_type in ("same", "same_lower"):
        return kernels.same_padding(sizes, kernel, strides, dilations,
                                    lower=pad_type == "same_lower")
    raise ValueError("unknown pad_type {!r}".format(pad_type))


def _spatial(value, n, default):
    return ints(value) if value is not None else [default] * n


def _check_rank(ctx, x, low=3, high=5):
    if not low <= np.ndim(x) <= high:
        raise ctx.shape_error("input rank {} (shape {}) not in [{}, {}]".format(
            np.ndim(x), list(np.shape(x)), low, high))


@register("conv")
def conv(ctx, x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None,
         groups=1):
    _check_rank(ctx, x)
    n = np.ndim(x) - 2
    strides = _spatial(strides, n, 1)
    dilations = _spatial(dilations, n, 1)
    groups = int(scalar(groups))
    if np.ndim(weight) != np.ndim(x) or np.shape(weight)[1] * groups != np.shape(x)[1]:
        raise ctx.shape_error("weight {} does not fit input {} with groups={}".format(
            list(np.shape(weight)), list(np.shape(x)), groups))
    pads = resolve_pads(ctx, pad_type, pad, np.shape(x)[2:], np.shape(weight)[2:], strides,
                        dilations)
    return kernels.conv_nd(x, weight, bias, strides, pads, dilations, groups)


@register("conv_transpose")
def conv_transpose(ctx, x, weight, bias=None, pad=None, output_shape=None, pad_type="valid",
                   strides=None, dilations=None, groups=1):
    _check_rank(ctx, x)
    n = np.ndim(x) - 2
    strides = _spatial(strides, n, 1)
    dilations = _spatial(dilations, n, 1)
    pad_type = str(scalar(pad_type))
    kernel = np.shape(weight)[2:]
    sizes = np.shape(x)[2:]
    spatial_out = None
    if output_shape is not None:
        spatial_out = ints(output_shape)[2:]
    elif ctx.out_shape() is not None and None not in ctx.out_shape():
        spatial_out = list(ctx.out_shape()[2:])
    if pad_type == "same":
        # Output = input * stride; crop what the full result has beyond that, half before.
        full = [(i - 1) * s + k for i, s, k in
                zip(sizes, strides, kernels.effective_kernel(kernel, dilations))]
        pads = [(max(0, f - i * s) // 2, 0) for f, i, s in zip(full, sizes, strides)]
        spatial_out = spatial_out or [i * s for i, s in zip(sizes, strides)]
    else:
        pads = resolve_pads(ctx, pad_type, pad, sizes, kernel, strides, dilations)
    return kernels.conv_transpose_nd(x, weight, bias, strides, pads, dilations,
                                     int(scalar(groups)), spatial_out)


def _pool(ctx, mode, x, kernel_sizes, strides, pad_type, pad, ceil_mode, exclude):
    kernel = ints(kernel_sizes)
    n = len(kernel)
    if np.ndim(x) < n + 1:
        raise ctx.shape_error("input shape {} has too few dims for kernel {}".format(
            list(np.shape(x)), kernel))
    strides = _spatial(strides, n, 1)
    pads = resolve_pads(ctx, pad_type, pad, np.shape(x)[-n:], kernel, strides, [1] * n)
    return kernels.pool_nd(x, kernel, strides, pads, mode, bool(scalar(exclude)),
                           bool(scalar(ceil_mode)))


@register("max_pool", exact=True)
def max_pool(ctx, x, kernel_sizes, strides=None, pad_type="valid", pad=None, ceil_mode=False):
    return _pool(ctx, "max", x, kernel_sizes, strides, pad_type, pad, ceil_mode, False)


@register("avg_pool")
def avg_pool(ctx, x, kernel_sizes, strides=None, pad_type="valid", pad=None, ceil_mode=False,
             exclude_padding_from_average=False):
    return _pool(ctx, "avg", x, kernel_sizes, strides, pad_type, pad, ceil_mode,
                 exclude_padding_from_average)


@register("l2_pool")
def l2_pool(ctx, x, kernel_sizes, strides=None, pad_type="valid", pad=None, ceil_mode=False):
    return _pool(ctx, "l2", x, kernel_sizes, strides, pad_type, pad, ceil_mode, False)
