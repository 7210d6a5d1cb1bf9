"""ML Program evaluator: reductions (coreml_reference/mlprogram/ops/reduction.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from mil_helpers import (XA, case_list, check_case, mb, positive, t, torch)

CASES, case = case_list()

# reductions
for name, ref in [("reduce_mean", np.mean), ("reduce_max", np.max), ("reduce_min", np.min),
                  ("reduce_sum", np.sum), ("reduce_prod", np.prod),
                  ("reduce_l1_norm", lambda x, axis, keepdims: np.sum(
                      np.abs(x), axis, keepdims=keepdims)),
                  ("reduce_l2_norm", lambda x, axis, keepdims: np.sqrt(np.sum(
                      x * x, axis, keepdims=keepdims))),
                  ("reduce_sum_square", lambda x, axis, keepdims: np.sum(
                      x * x, axis, keepdims=keepdims)),
                  ("reduce_log_sum_exp", lambda x, axis, keepdims: torch.logsumexp(
                      t(x), dim=axis, keepdim=keepdims).numpy())]:
    case(name, {"x": XA}, lambda x, n=name: getattr(mb, n)(x=x, axes=[1, -1], keep_dims=False),
         lambda x, r=ref: r(x, axis=(1, 2), keepdims=False))
case("reduce_mean_keep_all", {"x": XA}, lambda x: mb.reduce_mean(x=x, keep_dims=True),
     lambda x: np.mean(x, keepdims=True))
case("reduce_log_sum", {"x": positive(3, 4)}, lambda x: mb.reduce_log_sum(x=x, axes=[0]),
     lambda x: np.log(np.sum(x, axis=0)))
case("reduce_argmax", {"x": XA}, lambda x: mb.reduce_argmax(x=x, axis=1, keep_dims=True),
     lambda x: np.argmax(x, axis=1)[:, None, :].astype(np.int32))
case("reduce_argmin", {"x": XA}, lambda x: mb.reduce_argmin(x=x, axis=-1),
     lambda x: np.argmin(x, axis=-1).astype(np.int32))


@pytest.mark.parametrize("inputs,body,expected,opset,fp16", CASES)
def test_op(tmp_path, inputs, body, expected, opset, fp16):
    check_case(tmp_path, inputs, body, expected, opset, fp16)
