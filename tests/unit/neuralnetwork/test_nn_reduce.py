"""NeuralNetwork evaluator: reduce (coreml_reference/neuralnetwork/layers/reduce.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from nn_helpers import (check, network, randn)


@pytest.mark.parametrize("name,reference", [
    ("sum", np.sum), ("mean", np.mean), ("max", np.max), ("min", np.min), ("prod", np.prod),
    ("l1", lambda x, axis, keepdims: np.abs(x).sum(axis=axis, keepdims=keepdims)),
    ("l2", lambda x, axis, keepdims: np.sqrt((x ** 2).sum(axis=axis, keepdims=keepdims))),
    ("sumsquare", lambda x, axis, keepdims: (x ** 2).sum(axis=axis, keepdims=keepdims)),
    ("logsumexp", lambda x, axis, keepdims: np.log(np.exp(x).sum(axis=axis, keepdims=keepdims)))])
@pytest.mark.parametrize("axes,keepdims", [([1], True), ([-1, 0], False)])
def test_reduce_nd(name, reference, axes, keepdims):
    x = randn(3, 4, 5)
    spec = network({"x": x.shape}, lambda nb: getattr(nb, "add_reduce_" + name)(
        "r", "x", "out", axes=axes, keepdims=keepdims))
    check(spec, {"x": x}, reference(x, axis=tuple(axes), keepdims=keepdims))


@pytest.mark.parametrize("axis,axes", [("CHW", (-3, -2, -1)), ("HW", (-2, -1)), ("C", (-3,)),
                                       ("H", (-2,)), ("W", (-1,))])
def test_old_reduce_keeps_rank(axis, axes):
    x = randn(2, 3, 4, 5)
    spec = network({"x": x.shape}, lambda nb: nb.add_reduce("r", "x", "out", axis, "avg"))
    check(spec, {"x": x}, x.mean(axis=axes, keepdims=True))
    spec = network({"x": x.shape}, lambda nb: nb.add_reduce("r", "x", "out", axis, "max"))
    check(spec, {"x": x}, x.max(axis=axes, keepdims=True))
