"""NeuralNetwork evaluator: matrix products (coreml_reference/neuralnetwork/layers/matmul.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from nn_helpers import (ShapeError, check, coreml_reference, network, randn, torch)


@pytest.mark.parametrize("shape,out_shape", [((4, 6), (4, 5)), ((2, 3, 6), (2, 3, 5)),
                                             ((2, 6, 1, 1), (2, 5, 1, 1)),
                                             ((2, 3, 6, 1, 1), (2, 3, 5, 1, 1))])
def test_inner_product_ranks(shape, out_shape):
    x = randn(*shape)
    w, b = randn(5, 6), randn(5)
    spec = network({"x": shape}, lambda nb: nb.add_inner_product(
        "fc", w, b, 6, 5, True, "x", "out"))
    expected = (x.reshape(-1, 6) @ w.T + b).reshape(out_shape)
    check(spec, {"x": x}, expected)


def test_batched_matmul_weights_and_two_inputs():
    x = randn(2, 3, 6)
    w, b = randn(6, 4), randn(4)
    spec = network({"x": x.shape}, lambda nb: nb.add_batched_mat_mul(
        "mm", ["x"], "out", weight_matrix_rows=6, weight_matrix_columns=4, W=w, bias=b))
    check(spec, {"x": x}, x @ w + b)
    a, c = randn(2, 1, 3, 4), randn(5, 6, 4)
    spec = network({"a": a.shape, "c": c.shape}, lambda nb: nb.add_batched_mat_mul(
        "mm", ["a", "c"], "out", transpose_b=True))
    check(spec, {"a": a, "c": c}, np.matmul(a, np.swapaxes(c, -1, -2)))


def test_batched_matmul_rejects_mismatch():
    a, c = randn(3, 4), randn(5, 6)
    spec = network({"a": a.shape, "c": c.shape}, lambda nb: nb.add_batched_mat_mul("mm", ["a", "c"], "out"))
    with pytest.raises(ShapeError, match=r"\[3, 4\] and \[5, 6\]"):
        coreml_reference.predict(spec, {"a": a, "c": c})
