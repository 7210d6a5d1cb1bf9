"""NeuralNetwork evaluator: resizing (coreml_reference/neuralnetwork/layers/resize.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from nn_helpers import (F, check, coreml_reference, n, network, randn, t)


@pytest.mark.parametrize("mode,torch_kwargs", [
    ("ALIGN_CORNERS_TRUE", dict(mode="bilinear", align_corners=True)),
    ("ALIGN_CORNERS_FALSE", dict(mode="bilinear", align_corners=False))])
def test_upsample_bilinear(mode, torch_kwargs):
    x = randn(1, 2, 3, 4)
    spec = network({"x": x.shape}, lambda nb: nb.add_upsample(
        "u", 2, 3, "x", "out", mode="BILINEAR", linear_upsample_mode=mode))
    check(spec, {"x": x}, n(F.interpolate(t(x), scale_factor=(2, 3), **torch_kwargs)))


def test_upsample_nearest_and_resize_bilinear():
    x = randn(1, 2, 3, 4)
    spec = network({"x": x.shape}, lambda nb: nb.add_upsample("u", 2, 3, "x", "out"))
    check(spec, {"x": x}, x.repeat(2, axis=2).repeat(3, axis=3))
    spec = network({"x": x.shape}, lambda nb: nb.add_resize_bilinear(
        "r", "x", "out", 5, 7, mode="STRICT_ALIGN_ENDPOINTS_MODE"))
    check(spec, {"x": x}, n(F.interpolate(t(x), size=(5, 7), mode="bilinear", align_corners=True)))


def _bilinear_reference(image, ys, xs):
    """scipy's order-1 spline sampling: an implementation independent of ours."""
    from scipy import ndimage
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([ndimage.map_coordinates(ch.astype(np.float64), [grid_y, grid_x], order=1)
                     for ch in image])


@pytest.mark.parametrize("mode,grid", [
    ("ALIGN_ENDPOINTS_MODE", lambda s, e, n: np.linspace(s, e, n)),
    ("ROI_ALIGN_MODE", lambda s, e, n: s + (np.arange(n) + 0.5) * (e - s) / n)])
def test_crop_resize_samples_the_box(mode, grid):
    x = randn(1, 2, 3, 6, 7)                  # [1, B, C, H, W]
    roi = np.array([[1.0, 0.5, 4.0, 5.5], [0.0, 0.0, 5.0, 6.0]], np.float32).reshape(2, 1, 4, 1, 1)
    spec = network({"x": x.shape, "roi": roi.shape}, lambda nb: nb.add_crop_resize(
        "c", ["x", "roi"], "out", target_height=3, target_width=4, mode=mode))
    got = coreml_reference.predict(spec, {"x": x, "roi": roi})["out"]
    assert got.shape == (2, 2, 3, 3, 4)
    for index, (h0, w0, h1, w1) in enumerate(roi.reshape(2, 4)):
        for b in range(2):
            want = _bilinear_reference(x[0, b], grid(h0, h1, 3), grid(w0, w1, 4))
            np.testing.assert_allclose(got[index, b], want, rtol=1e-5, atol=1e-5)
