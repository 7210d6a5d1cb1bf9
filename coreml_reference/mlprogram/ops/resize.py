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


@register("upsample_nearest_neighbor", exact=True)
def upsample_nearest_neighbor(ctx, x, scale_factor_height=1, scale_factor_width=1):
    _check(ctx, x)
    h, w = np.shape(x)[-2:]
    sh, sw = float(scalar(scale_factor_height)), float(scalar(scale_factor_width))
    out_h, out_w = int(math.floor(h * sh)), int(math.floor(w * sw))
    # Output pixel i copies input floor(i * in / out): the same as floor(i / scale) for whole
    # scales; for fractional ones it is what coremltools' own op tests expect.
    return _nearest(x, out_h, out_w, _nearest_source(h, out_h), _nearest_source(w, out_w))


def _nearest_source(n_in, n_out):
    return np.minimum(np.floor(np.arange(n_out) * n_in / n_out).astype(np.int64), n_in - 1)


@register("resize_nearest_neighbor")
def resize_nearest_neighbor(ctx, x, target_size_height, target_size_width):
    _check(ctx, x)
    h, w = np.shape(x)[-2:]
    out_h, out_w = int(scalar(target_size_height)), int(scalar(target_size_width))
    return _nearest(x, out_h, out_w, _nearest_source(h, out_h), _nearest_source(w, out_w))


@register("resize")
def resize(ctx, x, shape, resized_dims, interpolation_mode="LINEAR", sampling_mode="DEFAULT"):
    """iOS17: the last ``resized_dims`` dimensions take their sizes from the end of ``shape``
    (0: keep the input's), by nearest neighbour or separable linear interpolation."""
    x = np.asarray(x)
    target, k = ints(shape), int(scalar(resized_dims))
    if not 0 <= k <= min(len(target), x.ndim):
        raise ctx.shape_error("resized_dims {} for shape {} and input rank {}".format(k, target, x.ndim))
    mode, sampling = str(scalar(interpolation_mode)), str(scalar(sampling_mode))
    for i in range(1, k + 1):
        axis, n_in = x.ndim - i, x.shape[-i]
        n_out = target[-i] or n_in
        if mode == "NEAREST_NEIGHBOR":
            # the input sample nearest to the sampling mode's grid point (coremltools' iOS17
            # resize tests: 2 -> 3 rows reads rows 0, 1, 1)
            source = np.floor(_grid(n_in, n_out, sampling) + 0.5).astype(np.int64)
            x = np.take(x, np.minimum(source, n_in - 1), axis=axis)
        elif mode == "LINEAR":
            x = _lerp_axis(np.asarray(x, np.float32), _grid(n_in, n_out, sampling), axis)
        else:
            raise ctx.unsupported("interpolation_mode {!r}".format(mode))
    return x


@register("crop")
def crop(ctx, x, crop_height, crop_width):
    _check(ctx, x)
    top, bottom = ints(crop_height)
    left, right = ints(crop_width)
    h, w = np.shape(x)[-2:]
    return np.asarray(x)[..., top:h - bottom, left:w - right]


@register("crop_resize")
def crop_resize(ctx, x, roi=None, boxes=None, box_indices=None, target_height=1, target_width=1,
                normalized_coordinates=False, spatial_scale=1.0,
                box_coordinate_mode="CORNERS_HEIGHT_FIRST", sampling_mode="DEFAULT", pad_value=None):
    """iOS15/16: ``roi`` [N, 1, 4 or 5, 1, 1] -> [N, B or 1, C, h, w].
    iOS17: ``boxes`` [N, 4] on images ``box_indices`` (default 0..N-1) -> [N, C, h, w].
    Samples outside the image read ``pad_value`` (iOS16+, default 0); iOS15, which has no
    pad_value input, clamps them to the image edge."""
    if np.ndim(x) != 4:
        raise ctx.shape_error("x must have rank 4 [B, C, H, W], got shape {}".format(list(np.shape(x))))
    mode = str(scalar(sampling_mode))
    if mode not in kernels.CROP_SAMPLING:
        raise ctx.unsupported("sampling_mode {!r}".format(mode))
    common = (int(scalar(target_height)), int(scalar(target_width)), mode,
              str(scalar(box_coordinate_mode)), bool(scalar(normalized_coordinates)),
              float(scalar(spatial_scale)))
    if boxes is not None:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        index = np.arange(len(boxes)) if box_indices is None else np.asarray(box_indices).reshape(-1)
        rows = np.concatenate([index.reshape(-1, 1).astype(np.float64), boxes], axis=1)
        pad = 0.0 if pad_value is None else float(scalar(pad_value))
        return kernels.crop_resize(x, rows, *common, pad_value=pad)[:, 0]
    roi = np.asarray(roi)
    if roi.ndim != 5 or roi.shape[2] not in (4, 5):
        raise ctx.shape_error("roi must have shape [N, 1, 4 or 5, 1, 1], got {}".format(list(roi.shape)))
    # iOS16 added pad_value (coremltools always writes it); only an iOS15 op lacks it
    pad = None if pad_value is None else float(scalar(pad_value))
    return kernels.crop_resize(x, roi.reshape(roi.shape[0], -1), *common, pad_value=pad)


# --- sampling at given points: resample, affine ----------------------------------------------

COORDINATE_MODES = ("unnormalized", "normalized_minus_one_to_one", "normalized_zero_to_one")
PADDING_MODES = ("constant", "border", "reflection", "symmetric")


def _pixel_positions(coords, size, coordinates_mode, align_corners):
    """Coordinates along one axis -> positions in pixels, pixel i's centre at i."""
    c = np.asarray(coords, np.float64)
    if coordinates_mode == "unnormalized":       # already pixels; align_corners does not apply
        return c
    if coordinates_mode == "normalized_minus_one_to_one":
        c = (c + 1) / 2
    # align_corners: the extremes are the corner pixels' centres, else their outer edges.
    return c * (size - 1) if align_corners else c * size - 0.5


def _mirror(p, lo, hi):
    """Positions reflected back and forth into [lo, hi]."""
    span = hi - lo
    if span <= 0:
        return np.full_like(p, lo)
    u = np.abs(p - lo) % (2 * span)
    return lo + np.where(u > span, 2 * span - u, u)


def _padded_positions(p, size, padding_mode):
    """Where a position outside the image reads from; "constant" leaves it outside."""
    if padding_mode == "border":
        return np.clip(p, 0, size - 1)
    if padding_mode == "reflection":             # |1 2 3| -> 3 2 |1 2 3| 2 1: edge not repeated
        return _mirror(p, 0, size - 1)
    if padding_mode == "symmetric":              # |1 2 3| -> 2 1 |1 2 3| 3 2: edge repeated
        return np.clip(_mirror(p, -0.5, size - 0.5), 0, size - 1)
    return p


def _sample_points(image, py, px, sampling_mode, pad):
    """image (C, H, W) read at points (py, px), both (Ho, Wo) -> (C, Ho, Wo); a pixel
    outside the image reads ``pad``."""
    h, w = image.shape[-2:]

    def read(iy, ix):
        inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        return np.where(inside, image[:, np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1)], pad)

    if sampling_mode == "nearest":               # ties to even, as rint
        return read(np.rint(py).astype(np.int64), np.rint(px).astype(np.int64))
    y0, x0 = np.floor(py), np.floor(px)
    fy, fx = py - y0, px - x0
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    return (read(y0, x0) * ((1 - fy) * (1 - fx)) + read(y0, x0 + 1) * ((1 - fy) * fx)
            + read(y0 + 1, x0) * (fy * (1 - fx)) + read(y0 + 1, x0 + 1) * (fy * fx))


def _check_sampling(ctx, x, sampling_mode, padding_mode, coordinates_mode):
    if np.ndim(x) != 4:
        raise ctx.shape_error("x must have rank 4 [B, C, H, W], got shape {}".format(
            list(np.shape(x))))
    modes = str(scalar(sampling_mode)), str(scalar(padding_mode)), str(scalar(coordinates_mode))
    for name, value, allowed in zip(("sampling_mode", "padding_mode", "coordinates_mode"), modes,
                                    (("bilinear", "nearest"), PADDING_MODES, COORDINATE_MODES)):
        if value not in allowed:
            raise ctx.unsupported("{} {!r}".format(name, value))
    return modes


def _resample_image(image, cx, cy, modes, pad, align_corners):
    """One image (C, H, W) sampled at coordinates (cx, cy), each (Ho, Wo)."""
    sampling_mode, padding_mode, coordinates_mode = modes
    h, w = image.shape[-2:]
    px = _padded_positions(_pixel_positions(cx, w, coordinates_mode, align_corners), w, padding_mode)
    py = _padded_positions(_pixel_positions(cy, h, coordinates_mode, align_corners), h, padding_mode)
    return _sample_points(image, py, px, sampling_mode, pad)


@register("resample")
def resample(ctx, x, coordinates, sampling_mode, padding_mode, padding_value, coordinates_mode,
             align_corners):
    """x [B, C, H, W] read at coordinates [B, Ho, Wo, (x, y)] -> [B, C, Ho, Wo]."""
    modes = _check_sampling(ctx, x, sampling_mode, padding_mode, coordinates_mode)
    x, coords = np.asarray(x, np.float32), np.asarray(coordinates)
    if coords.ndim != 4 or coords.shape[-1] != 2 or coords.shape[0] != x.shape[0]:
        raise ctx.shape_error("coordinates must have shape [{}, Ho, Wo, 2], got {}".format(
            x.shape[0], list(coords.shape)))
    pad, align = float(scalar(padding_value)), bool(scalar(align_corners))
    return np.stack([_resample_image(image, c[..., 0], c[..., 1], modes, pad, align)
                     for image, c in zip(x, coords)]).astype(np.float32)


def _output_grid(n, align_corners):
    """Output pixel centres on the normalized [-1, 1] axis."""
    if align_corners:
        return np.linspace(-1.0, 1.0, n)
    return (2 * np.arange(n) + 1) / n - 1


@register("affine")
def affine(ctx, x, transform_matrix, output_height, output_width, sampling_mode, padding_mode,
           padding_value, coordinates_mode, align_corners):
    """Output pixel (x, y) on the normalized grid reads the input at
    (a0 x + a1 y + a2, b0 x + b1 y + b2); matrix rows [a0 a1 a2 b0 b1 b2], one per batch or one."""
    modes = _check_sampling(ctx, x, sampling_mode, padding_mode, coordinates_mode)
    x = np.asarray(x, np.float32)
    matrices = np.asarray(transform_matrix, np.float64)
    if matrices.ndim != 2 or matrices.shape[1] != 6 or len(matrices) not in (1, len(x)):
        raise ctx.shape_error("transform_matrix must have shape [1 or {}, 6], got {}".format(
            len(x), list(matrices.shape)))
    pad, align = float(scalar(padding_value)), bool(scalar(align_corners))
    gy = _output_grid(int(scalar(output_height)), align)[:, None]
    gx = _output_grid(int(scalar(output_width)), align)[None, :]
    out = []
    for b, image in enumerate(x):
        a0, a1, a2, b0, b1, b2 = matrices[b % len(matrices)]
        out.append(_resample_image(image, a0 * gx + a1 * gy + a2, b0 * gx + b1 * gy + b2,
                                   modes, pad, align))
    return np.stack(out).astype(np.float32)
