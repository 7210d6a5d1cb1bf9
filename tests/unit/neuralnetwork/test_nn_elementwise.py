"""NeuralNetwork evaluator: elementwise (coreml_reference/neuralnetwork/layers/elementwise.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from nn_helpers import (ShapeError, check, coreml_reference, network, randn)


@pytest.mark.parametrize("mode,reference", [("ADD", np.add), ("MULTIPLY", np.multiply),
                                            ("MAX", np.maximum), ("MIN", np.minimum),
                                            ("AVE", lambda a, b: (a + b) / 2)])
def test_old_elementwise_same_shape(mode, reference):
    a, b = randn(2, 3, 4, 5), randn(2, 3, 4, 5)
    spec = network({"a": a.shape, "b": b.shape},
                   lambda nb: nb.add_elementwise("e", ["a", "b"], "out", mode))
    check(spec, {"a": a, "b": b}, reference(a, b))


@pytest.mark.parametrize("other", [(2, 1, 1, 1), (2, 3, 1, 1), (2, 1, 4, 5)])
def test_old_average_allowed_broadcasts(other):
    a, b = randn(2, 3, 4, 5), randn(*other)
    spec = network({"a": a.shape, "b": b.shape}, lambda nb: nb.add_elementwise("e", ["a", "b"], "out", "AVE"))
    check(spec, {"a": a, "b": b}, (a + b) / 2)


@pytest.mark.parametrize("other", [(2, 3, 4, 1), (2, 3, 1, 5), (1, 3, 4, 5)])
def test_old_average_rejects_other_broadcasts(other):
    a, b = randn(2, 3, 4, 5), randn(*other)
    spec = network({"a": a.shape, "b": b.shape}, lambda nb: nb.add_elementwise("e", ["a", "b"], "out", "AVE"))
    with pytest.raises(ShapeError, match=r"cannot broadcast \[2, 3, 4, 5\] and"):
        coreml_reference.predict(spec, {"a": a, "b": b})


@pytest.mark.parametrize("mode,reference", [("ADD", np.add), ("MULTIPLY", np.multiply)])
@pytest.mark.parametrize("shapes", [((1,), (1, 3, 1)), ((2, 3, 4, 5), (2, 3, 4, 1)),
                                    ((1, 3, 4, 5), (2, 1, 1, 5))])
def test_old_add_and_multiply_broadcast_like_numpy(mode, reference, shapes):
    a, b = randn(*shapes[0]), randn(*shapes[1])
    spec = network({"a": a.shape, "b": b.shape}, lambda nb: nb.add_elementwise("e", ["a", "b"], "out", mode))
    check(spec, {"a": a, "b": b}, reference(a, b))


def test_old_add_rejects_shapes_numpy_rejects():
    a, b = randn(1, 1024, 3), randn(1, 1025, 2)
    spec = network({"a": a.shape, "b": b.shape}, lambda nb: nb.add_elementwise("e", ["a", "b"], "out", "ADD"))
    with pytest.raises(ShapeError, match=r"cannot broadcast \[1, 1024, 3\] and \[1, 1025, 2\]"):
        coreml_reference.predict(spec, {"a": a, "b": b})


def test_old_add_and_multiply_with_alpha():
    x = randn(3, 4)
    spec = network({"x": x.shape}, lambda nb: nb.add_elementwise("e", ["x"], "out", "ADD", alpha=2.5))
    check(spec, {"x": x}, x + 2.5)
    spec = network({"x": x.shape}, lambda nb: nb.add_elementwise("e", ["x"], "out", "MULTIPLY", alpha=-3))
    check(spec, {"x": x}, x * -3)


BROADCASTABLE = [("add", np.add), ("subtract", np.subtract), ("multiply", np.multiply),
                 ("divide", np.divide), ("max", np.maximum), ("min", np.minimum),
                 ("pow", np.power)]


@pytest.mark.parametrize("op,reference", BROADCASTABLE, ids=[o for o, _ in BROADCASTABLE])
def test_broadcastable_binary(op, reference):
    a, b = randn(2, 1, 4), randn(3, 1)
    if op == "pow":
        a = np.abs(a) + 0.5
    elif op == "divide":
        b = np.abs(b) + 0.5
    spec = network({"a": a.shape, "b": b.shape},
                   lambda nb: getattr(nb, "add_{}_broadcastable".format(op))("op", ["a", "b"], "out"))
    check(spec, {"a": a, "b": b}, reference(a, b))


def test_add_broadcastable_rejects_incompatible_shapes():
    a, b = randn(21, 1024), randn(20, 1025)
    spec = network({"a": a.shape, "b": b.shape}, lambda nb: nb.add_add_broadcastable("sum", ["a", "b"], "out"))
    with pytest.raises(ShapeError, match=r"cannot broadcast \[21, 1024\] and \[20, 1025\]") as info:
        coreml_reference.predict(spec, {"a": a, "b": b})
    assert "'sum'" in str(info.value)


def test_scale_and_bias_layers():
    x = randn(2, 3, 4, 5)
    s, b = randn(3), randn(1, 4, 5)
    spec = network({"x": x.shape}, lambda nb: nb.add_scale(
        "s", s, b, True, "x", "out", shape_scale=[3], shape_bias=[1, 4, 5]))
    check(spec, {"x": x}, x * s.reshape(3, 1, 1) + b)


@pytest.mark.parametrize("mode,reference", [("MAX", np.maximum), ("MIN", np.minimum), ("AVE", None)])
def test_old_elementwise_keeps_the_input_rank(mode, reference):
    a, b = randn(2, 3), randn(2, 3)
    spec = network({"a": a.shape, "b": b.shape}, lambda nb: nb.add_elementwise("e", ["a", "b"], "out", mode))
    check(spec, {"a": a, "b": b}, reference(a, b) if reference else (a + b) / 2)
