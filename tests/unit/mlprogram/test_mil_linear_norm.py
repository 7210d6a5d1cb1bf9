"""ML Program evaluator: normalisation and linear algebra
(coreml_reference/mlprogram/ops/linear_norm.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from mil_helpers import (F, X4, XA, case_list, check_case, mb, positive, randn, t)

CASES, case = case_list()

# normalisation
MEAN6, VAR6, G6, B6 = randn(6), positive(6), randn(6), randn(6)
case("batch_norm", {"x": X4},
     lambda x: mb.batch_norm(x=x, mean=MEAN6, variance=VAR6, gamma=G6, beta=B6, epsilon=1e-3),
     lambda x: F.batch_norm(t(x), t(MEAN6), t(VAR6), t(G6), t(B6), eps=1e-3).numpy())
case("instance_norm", {"x": X4}, lambda x: mb.instance_norm(x=x, gamma=G6, beta=B6),
     lambda x: F.instance_norm(t(x), weight=t(G6), bias=t(B6)).numpy())
G_LN, B_LN = randn(9, 11), randn(9, 11)
case("layer_norm", {"x": X4}, lambda x: mb.layer_norm(x=x, axes=[2, 3], gamma=G_LN, beta=B_LN),
     lambda x: F.layer_norm(t(x), (9, 11), t(G_LN), t(B_LN)).numpy())
case("l2_norm", {"x": X4}, lambda x: mb.l2_norm(x=x, epsilon=1e-6),
     lambda x: x / np.sqrt(np.sum(x.reshape(2, -1) ** 2, axis=1) + 1e-6).reshape(2, 1, 1, 1))
case("local_response_norm", {"x": X4}, lambda x: mb.local_response_norm(x=x, size=3),
     lambda x: F.local_response_norm(t(x), 3, alpha=1e-4, beta=0.75, k=1.0).numpy())

# linear algebra
W_LIN, B_LIN = randn(7, 5, scale=0.5), randn(7)
case("linear", {"x": XA}, lambda x: mb.linear(x=x, weight=W_LIN, bias=B_LIN),
     lambda x: x @ W_LIN.T + B_LIN)
case("linear_no_bias", {"x": XA}, lambda x: mb.linear(x=x, weight=W_LIN),
     lambda x: x @ W_LIN.T)
case("matmul_broadcast", {"x": randn(2, 3, 4, 5), "y": randn(3, 5, 6)},
     lambda x, y: mb.matmul(x=x, y=y), lambda x, y: np.matmul(x, y))
case("matmul_transposes", {"x": randn(3, 5, 4), "y": randn(3, 6, 5)},
     lambda x, y: mb.matmul(x=x, y=y, transpose_x=True, transpose_y=True),
     lambda x, y: np.swapaxes(x, -1, -2) @ np.swapaxes(y, -1, -2))
case("einsum", {"x": randn(2, 3, 4, 5), "y": randn(2, 5, 4, 6)},
     lambda x, y: mb.einsum(values=(x, y), equation="nchw,nwhr->nchr"),
     lambda x, y: np.einsum("nchw,nwhr->nchr", x, y))


@pytest.mark.parametrize("inputs,body,expected,opset,fp16", CASES)
def test_op(tmp_path, inputs, body, expected, opset, fp16):
    check_case(tmp_path, inputs, body, expected, opset, fp16)
