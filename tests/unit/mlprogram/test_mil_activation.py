"""ML Program evaluator: activations (coreml_reference/mlprogram/ops/activation.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from mil_helpers import (F, XA, case_list, check_case, mb, positive, randn, t, torch)

CASES, case = case_list()

# activations
ALPHA4 = positive(4, low=0.1, high=0.5)
for name, body, ref in [
    ("relu", lambda x: mb.relu(x=x), lambda x: np.maximum(x, 0)),
    ("relu6", lambda x: mb.relu6(x=x), lambda x: np.clip(x, 0, 6)),
    ("leaky_relu", lambda x: mb.leaky_relu(x=x, alpha=0.1),
     lambda x: F.leaky_relu(t(x), 0.1).numpy()),
    ("sigmoid", lambda x: mb.sigmoid(x=x), lambda x: torch.sigmoid(t(x)).numpy()),
    ("tanh", lambda x: mb.tanh(x=x), np.tanh),
    ("softplus", lambda x: mb.softplus(x=x), lambda x: F.softplus(t(x)).numpy()),
    ("elu", lambda x: mb.elu(x=x, alpha=0.7), lambda x: F.elu(t(x), 0.7).numpy()),
    ("gelu_exact", lambda x: mb.gelu(x=x, mode="EXACT"), lambda x: F.gelu(t(x)).numpy()),
    ("gelu_tanh", lambda x: mb.gelu(x=x, mode="TANH_APPROXIMATION"),
     lambda x: F.gelu(t(x), approximate="tanh").numpy()),
    ("gelu_sigmoid", lambda x: mb.gelu(x=x, mode="SIGMOID_APPROXIMATION"),
     lambda x: x / (1 + np.exp(-1.702 * x))),
    ("silu", lambda x: mb.silu(x=x), lambda x: F.silu(t(x)).numpy()),
    ("clamped_relu", lambda x: mb.clamped_relu(x=x, alpha=0.2, beta=1.5),
     lambda x: np.minimum(np.where(x >= 0, x, 0.2 * x), 1.5)),
    ("thresholded_relu", lambda x: mb.thresholded_relu(x=x, alpha=0.5),
     lambda x: np.where(x >= 0.5, x, 0)),
    ("sigmoid_hard", lambda x: mb.sigmoid_hard(x=x, alpha=0.2, beta=0.5),
     lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    ("scaled_tanh", lambda x: mb.scaled_tanh(x=x, alpha=1.5, beta=0.5),
     lambda x: 1.5 * np.tanh(0.5 * x)),
    ("linear_activation", lambda x: mb.linear_activation(x=x, alpha=1.5, beta=-0.5),
     lambda x: 1.5 * x - 0.5),
    ("softsign", lambda x: mb.softsign(x=x), lambda x: x / (1 + np.abs(x))),
    ("softplus_parametric", lambda x: mb.softplus_parametric(x=x, alpha=ALPHA4, beta=ALPHA4 + 1),
     lambda x: ALPHA4[:, None] * np.log1p(np.exp((ALPHA4[:, None] + 1) * x))),
    ("softmax", lambda x: mb.softmax(x=x, axis=1), lambda x: torch.softmax(t(x), 1).numpy()),
]:
    case(name, {"x": XA}, body, ref)
case("prelu", {"x": randn(2, 4, 3, 5)}, lambda x: mb.prelu(x=x, alpha=ALPHA4),
     lambda x: F.prelu(t(x), t(ALPHA4)).numpy())


@pytest.mark.parametrize("inputs,body,expected,opset,fp16", CASES)
def test_op(tmp_path, inputs, body, expected, opset, fp16):
    check_case(tmp_path, inputs, body, expected, opset, fp16)
