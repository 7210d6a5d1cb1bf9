"""NeuralNetwork evaluator: unary, clip (coreml_reference/neuralnetwork/layers/unary.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from nn_helpers import (check, network, randn)


UNARY = [("sqrt", {}, lambda x: np.sqrt(np.abs(x) + 0.1), True),
         ("rsqrt", {"epsilon": 1e-4}, lambda x: 1 / np.sqrt(np.abs(x) + 0.1 + 1e-4), True),
         ("inverse", {"epsilon": 1e-4}, lambda x: 1 / (np.abs(x) + 0.1 + 1e-4), True),
         ("power", {"alpha": 3.0}, lambda x: x ** 3, False),
         ("exp", {}, np.exp, False),
         ("log", {}, lambda x: np.log(np.abs(x) + 0.1), True),
         ("log", {"epsilon": 0.5}, lambda x: np.log(np.abs(x) + 0.1 + 0.5), True),
         ("abs", {}, np.abs, False),
         ("threshold", {"alpha": 0.2}, lambda x: np.maximum(x, 0.2), False)]


@pytest.mark.parametrize("mode,kwargs,reference,positive", UNARY,
                         ids=[u[0] + ("-eps" if "epsilon" in u[1] else "") for u in UNARY])
def test_unary(mode, kwargs, reference, positive):
    x = randn(3, 4, 5)
    feed = np.abs(x) + np.float32(0.1) if positive else x
    spec = network({"x": x.shape}, lambda nb: nb.add_unary("u", "x", "out", mode, **kwargs))
    check(spec, {"x": feed}, reference(x))


def test_unary_scale_shift_and_clip():
    x = randn(3, 4)
    spec = network({"x": x.shape}, lambda nb: nb.add_unary("u", "x", "out", "abs", shift=1.0, scale=2.0))
    check(spec, {"x": x}, np.abs(2 * x + 1))
    spec = network({"x": x.shape}, lambda nb: nb.add_clip("c", "x", "out", -0.5, 0.25))
    check(spec, {"x": x}, np.clip(x, -0.5, 0.25))
