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


def _int8_weights(shape):
    w = np.random.RandomState(1).uniform(-10, 10, shape)
    scale = np.abs(w).max() / 127.0
    return np.round(w / scale).astype(np.int8), scale


@pytest.mark.parametrize("layer", ["innerProduct", "batchedMatmul"])
def test_int8_dynamic_quantize(layer):
    """Int8 weights times a run-time int8 quantization of the input. An input already on an
    int8 grid loses nothing, so it must match the float product of the dequantized weights
    (torch); any input must stay within Apple's test's 40 dB SNR."""
    codes, scale = _int8_weights((6, 5))                      # [C_out, C_in]
    dense = torch.from_numpy(codes.astype(np.float32) * np.float32(scale))

    def build(nb):
        if layer == "innerProduct":
            nb.add_inner_product("q", W=codes.tobytes(), b=None, input_channels=5, output_channels=6,
                                 has_bias=False, input_name="x", output_name="out",
                                 int_8_dynamic_quantize=True, is_quantized_weight=True,
                                 quantization_type="linear", nbits=8,
                                 quant_scale=np.array([scale]))
        else:   # [X1, X2] stored column-major: the transposed codes
            nb.add_batched_mat_mul("q", ["x"], "out", weight_matrix_rows=5, weight_matrix_columns=6,
                                   W=np.ascontiguousarray(codes.T).tobytes(),
                                   int_8_dynamic_quantize=True, is_quantized_weight=True,
                                   quantization_type="linear", nbits=8,
                                   quant_scale=np.array([scale]))
    spec = network({"x": (3, 5)}, build)
    on_grid = (np.array([-127, -90, -33, -1, 0, 2, 17, 40, 64, 77, 99, 100, 113, 120, 127])
               .reshape(3, 5) * 0.01).astype(np.float32)     # max |x| / 127 = 0.01: the grid step
    want = torch.nn.functional.linear(torch.from_numpy(on_grid), dense).numpy()
    got = coreml_reference.predict(spec, {"x": on_grid})["out"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)

    x = randn(3, 5)
    want = torch.nn.functional.linear(torch.from_numpy(x), dense).numpy()
    got = coreml_reference.predict(spec, {"x": x})["out"]
    snr = 10 * np.log10(np.sum(want ** 2) / np.sum((got - want) ** 2))
    assert snr > 40, snr
