"""upsample (nearest / bilinear, integer or fractional factors) and resizeBilinear, on the
last two axes; grids follow the proto's formulas for each mode."""
from __future__ import annotations

import numpy as np

from coreml_reference import kernels
from coreml_reference.neuralnetwork.layers.registry import register, require_rank

DEFAULT, ALIGN_CORNERS_TRUE, ALIGN_CORNERS_FALSE = 0, 1, 2


@register("upsample")
def upsample(ctx, p, inputs):
    x = inputs[0]
    require_rank(x, 3, ctx)
    h, w = x.shape[-2:]
    if len(p.fractionalScalingFactor):
        fh, fw = (float(v) for v in p.fractionalScalingFactor)
    else:
        fh, fw = (float(v) for v in (list(p.scalingFactor) or [1, 1]))
    oh, ow = int(np.floor(h * fh)), int(np.floor(w * fw))
    if p.mode == 0:    # NN: output i reads input floor(i / factor)
        rows = np.minimum((np.arange(oh) / fh).astype(np.int64), h - 1)
        cols = np.minimum((np.arange(ow) / fw).astype(np.int64), w - 1)
        return x[..., rows[:, None], cols[None, :]]
    grid_h = _upsample_grid(h, oh, p.linearUpsampleMode)
    grid_w = _upsample_grid(w, ow, p.linearUpsampleMode)
    return interpolate(x, grid_h, grid_w)


def _upsample_grid(size_in, size_out, mode):
    i = np.arange(size_out, dtype=np.float64)
    if mode == ALIGN_CORNERS_TRUE:
        spacing = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
        grid = i * spacing
    elif mode == ALIGN_CORNERS_FALSE:
        spacing = size_in / size_out
        grid = i * spacing + 0.5 * spacing - 0.5
    else:
        spacing = (size_in - size_in / size_out) / (size_out - 1) if size_out > 1 else 0.0
        grid = i * spacing
    return np.clip(grid, 0, size_in - 1)


@register("resizeBilinear")
def resize_bilinear(ctx, p, inputs):
    x = inputs[0]
    require_rank(x, 3, ctx)
    oh, ow = (int(v) for v in (list(p.targetSize) or [1, 1]))
    method = p.mode.samplingMethod
    h, w = x.shape[-2:]
    return interpolate(x, _sampling_grid(h, oh, method), _sampling_grid(w, ow, method))


def _sampling_grid(size_in, n, method):
    """SamplingMode methods, written as the proto's linspace recipes."""
    if method == 0:                                  # STRICT_ALIGN_ENDPOINTS
        grid = np.linspace(0, size_in - 1, n)
    elif method == 1:                                # ALIGN_ENDPOINTS
        grid = np.full(n, (size_in - 1) / 2.0) if n == 1 else np.linspace(0, size_in - 1, n)
    elif method == 2:                                # UPSAMPLE
        grid = np.linspace(0, size_in - size_in / n, n)
    else:                                            # ROI_ALIGN
        spacing = max(1, size_in - 1) / n
        grid = np.linspace(0.5 * spacing, 0.5 * spacing + (n - 1) * spacing, n)
    return np.clip(grid, 0, size_in - 1)


def interpolate(x, grid_h, grid_w):
    """Separable linear interpolation of the last two axes at fractional positions."""
    x = _lerp(x, grid_h, axis=-2)
    return _lerp(x, grid_w, axis=-1)


def _lerp(x, grid, axis):
    size = x.shape[axis]
    low = np.floor(grid).astype(np.int64)
    high = np.minimum(low + 1, size - 1)
    frac = (grid - low).astype(np.float32)
    a = np.take(x, low, axis=axis)
    b = np.take(x, high, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = len(grid)
    frac = frac.reshape(shape)
    return a + (b - a) * frac


_CROP_SAMPLING = {0: "STRICT_ALIGN_CORNERS", 1: "ALIGN_CORNERS", 2: "DEFAULT", 3: "OFFSET_CORNERS"}


@register("cropResize")
def crop_resize(ctx, p, inputs):
    """[1, B, C, H, W] image blob and [N, 1, 4 or 5, 1, 1] boxes -> [N, B (or 1), C, h, w];
    the crop and bilinear sampling are the shared kernel's (the MIL crop_resize op's)."""
    x, roi = inputs[0], inputs[1]
    if x.ndim != 5 or x.shape[0] != 1:
        raise ctx.shape_error("input must have shape [1, B, C, H, W], got {}".format(list(x.shape)))
    if roi.ndim != 5 or roi.shape[2] not in (4, 5):
        raise ctx.shape_error("roi must have shape [N, 1, 4 or 5, 1, 1], got {}".format(list(roi.shape)))
    out_h, out_w = (int(v) for v in (list(p.targetSize) or [1, 1]))
    mode = _CROP_SAMPLING.get(p.mode.samplingMethod)
    if mode is None:
        raise ctx.unsupported("sampling method {}".format(p.mode.samplingMethod))
    box_mode = kernels.BOX_MODES[p.boxIndicesMode.boxMode]
    return kernels.crop_resize(x[0], roi.reshape(roi.shape[0], -1), out_h, out_w, mode, box_mode,
                               p.normalizedCoordinates, p.spatialScale or 1.0)
