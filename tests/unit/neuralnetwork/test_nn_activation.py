"""NeuralNetwork evaluator: activations (coreml_reference/neuralnetwork/layers/activation.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from nn_helpers import (F, check, n, network, randn, t, torch)


ACTIVATIONS = [
    ("RELU", None, lambda x: F.relu(x)),
    ("LEAKYRELU", [0.1], lambda x: F.leaky_relu(x, 0.1)),
    ("SIGMOID", None, torch.sigmoid),
    ("TANH", None, torch.tanh),
    ("SCALED_TANH", [1.5, 0.5], lambda x: 1.5 * torch.tanh(0.5 * x)),
    ("SOFTPLUS", None, F.softplus),
    ("SOFTSIGN", None, F.softsign),
    ("LINEAR", [2.0, -0.5], lambda x: 2.0 * x - 0.5),
    ("SIGMOID_HARD", [0.2, 0.5], lambda x: torch.clamp(0.2 * x + 0.5, 0, 1)),
    ("ELU", 0.7, lambda x: F.elu(x, 0.7)),
    ("THRESHOLDEDRELU", 0.3, lambda x: torch.where(x >= 0.3, x, torch.zeros_like(x))),
    ("PRELU", np.array([0.1, 0.2, 0.3], dtype=np.float32),
     lambda x: F.prelu(x, torch.tensor([0.1, 0.2, 0.3]))),
    ("PARAMETRICSOFTPLUS", [np.array([1.0, 2.0, 0.5], dtype=np.float32),
                            np.array([0.5, 1.0, 2.0], dtype=np.float32)],
     lambda x: torch.tensor([1.0, 2.0, 0.5]).reshape(3, 1, 1)
     * F.softplus(torch.tensor([0.5, 1.0, 2.0]).reshape(3, 1, 1) * x)),
]


@pytest.mark.parametrize("kind,params,reference", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation(kind, params, reference):
    x = randn(2, 3, 4, 5, scale=2)
    spec = network({"x": x.shape}, lambda nb: nb.add_activation("act", kind, "x", "out", params))
    check(spec, {"x": x}, n(reference(t(x))))


@pytest.mark.parametrize("mode,approximate", [("EXACT", "none"), ("TANH_APPROXIMATION", "tanh")])
def test_gelu(mode, approximate):
    x = randn(3, 7, scale=2)
    spec = network({"x": x.shape}, lambda nb: nb.add_gelu("g", "x", "out", mode))
    check(spec, {"x": x}, n(F.gelu(t(x), approximate=approximate)))
