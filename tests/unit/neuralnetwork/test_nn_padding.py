"""NeuralNetwork evaluator: padding (coreml_reference/neuralnetwork/layers/padding.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from nn_helpers import (F, check, n, network, randn, t)


@pytest.mark.parametrize("kind,torch_mode", [("constant", "constant"), ("reflection", "reflect"),
                                             ("replication", "replicate")])
def test_padding_last_two_axes(kind, torch_mode):
    x = randn(1, 2, 5, 6)
    spec = network({"x": x.shape}, lambda nb: nb.add_padding(
        "p", left=2, right=1, top=0, bottom=3, value=0.5, input_name="x", output_name="out",
        padding_type=kind))
    kwargs = {"value": 0.5} if kind == "constant" else {}
    check(spec, {"x": x}, n(F.pad(t(x), (2, 1, 0, 3), mode=torch_mode, **kwargs)))


def test_constant_pad_reads_one_pair_per_axis():
    x = randn(1, 4, 3)
    spec = network({"x": x.shape}, lambda nb: nb.add_constant_pad(
        "cp", ["x"], "out", value=-1.0, pad_amounts=[0, 0, 1, 0, 0, 1]))
    # pairs (begin, end) per axis: axis 1 gets 1 before, axis 2 gets 1 after
    check(spec, {"x": x}, np.pad(x, ((0, 0), (1, 0), (0, 1)), constant_values=-1.0))
