"""NeuralNetwork evaluator: normalisation (coreml_reference/neuralnetwork/layers/norm.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np

import coreml_reference
from nn_helpers import (F, check, n, network, randn, t)


def test_batchnorm_and_instance_norm():
    x = randn(2, 3, 4, 5)
    gamma, beta, mean, var = randn(3), randn(3), randn(3), np.abs(randn(3)) + 0.5
    spec = network({"x": x.shape}, lambda nb: nb.add_batchnorm(
        "bn", 3, gamma, beta, mean, var, input_name="x", output_name="out", epsilon=1e-3))
    expected = F.batch_norm(t(x), t(mean), t(var), t(gamma), t(beta), eps=1e-3)
    check(spec, {"x": x}, n(expected))
    spec = network({"x": x.shape}, lambda nb: nb.add_batchnorm(
        "in", 3, gamma, beta, input_name="x", output_name="out", compute_mean_var=True,
        instance_normalization=True, epsilon=1e-5))
    expected = F.instance_norm(t(x), weight=t(gamma), bias=t(beta), eps=1e-5)
    check(spec, {"x": x}, n(expected))


def test_batchnorm_small_planes_are_the_broadcast_bit_for_bit():
    """A small contiguous plane takes the scale and shift spread over the plane (the speed
    path); a transposed view (what a transpose layer returns) takes the [C, 1, 1]
    broadcast: the same bits."""
    from coreml_reference.neuralnetwork.layers import norm
    c = 40
    gamma, beta, mean, var = randn(c), randn(c), randn(c), np.abs(randn(c)) + 0.5

    def bn(nb, source):
        nb.add_batchnorm("bn", c, gamma, beta, mean, var, input_name=source,
                         output_name="out", epsilon=1e-3)
    x = randn(1, c, 3, 2)
    direct = coreml_reference.load(network({"x": x.shape}, lambda nb: bn(nb, "x")))
    viewed = coreml_reference.load(network({"x": (1, c, 2, 3)}, lambda nb: (
        nb.add_transpose("t", [0, 1, 3, 2], "x", "xt"), bn(nb, "xt"))))
    got = coreml_reference.predict(direct, {"x": x})["out"]
    broadcast = coreml_reference.predict(viewed, {"x": x.transpose(0, 1, 3, 2).copy()})["out"]
    assert "spread" in direct._nn_weight_caches["fp32"][0]                # the speed path ran
    assert "spread" not in viewed._nn_weight_caches["fp32"][1]            # the broadcast ran
    assert np.array_equal(got.view(np.uint32), np.ascontiguousarray(broadcast).view(np.uint32))
    assert 3 * 2 < norm.SHORT_PLANES


def test_layer_norm_mvn_l2_lrn():
    x = randn(2, 3, 4, 5)
    gamma, beta = randn(4, 5), randn(4, 5)
    spec = network({"x": x.shape}, lambda nb: nb.add_layer_normalization(
        "ln", "x", "out", [4, 5], gamma, beta, eps=1e-5))
    check(spec, {"x": x}, n(F.layer_norm(t(x), [4, 5], t(gamma), t(beta), eps=1e-5)))
    spec = network({"x": x.shape}, lambda nb: nb.add_mvn("mvn", "x", "out", False, True, 1e-6))
    centred = x - x.mean(axis=(2, 3), keepdims=True)
    check(spec, {"x": x}, centred / np.sqrt((centred ** 2).mean(axis=(2, 3), keepdims=True) + 1e-6))
    spec = network({"x": x.shape}, lambda nb: nb.add_l2_normalize("l2", "x", "out", 1e-6))
    check(spec, {"x": x}, x / np.sqrt((x ** 2).sum(axis=(1, 2, 3), keepdims=True) + 1e-6))
    spec = network({"x": x.shape}, lambda nb: nb.add_lrn("lrn", "x", "out", 1e-2, 0.75, 3, 2.0))
    check(spec, {"x": x}, n(F.local_response_norm(t(x), 3, alpha=1e-2, beta=0.75, k=2.0)))


def test_softmax_and_softmax_nd():
    x = randn(2, 3, 4, 5, scale=3)
    spec = network({"x": x.shape}, lambda nb: nb.add_softmax("sm", "x", "out"))
    check(spec, {"x": x}, n(F.softmax(t(x), dim=-3)))
    spec = network({"x": x.shape}, lambda nb: nb.add_softmax_nd("sm", "x", "out", axis=-1))
    check(spec, {"x": x}, n(F.softmax(t(x), dim=-1)))
