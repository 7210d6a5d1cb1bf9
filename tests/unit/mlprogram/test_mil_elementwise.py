"""ML Program evaluator: elementwise binary and unary ops
(coreml_reference/mlprogram/ops/elementwise.py).

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from mil_helpers import (case_list, check_case, RNG, f16exact, mb, positive, randn, t, torch)

CASES, case = case_list()

# elementwise binary (numpy broadcasting)
XB, YB = randn(3, 1, 5), randn(4, 1)
YB_POS = positive(4, 1, low=0.5)
for name, ref in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                  ("maximum", np.maximum), ("minimum", np.minimum),
                  ("equal", np.equal), ("not_equal", np.not_equal), ("less", np.less),
                  ("less_equal", np.less_equal), ("greater", np.greater),
                  ("greater_equal", np.greater_equal)]:
    case(name, {"x": XB, "y": YB}, lambda x, y, n=name: getattr(mb, n)(x=x, y=y),
         lambda x, y, r=ref: r(x, y))
case("real_div", {"x": XB, "y": YB_POS}, lambda x, y: mb.real_div(x=x, y=y),
     lambda x, y: x / y)
case("floor_div", {"x": XB * 4, "y": YB_POS}, lambda x, y: mb.floor_div(x=x, y=y),
     lambda x, y: np.floor(x / y), fp16=False)   # a quotient near an integer may round across it
case("mod", {"x": XB * 4, "y": YB_POS}, lambda x, y: mb.mod(x=x, y=y),
     lambda x, y: np.mod(x, y), fp16=False)
case("pow", {"x": positive(3, 1, 5), "y": YB}, lambda x, y: mb.pow(x=x, y=y),
     lambda x, y: np.power(x, y))
case("add_int", {"x": np.arange(6, dtype=np.int32).reshape(2, 3),
                 "y": np.array([10, 20, 30], np.int32)},
     lambda x, y: mb.add(x=x, y=y), lambda x, y: x + y)
case("floor_div_int", {"x": np.array([[7, -7, 9]], np.int32), "y": np.array([2, 2, -4], np.int32)},
     lambda x, y: mb.floor_div(x=x, y=y), lambda x, y: np.floor_divide(x, y))
case("logical_and_or_xor", {"x": randn(4, 5), "y": randn(4, 5)},
     lambda x, y: mb.logical_xor(x=mb.logical_and(x=mb.greater(x=x, y=0.0), y=mb.less(x=y, y=0.0)),
                                 y=mb.logical_or(x=mb.greater(x=x, y=1.0), y=mb.logical_not(
                                     x=mb.greater(x=y, y=-1.0)))),
     lambda x, y: np.logical_xor((x > 0) & (y < 0), (x > 1) | ~(y > -1)))

# elementwise unary
XU = randn(4, 6, scale=2.0)
XP = positive(4, 6)
XS = f16exact(RNG.uniform(-0.9, 0.9, (4, 6)))
for name, inp, ref, kw in [
    ("abs", XU, np.abs, {}), ("exp", XU, np.exp, {}), ("exp2", XU, np.exp2, {}),
    ("log", XP, np.log, {}), ("sqrt", XP, np.sqrt, {}),
    ("rsqrt", XP, lambda x: 1 / np.sqrt(x + 1e-12), {}),
    ("inverse", XP, lambda x: 1 / (x + 1e-4), {}),
    ("square", XU, np.square, {}), ("floor", XU, np.floor, {}), ("ceil", XU, np.ceil, {}),
    ("round", f16exact([[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], [0.4, 0.6, -0.6, 3.49, 7, -7]]),
     np.round, {}),
    ("sin", XU, np.sin, {}), ("cos", XU, np.cos, {}), ("tan", XS, np.tan, {}),
    ("sinh", XU, np.sinh, {}), ("cosh", XU, np.cosh, {}),
    ("asin", XS, np.arcsin, {}), ("acos", XS, np.arccos, {}), ("atan", XU, np.arctan, {}),
    ("atanh", XS, np.arctanh, {}), ("sign", XU, np.sign, {}),
    ("erf", XU, lambda x: torch.erf(t(x)).numpy(), {}),
]:
    case(name, {"x": inp}, lambda x, n=name, kw=kw: getattr(mb, n)(x=x, **kw),
         lambda x, r=ref: r(x).astype(np.float32))
case("log_epsilon", {"x": XP}, lambda x: mb.log(x=x, epsilon=0.5), lambda x: np.log(x + 0.5))
case("clip", {"x": XU}, lambda x: mb.clip(x=x, alpha=-0.5, beta=1.25),
     lambda x: np.clip(x, -0.5, 1.25))
case("threshold", {"x": XU}, lambda x: mb.threshold(x=x, alpha=0.25),
     lambda x: np.maximum(x, 0.25))
case("select", {"c": randn(4, 1), "a": randn(4, 5), "b": randn(5)},
     lambda c, a, b: mb.select(cond=mb.greater(x=c, y=0.0), a=a, b=b),
     lambda c, a, b: np.where(c > 0, a, b))
case("cast_int_and_back", {"x": XU},
     lambda x: mb.cast(x=mb.cast(x=x, dtype="int32"), dtype="fp32"),
     lambda x: np.trunc(x))
case("cast_fp16_roundtrip", {"x": randn(4, 5) * 1.001 + 0.0001},
     lambda x: mb.cast(x=mb.add(x=mb.cast(x=x, dtype="fp16"), y=np.float16(1.0)), dtype="fp32"),
     # the program's own fp16: each result is rounded to float16, in fp32 mode too
     lambda x: (x.astype(np.float16) + np.float16(1)).astype(np.float32))
case("identity", {"x": XU}, lambda x: mb.identity(x=x), lambda x: x)


@pytest.mark.parametrize("inputs,body,expected,opset,fp16", CASES)
def test_op(tmp_path, inputs, body, expected, opset, fp16):
    check_case(tmp_path, inputs, body, expected, opset, fp16)
