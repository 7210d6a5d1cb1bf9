"""ML Program evaluator: resizing (coreml_reference/mlprogram/ops/resize.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from mil_helpers import (case_list, check_case, F, f16exact, mb, randn, RNG, t)

CASES, case = case_list()

# resizing
XR = randn(1, 2, 3, 4)
case("upsample_nearest", {"x": XR},
     lambda x: mb.upsample_nearest_neighbor(x=x, scale_factor_height=2, scale_factor_width=3),
     lambda x: F.interpolate(t(x), scale_factor=(2, 3), mode="nearest").numpy())
case("resize_nearest", {"x": XR},
     lambda x: mb.resize_nearest_neighbor(x=x, target_size_height=5, target_size_width=7),
     lambda x: F.interpolate(t(x), size=(5, 7), mode="nearest").numpy())
case("upsample_bilinear_align", {"x": XR},
     lambda x: mb.upsample_bilinear(x=x, scale_factor_height=2, scale_factor_width=2,
                                    align_corners=True),
     lambda x: F.interpolate(t(x), scale_factor=2, mode="bilinear", align_corners=True).numpy())
case("upsample_bilinear_half_pixel", {"x": XR},
     lambda x: mb.upsample_bilinear(x=x, scale_factor_height=2, scale_factor_width=3,
                                    align_corners=False),
     lambda x: F.interpolate(t(x), scale_factor=(2, 3), mode="bilinear",
                             align_corners=False).numpy())
case("resize_bilinear_align", {"x": XR},
     lambda x: mb.resize_bilinear(x=x, target_size_height=5, target_size_width=7,
                                  sampling_mode="STRICT_ALIGN_CORNERS"),
     lambda x: F.interpolate(t(x), size=(5, 7), mode="bilinear", align_corners=True).numpy())
case("resize_bilinear_unalign", {"x": XR},
     lambda x: mb.resize_bilinear(x=x, target_size_height=5, target_size_width=7,
                                  sampling_mode="UNALIGN_CORNERS"),
     lambda x: F.interpolate(t(x), size=(5, 7), mode="bilinear", align_corners=False).numpy())


def _tf_default_resize(x, out_h, out_w):
    # TF ResizeBilinear(align_corners=False, half_pixel_centers=False): src = i * in / out
    def axis(n_in, n_out):
        g = np.minimum(np.arange(n_out) * n_in / n_out, n_in - 1)
        lo = np.floor(g).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), g - lo
    (r0, r1, fr), (c0, c1, fc) = axis(x.shape[-2], out_h), axis(x.shape[-1], out_w)
    rows = x[..., r0, :] * (1 - fr[:, None]) + x[..., r1, :] * fr[:, None]
    return (rows[..., c0] * (1 - fc) + rows[..., c1] * fc).astype(np.float32)


case("resize_bilinear_default", {"x": XR},
     lambda x: mb.resize_bilinear(x=x, target_size_height=5, target_size_width=7),
     lambda x: _tf_default_resize(x, 5, 7))
case("crop", {"x": randn(1, 2, 6, 7)},
     lambda x: mb.crop(x=x, crop_height=[1, 2], crop_width=[0, 3]),
     lambda x: x[..., 1:4, 0:4])


def _crop_reference(x, boxes, out_h, out_w):
    """ALIGN_CORNERS crops sampled with scipy's order-1 splines (independent of ours)."""
    from scipy import ndimage
    out = []
    for h0, w0, h1, w1 in boxes:
        gy, gx = np.meshgrid(np.linspace(h0, h1, out_h), np.linspace(w0, w1, out_w), indexing="ij")
        out.append([[ndimage.map_coordinates(ch.astype(np.float64), [gy, gx], order=1) for ch in image]
                    for image in x])
    return np.asarray(out, np.float32)


XC = randn(2, 3, 6, 7)
BOXES = np.array([[1.0, 0.5, 4.0, 5.5], [4.0, 6.0, 0.0, 1.0]], np.float32)   # the second flips
case("crop_resize_align_corners", {"x": XC},
     lambda x: mb.crop_resize(x=x, roi=BOXES.reshape(2, 1, 4, 1, 1), target_height=3, target_width=4,
                              sampling_mode="ALIGN_CORNERS"),
     lambda x: _crop_reference(x, BOXES, 3, 4), fp16=False)


XN = randn(1, 2, 3, 5)
# fractional scales: output i reads input floor(i * in / out) (5 -> 3 columns: 0, 1, 3)
case("upsample_nearest_fractional", {"x": XN},
     lambda x: mb.upsample_nearest_neighbor(x=x, scale_factor_height=1.5, scale_factor_width=0.67),
     lambda x: x[..., [0, 0, 1, 2], :][..., [0, 1, 3]])
# iOS17 resize: nearest to the DEFAULT grid i * in / out, rounded (3 -> 4 rows: 0, 1, 2, 2)
case("resize_nearest_ios17", {"x": XN},
     lambda x: mb.resize(x=x, shape=np.array([4, 0], np.int32), resized_dims=np.uint32(2),
                         interpolation_mode="NEAREST_NEIGHBOR", sampling_mode="DEFAULT"),
     lambda x: x[..., [0, 1, 2, 2], :], opset="iOS17")
case("resize_linear_ios17_align", {"x": XN},
     lambda x: mb.resize(x=x, shape=np.array([5, 9], np.int32), resized_dims=np.uint32(2),
                         interpolation_mode="LINEAR", sampling_mode="ALIGN_CORNERS"),
     lambda x: F.interpolate(t(x), size=(5, 9), mode="bilinear", align_corners=True).numpy(),
     opset="iOS17")
# iOS17 crop_resize: boxes on chosen images; samples outside the image read pad_value
BOX17 = np.array([[1.0, 0.5, 4.0, 3.5], [-1.0, 0.0, 1.0, 2.0]], np.float32)


def _crop17(x):
    from scipy import ndimage
    out = []
    for (h0, w0, h1, w1), image in zip(BOX17, (0, 0)):
        gy, gx = np.meshgrid(np.linspace(h0, h1, 3), np.linspace(w0, w1, 2), indexing="ij")
        inside = (gy >= 0) & (gy <= x.shape[2] - 1) & (gx >= 0) & (gx <= x.shape[3] - 1)
        out.append([np.where(inside, ndimage.map_coordinates(ch.astype(np.float64), [gy, gx], order=1,
                                                               mode="nearest"), -7.0)
                    for ch in x[image]])
    return np.asarray(out, np.float32)


case("crop_resize_ios17_pad", {"x": randn(1, 2, 6, 5)},
     lambda x: mb.crop_resize(x=x, boxes=BOX17, box_indices=np.array([0, 0], np.int32),
                              target_height=3, target_width=2, sampling_mode="ALIGN_CORNERS",
                              pad_value=np.float32(-7.0)),
     _crop17, opset="iOS17", fp16=False)


# resample / affine: torch's grid_sample is the reference. Its "zeros" padding with the image
# shifted by v is constant padding with v; its "reflection" mirrors at the corner pixels'
# centres when align_corners, else at their outer edges: Core ML's "reflection" and "symmetric".
XS = randn(2, 3, 4, 5)
GRID = f16exact(RNG.uniform(-1.4, 1.4, (2, 3, 6, 2)))      # (x, y) in [-1, 1], some outside


def _grid_sample(x, grid, mode="bilinear", padding="zeros", align=True, pad_value=0.0):
    out = F.grid_sample(t(x - pad_value), t(grid), mode=mode, padding_mode=padding,
                        align_corners=align)
    return out.numpy() + pad_value


def _resample(coords, sampling="bilinear", padding="constant", pad_value=0.0,
              coordinates_mode="normalized_minus_one_to_one", align=True):
    return lambda x: mb.resample(x=x, coordinates=coords, sampling_mode=sampling,
                                 padding_mode=padding, padding_value=np.float32(pad_value),
                                 coordinates_mode=coordinates_mode, align_corners=align)


for align in (True, False):
    case("resample_bilinear_constant_align_{}".format(align), {"x": XS},
         _resample(GRID, pad_value=-2.5, align=align),
         lambda x, a=align: _grid_sample(x, GRID, align=a, pad_value=-2.5))
    case("resample_bilinear_border_align_{}".format(align), {"x": XS},
         _resample(GRID, padding="border", align=align),
         lambda x, a=align: _grid_sample(x, GRID, padding="border", align=a))
    case("resample_nearest_constant_align_{}".format(align), {"x": XS},
         _resample(GRID, sampling="nearest", align=align),
         lambda x, a=align: _grid_sample(x, GRID, mode="nearest", align=a), fp16=False)
FAR = f16exact(RNG.uniform(-4.0, 4.0, (2, 3, 6, 2)))        # several reflections away
case("resample_reflection", {"x": XS}, _resample(FAR, padding="reflection", align=True),
     lambda x: _grid_sample(x, FAR, padding="reflection", align=True))
case("resample_symmetric", {"x": XS}, _resample(FAR, padding="symmetric", align=False),
     lambda x: _grid_sample(x, FAR, padding="reflection", align=False))
# the other coordinate frames, mapped to [-1, 1] by hand: [0, 1] -> 2c - 1; pixels (align):
# 2p / (size - 1) - 1
case("resample_zero_to_one", {"x": XS},
     _resample((GRID + 1) / 2, coordinates_mode="normalized_zero_to_one", align=False),
     lambda x: _grid_sample(x, GRID, align=False))
PIXELS = (GRID + 1) / 2 * np.array([4, 3], np.float32)      # (x, y) in pixels of a 5 x 4 image
case("resample_unnormalized", {"x": XS},
     _resample(PIXELS, padding="border", coordinates_mode="unnormalized", align=False),
     lambda x: _grid_sample(x, GRID, padding="border", align=True))
case("resample_int_coordinates", {"x": XS},
     _resample(np.array([[[[0, 0], [4, 3], [2, 1], [7, -1]]]] * 2, np.int32),
               coordinates_mode="unnormalized"),
     lambda x: np.stack([x[:, :, 0, 0], x[:, :, 3, 4], x[:, :, 1, 2], np.zeros((2, 3))],
                        -1)[:, :, None, :])

THETA = f16exact(RNG.uniform(-1.2, 1.2, (2, 6)))


def _affine(x, theta, out_h, out_w):
    grid = F.affine_grid(t(theta.reshape(-1, 2, 3)).expand(len(x), 2, 3),
                         (len(x), x.shape[1], out_h, out_w), align_corners=True)
    return F.grid_sample(t(x), grid, align_corners=True).numpy()


for rows in (1, 2):
    case("affine_{}_matrices".format(rows), {"x": XS},
         lambda x, r=rows: mb.affine(x=x, transform_matrix=THETA[:r], output_height=3,
                                     output_width=7, sampling_mode="bilinear",
                                     padding_mode="constant", padding_value=np.float32(0.0),
                                     coordinates_mode="normalized_minus_one_to_one",
                                     align_corners=True),
         lambda x, r=rows: _affine(x, THETA[:r], 3, 7))


# iOS16 crop_resize: roi form plus pad_value; samples outside [0, H-1] x [0, W-1] read it.
# Normalized boxes scale by (H-1, W-1): [h0, w0, h1, w1] below -> rows 0.5..7.5 of an 8-row
# image (the last two rows are outside), columns 4 -> 1 (backwards, all inside); the second
# box starts left of the image (columns -1.2 .. 4.8, the first column outside).
ROI16 = np.array([[0.1, 0.8, 1.5, 0.2], [0.0, -0.2, 1.0, 0.8]], np.float32)   # every image


def _crop16(x):
    # torch grid_sample (align_corners=True: -1 / +1 are the centres of the edge pixels) for
    # the inside samples; the outside ones are masked to the pad value by hand
    h, w = x.shape[-2:]
    out = []
    for h0, w0, h1, w1 in ROI16:
        ys = np.linspace(h0, h1, 4) * (h - 1)
        xs = np.linspace(w0, w1, 3) * (w - 1)
        gy, gx = np.meshgrid(ys, xs, indexing="ij")
        grid = np.stack([2 * gx / (w - 1) - 1, 2 * gy / (h - 1) - 1], -1)[None].astype(np.float32)
        grid = np.repeat(grid, len(x), axis=0)
        crop = F.grid_sample(t(x), t(grid), mode="bilinear", padding_mode="border",
                             align_corners=True).numpy()
        inside = (gy >= 0) & (gy <= h - 1) & (gx >= 0) & (gx <= w - 1)
        out.append(np.where(inside, crop, np.float32(-3.0)))
    return np.asarray(out, np.float32)


case("crop_resize_ios16_pad", {"x": randn(2, 3, 6, 7)},
     lambda x: mb.crop_resize(x=x, roi=ROI16.reshape(2, 1, 4, 1, 1), target_height=4, target_width=3,
                              normalized_coordinates=True, sampling_mode="ALIGN_CORNERS",
                              pad_value=np.float32(-3.0)),
     _crop16, opset="iOS16")


@pytest.mark.parametrize("inputs,body,expected,opset,fp16", CASES)
def test_op(tmp_path, inputs, body, expected, opset, fp16):
    check_case(tmp_path, inputs, body, expected, opset, fp16)
