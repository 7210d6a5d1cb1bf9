"""Resizing of the last two dimensions: nearest-neighbour and bilinear, and crop.

Bilinear is separable: sample rows, then columns, each a gather of two neighbours and a
linear blend at grid points computed per sampling mode."""
from __future__ import annotations

import math

import numpy as np

from coreml_reference import kernels
from coreml_reference.mlprogram.registry import ints, register, scalar


def _check(ctx, x):
    if np.ndim(x) < 3:
        raise ctx.shape_error("input rank {} < 3".format(np.ndim(x)))


def _grid(n_in, n_out, mode):
    """Sample positions in input coordinates, clamped to [0, n_in - 1]."""
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if n_out == 1:
            g = np.full(1, (n_in - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0)
        else:
            g = i * (n_in - 1) / (n_out - 1)
    elif mode == "DEFAULT":                  # asymmetric: i * in / out
        g = i * n_in / n_out
    elif mode == "OFFSET_CORNERS":
        delta = max(1, n_in - 1) / n_out
        g = 0.5 * delta + i * delta
    elif mode == "UNALIGN_CORNERS":          # half-pixel centres
        g = (i + 0.5) * n_in / n_out - 0.5
    else:
        raise ValueError("unknown sampling mode {!r}".format(mode))
    return np.clip(g, 0, n_in - 1)


def _lerp_axis(x, grid, axis):
    lo = np.floor(grid).astype(np.int64)
    hi = np.minimum(lo + 1, x.shape[axis] - 1)
    frac = (grid - lo).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = -1
    frac = frac.reshape(shape)
    a = np.take(x, lo, axis=axis)
    b = np.take(x, hi, axis=axis)
    return a + (b - a) * frac


def _bilinear(x, out_h, out_w, mode):
    x = np.asarray(x, dtype=np.float32)
    h, w = x.shape[-2:]
    y = _lerp_axis(x, _grid(h, out_h, mode), x.ndim - 2)
    return _lerp_axis(y, _grid(w, out_w, mode), x.ndim - 1)


@register("resize_bilinear")
def resize_bilinear(ctx, x, target_size_height=1, target_size_width=1, sampling_mode="DEFAULT"):
    _check(ctx, x)
    return _bilinear(x, int(scalar(target_size_height)), int(scalar(target_size_width)),
                     str(scalar(sampling_mode)))


@register("upsample_bilinear")
def upsample_bilinear(ctx, x, scale_factor_height=1, scale_factor_width=1, align_corners=True,
                      half_pixel_centers=None):
    _check(ctx, x)
    h, w = np.shape(x)[-2:]
    out_h = int(math.floor(h * float(scalar(scale_factor_height))))
    out_w = int(math.floor(w * float(scalar(scale_factor_width))))
    align = bool(scalar(align_corners))
    half = (not align) if half_pixel_centers is None else bool(scalar(half_pixel_centers))
    # The grid uses in/out (the scale recomputed from the sizes), as MIL documents.
    mode = "STRICT_ALIGN_CORNERS" if align else ("UNALIGN_CORNERS" if half else "DEFAULT")
    return _bilinear(x, out_h, out_w, mode)


def _nearest(x, out_h, out_w, src_h, src_w):
    x = np.asarray(x)
    h, w = x.shape[-2:]
    rows = np.minimum(src_h, h - 1)
    cols = np.minimum(src_w, w - 1)
    return x[..., rows[:, None], cols[None, :]]


@register("upsample_nearest_neighbor")
def upsample_nearest_neighbor(ctx, x, scale_factor_height=1, scale_factor_width=1):
    _check(ctx, x)
    h, w = np.shape(x)[-2:]
    sh, sw = float(scalar(scale_factor_height)), float(scalar(scale_factor_width))
    out_h, out_w = int(math.floor(h * sh)), int(math.floor(w * sw))
    # Output pixel i copies input floor(i / scale).
    src_h = np.floor(np.arange(out_h) / sh).astype(np.int64)
    src_w = np.floor(np.arange(out_w) / sw).astype(np.int64)
    return _nearest(x, out_h, out_w, src_h, src_w)


@register("resize_nearest_neighbor")
def resize_nearest_neighbor(ctx, x, target_size_height, target_size_width):
    _check(ctx, x)
    h, w = np.shape(x)[-2:]
    out_h, out_w = int(scalar(target_size_height)), int(scalar(target_size_width))
    src_h = np.floor(np.arange(out_h) * h / out_h).astype(np.int64)
    src_w = np.floor(np.arange(out_w) * w / out_w).astype(np.int64)
    return _nearest(x, out_h, out_w, src_h, src_w)


@register("crop")
def crop(ctx, x, crop_height, crop_width):
    _check(ctx, x)
    top, bottom = ints(crop_height)
    left, right = ints(crop_width)
    h, w = np.shape(x)[-2:]
    return np.asarray(x)[..., top:h - bottom, left:w - right]


@register("crop_resize")
def crop_resize(ctx, x, roi, target_height=1, target_width=1, normalized_coordinates=False,
                spatial_scale=1.0, box_coordinate_mode="CORNERS_HEIGHT_FIRST",
                sampling_mode="DEFAULT", pad_value=0.0):
    if np.ndim(x) != 4:
        raise ctx.shape_error("x must have rank 4 [B, C, H, W], got shape {}".format(list(np.shape(x))))
    roi = np.asarray(roi)
    if roi.ndim != 5 or roi.shape[2] not in (4, 5):
        raise ctx.shape_error("roi must have shape [N, 1, 4 or 5, 1, 1], got {}".format(list(roi.shape)))
    mode = str(scalar(sampling_mode))
    if mode not in kernels.CROP_SAMPLING:
        raise ctx.unsupported("sampling_mode {!r}".format(mode))
    return kernels.crop_resize(x, roi.reshape(roi.shape[0], -1), int(scalar(target_height)),
                               int(scalar(target_width)), mode, str(scalar(box_coordinate_mode)),
                               bool(scalar(normalized_coordinates)), float(scalar(spatial_scale)))
