"""NeuralNetwork evaluator: resizing (coreml_reference/neuralnetwork/layers/resize.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import pytest

from nn_helpers import (F, check, coreml_reference, n, network, randn, t, torch)


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
