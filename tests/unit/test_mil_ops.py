"""The ML Program evaluator, op by op.

Each case builds a one- or two-op MIL program with coremltools' builder, converts it to an
.mlpackage (no optimisation passes, so the op under test survives as written) and compares
the evaluator with a result computed here independently, with numpy or torch.

Tolerances:
- fp32: both sides compute in float32; only summation order and libm differ, so 1e-5
  relative (of the output's scale).
- fp16: the evaluator rounds weights, inputs and every op result to float16 (10-bit
  mantissa, relative step 2**-11 ~ 4.9e-4); a few roundings plus float16 inputs to a
  reduction give errors up to ~1e-2 of the output's scale, which is what we allow.
  Inputs are drawn as float16-exact numbers so that floor / compare / argmax ops see the
  same inputs in both modes.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")
torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import types  # noqa: E402

import coreml_reference  # noqa: E402
from coreml_reference import (EvaluatorError, InputError, LayerError, ModelFileError,  # noqa: E402
                              ShapeError, UnsupportedError)
from coreml_reference.mlprogram import supported_ops  # noqa: E402

RNG = np.random.default_rng(1234)


def f16exact(a):
    """float32 values that float16 represents exactly."""
    return np.asarray(a, dtype=np.float32).astype(np.float16).astype(np.float32)


def randn(*shape, scale=1.0):
    return f16exact(RNG.standard_normal(shape) * scale)


def positive(*shape, low=0.1, high=3.0):
    return f16exact(RNG.uniform(low, high, shape))


def convert(prog, path, target=None):
    kwargs = {}
    if target is not None:
        kwargs["minimum_deployment_target"] = target
    model = ct.convert(prog, convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
                       pass_pipeline=ct.PassPipeline.EMPTY, **kwargs)
    model.save(str(path))
    return str(path)


def build(tmp_path, body, inputs, opset=None, name="m"):
    """Convert ``body`` (a function of the named inputs) to tmp_path/name.mlpackage."""
    specs = []
    for value in inputs.values():
        value = np.asarray(value)
        dtype = {np.dtype(np.int32): types.int32, np.dtype(bool): types.bool}.get(value.dtype,
                                                                                   types.fp32)
        specs.append(mb.TensorSpec(shape=value.shape, dtype=dtype))
    target = {None: None, "iOS16": ct.target.iOS16, "iOS17": ct.target.iOS17}[opset]
    prog = mb.program(input_specs=specs, opset_version=target)(_named(body, list(inputs)))
    return convert(prog, tmp_path / (name + ".mlpackage"), target)


def _named(body, names):
    """``body`` behind a function whose parameters are exactly the input names (the MIL
    builder names the program's inputs after them)."""
    namespace = {"body": body}
    exec("def program({0}):\n    return body({0})\n".format(", ".join(names)), namespace)
    return namespace["program"]


def only_output(outputs):
    assert len(outputs) == 1
    return next(iter(outputs.values()))


def assert_close(got, expected, precision):
    expected = np.asarray(expected)
    got = np.asarray(got)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    if expected.dtype.kind in "biu":
        np.testing.assert_array_equal(got, expected)
        return
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(np.isfinite(got), finite)
    scale = max(1.0, float(np.max(np.abs(expected[finite])))) if finite.any() else 1.0
    rel = 1e-5 if precision == "fp32" else 1e-2
    np.testing.assert_allclose(got[finite], expected[finite], rtol=rel, atol=rel * scale)


# --- the cases: (id, inputs, MIL body, expected from the inputs, options) ----------------------

CASES = []


def case(name, inputs, body, expected, opset=None, fp16=True):
    CASES.append(pytest.param(inputs, body, expected, opset, fp16, id=name))


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


X4 = randn(2, 6, 9, 11)
X3 = randn(2, 4, 33)
W_CONV = randn(8, 6, 3, 3, scale=0.3)
W_GROUP = randn(6, 2, 3, 3, scale=0.3)
W_DW = randn(6, 1, 3, 3, scale=0.3)
W_1D = randn(5, 4, 7, scale=0.3)
B8 = randn(8)

# convolutions
case("conv_same", {"x": X4}, lambda x: mb.conv(x=x, weight=W_CONV, bias=B8, pad_type="same"),
     lambda x: F.conv2d(t(x), t(W_CONV), t(B8), padding=1).numpy())
case("conv_valid_strided", {"x": X4},
     lambda x: mb.conv(x=x, weight=W_CONV, strides=[2, 3], pad_type="valid"),
     lambda x: F.conv2d(t(x), t(W_CONV), stride=(2, 3)).numpy())
case("conv_custom_dilated", {"x": X4},
     lambda x: mb.conv(x=x, weight=W_CONV, pad_type="custom", pad=[1, 2, 0, 3], dilations=[2, 1]),
     lambda x: F.conv2d(F.pad(t(x), (0, 3, 1, 2)), t(W_CONV), dilation=(2, 1)).numpy())
case("conv_same_strided", {"x": X4}, lambda x: mb.conv(x=x, weight=W_CONV, strides=[2, 2],
                                                       pad_type="same"),
     # out = ceil(in / 2); total pad = (out-1)*2 + 3 - in, the odd unit after: H 9 -> (1,1),
     # W 11 -> (1,1)
     lambda x: F.conv2d(F.pad(t(x), (1, 1, 1, 1)), t(W_CONV), stride=2).numpy())
case("conv_same_lower", {"x": randn(1, 6, 8, 8)},
     lambda x: mb.conv(x=x, weight=W_CONV, strides=[2, 2], pad_type="same_lower"),
     # total pad 1 per dim: same_lower puts it before
     lambda x: F.conv2d(F.pad(t(x), (1, 0, 1, 0)), t(W_CONV), stride=2).numpy())
case("conv_grouped", {"x": X4}, lambda x: mb.conv(x=x, weight=W_GROUP, groups=3, pad_type="same"),
     lambda x: F.conv2d(t(x), t(W_GROUP), padding=1, groups=3).numpy())
case("conv_depthwise", {"x": X4}, lambda x: mb.conv(x=x, weight=W_DW, groups=6, pad_type="same"),
     lambda x: F.conv2d(t(x), t(W_DW), padding=1, groups=6).numpy())
case("conv_depthwise_dilated_strided", {"x": X4},
     lambda x: mb.conv(x=x, weight=W_DW, groups=6, strides=[2, 2], dilations=[2, 2],
                       pad_type="custom", pad=[2, 2, 2, 2]),
     lambda x: F.conv2d(t(x), t(W_DW), stride=2, padding=2, dilation=2, groups=6).numpy())
case("conv_pointwise", {"x": X4}, lambda x: mb.conv(x=x, weight=W_CONV[:, :, :1, :1]),
     lambda x: F.conv2d(t(x), t(W_CONV[:, :, :1, :1])).numpy())
case("conv1d", {"x": X3}, lambda x: mb.conv(x=x, weight=W_1D, strides=[2], pad_type="custom",
                                            pad=[3, 3]),
     lambda x: F.conv1d(t(x), t(W_1D), stride=2, padding=3).numpy())
W_T = randn(6, 4, 3, 3, scale=0.3)
case("conv_transpose", {"x": X4},
     lambda x: mb.conv_transpose(x=x, weight=W_T, strides=[2, 2], pad_type="custom",
                                 pad=[1, 1, 1, 1]),
     lambda x: F.conv_transpose2d(t(x), t(W_T), stride=2, padding=1).numpy())
case("conv_transpose_grouped_output_shape", {"x": X4},
     lambda x: mb.conv_transpose(x=x, weight=W_T[:, :2], strides=[2, 2], groups=3,
                                 pad_type="custom", pad=[1, 1, 1, 1],
                                 output_shape=[2, 6, 18, 22]),
     lambda x: F.conv_transpose2d(t(x), t(W_T[:, :2]), stride=2, padding=1, output_padding=1,
                                  groups=3).numpy())

# pooling
for pad_type, torch_pad in [("valid", 0), ("custom", 1)]:
    kw = dict(pad=[1, 1, 1, 1]) if pad_type == "custom" else {}
    case("max_pool_" + pad_type, {"x": X4},
         lambda x, kw=kw, p=pad_type: mb.max_pool(x=x, kernel_sizes=[3, 3], strides=[2, 2],
                                                  pad_type=p, **kw),
         lambda x, tp=torch_pad: F.max_pool2d(t(x), 3, 2, tp).numpy())
    for exclude in (False, True):
        case("avg_pool_{}_exclude{}".format(pad_type, exclude), {"x": X4},
             lambda x, kw=kw, p=pad_type, e=exclude: mb.avg_pool(
                 x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type=p,
                 exclude_padding_from_average=e, **kw),
             lambda x, tp=torch_pad, e=exclude: F.avg_pool2d(t(x), 3, 2, tp,
                                                             count_include_pad=not e).numpy())
case("max_pool_ceil", {"x": X4},
     lambda x: mb.max_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid",
                           ceil_mode=True),
     lambda x: F.max_pool2d(t(x), 2, 2, ceil_mode=True).numpy())
case("avg_pool_ceil", {"x": X4},
     lambda x: mb.avg_pool(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="custom",
                           pad=[1, 1, 1, 1], ceil_mode=True),
     lambda x: F.avg_pool2d(t(x), 3, 2, 1, ceil_mode=True).numpy())
case("max_pool_same", {"x": X4},
     lambda x: mb.max_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="same"),
     # in 9 -> out 5: pad (0, 1); 11 -> 6: (0, 1); padding never wins a max
     lambda x: F.max_pool2d(F.pad(t(x), (0, 1, 0, 1), value=-np.inf), 2, 2).numpy())
case("avg_pool_same", {"x": X4},
     lambda x: mb.avg_pool(x=x, kernel_sizes=[3, 3], strides=[1, 1], pad_type="same",
                           exclude_padding_from_average=True),
     lambda x: F.avg_pool2d(t(x), 3, 1, 1, count_include_pad=False).numpy())
case("max_pool_1d", {"x": X3},
     lambda x: mb.max_pool(x=x, kernel_sizes=[3], strides=[1], pad_type="custom", pad=[1, 1]),
     lambda x: F.max_pool1d(t(x), 3, 1, 1).numpy())
case("avg_pool_1d", {"x": X3},
     lambda x: mb.avg_pool(x=x, kernel_sizes=[3], strides=[1], pad_type="custom", pad=[1, 1]),
     lambda x: F.avg_pool1d(t(x), 3, 1, 1).numpy())
case("l2_pool", {"x": X4},
     lambda x: mb.l2_pool(x=x, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid"),
     lambda x: F.lp_pool2d(t(x), 2, 2, 2).numpy())

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

# activations
XA = randn(3, 4, 5, scale=2.0)
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

# shape and indexing
XT = randn(2, 3, 4, 5)
case("reshape", {"x": XT}, lambda x: mb.reshape(x=x, shape=[2, -1, 5]),
     lambda x: x.reshape(2, -1, 5))
case("reshape_zero", {"x": XT}, lambda x: mb.reshape(x=x, shape=[0, 0, -1]),
     # iOS17: each 0 copies the input dim at the same place counted from the right
     lambda x: x.reshape(3, 4, -1), opset="iOS17")
case("flatten2d", {"x": XT}, lambda x: mb.flatten2d(x=x, axis=2), lambda x: x.reshape(6, 20))
case("squeeze", {"x": randn(1, 3, 1, 4)}, lambda x: mb.squeeze(x=x, axes=[0, -2]),
     lambda x: x.reshape(3, 4))
case("squeeze_all", {"x": randn(1, 3, 1, 4)}, lambda x: mb.squeeze(x=x), lambda x: x.reshape(3, 4))
case("expand_dims", {"x": randn(3, 4)}, lambda x: mb.expand_dims(x=x, axes=[0, -1]),
     lambda x: x[None, :, :, None])
case("transpose", {"x": XT}, lambda x: mb.transpose(x=x, perm=[0, 3, 1, 2]),
     lambda x: x.transpose(0, 3, 1, 2))
case("tile", {"x": randn(2, 3)}, lambda x: mb.tile(x=x, reps=[2, 3]), lambda x: np.tile(x, (2, 3)))
case("concat", {"x": randn(2, 3), "y": randn(2, 4)},
     lambda x, y: mb.concat(values=(x, y, x), axis=-1),
     lambda x, y: np.concatenate([x, y, x], -1))
case("concat_interleave", {"x": randn(2, 3), "y": randn(2, 3)},
     lambda x, y: mb.concat(values=(x, y), axis=1, interleave=True),
     lambda x, y: np.stack([x, y], 2).reshape(2, 6))
case("stack", {"x": randn(2, 3), "y": randn(2, 3)}, lambda x, y: mb.stack(values=(x, y), axis=1),
     lambda x, y: np.stack([x, y], 1))
case("split_sizes", {"x": XT},
     lambda x: mb.concat(values=mb.split(x=x, split_sizes=[1, 3, 1], axis=3)[::-1], axis=3),
     lambda x: np.concatenate([x[..., 4:], x[..., 1:4], x[..., :1]], 3))
case("split_num", {"x": XT},
     lambda x: mb.sub(x=mb.split(x=x, num_splits=2, axis=2)[0],
                      y=mb.split(x=x, num_splits=2, axis=2)[1]),
     lambda x: x[:, :, :2] - x[:, :, 2:])
case("slice_by_index", {"x": XT},
     lambda x: mb.slice_by_index(x=x, begin=[0, 1, 0, -1], end=[2, 3, 4, 0], stride=[1, 1, 2, -2],
                                 begin_mask=[False, False, True, False],
                                 end_mask=[True, False, False, True]),
     lambda x: x[:, 1:3, ::2, -1::-2])
case("slice_by_index_squeeze", {"x": XT},
     lambda x: mb.slice_by_index(x=x, begin=[1, 0, 2, 0], end=[2, 3, 3, 5],
                                 squeeze_mask=[True, False, True, False]),
     lambda x: x[1, :, 2, :])
case("slice_by_size", {"x": XT},
     lambda x: mb.slice_by_size(x=x, begin=[0, 1, 1, 2], size=[2, -1, 2, 3]),
     lambda x: x[:, 1:, 1:3, 2:5])
IDX = np.array([[2, 0], [1, 2]], np.int32)
case("gather", {"x": XT}, lambda x: mb.gather(x=x, indices=IDX, axis=1),
     lambda x: np.take(x, IDX, axis=1))
case("gather_negative", {"x": XT},
     lambda x: mb.gather(x=x, indices=np.array([-1, 0], np.int32), axis=-1),
     lambda x: x[..., [4, 0]], opset="iOS17")
case("gather_batch_dims", {"x": randn(2, 3, 4)},
     lambda x: mb.gather(x=x, indices=np.array([[0, 2], [1, 1]], np.int32), axis=1, batch_dims=1),
     lambda x: np.stack([x[0][[0, 2]], x[1][[1, 1]]]), opset="iOS16")
IDX_ALONG = RNG.integers(0, 3, size=(2, 2, 4, 5)).astype(np.int32)
case("gather_along_axis", {"x": XT}, lambda x: mb.gather_along_axis(x=x, indices=IDX_ALONG, axis=1),
     lambda x: np.take_along_axis(x, IDX_ALONG, 1))
case("gather_nd", {"x": XT},
     lambda x: mb.gather_nd(x=x, indices=np.array([[0, 2], [1, 1]], np.int32)),
     lambda x: x[[0, 1], [2, 1]])
for mode, np_mode in [("constant", "constant"), ("reflect", "reflect"), ("replicate", "edge")]:
    case("pad_" + mode, {"x": XT},
         lambda x, m=mode: mb.pad(x=x, pad=[1, 2, 2, 1], mode=m, constant_val=0.5),
         lambda x, m=np_mode: np.pad(x, [(0, 0), (0, 0), (1, 2), (2, 1)], mode=m,
                                     **({"constant_values": 0.5} if m == "constant" else {})))
case("fill_shape_range", {"x": randn(3, 4)},
     lambda x: mb.add(x=x, y=mb.fill(shape=mb.shape(x=x), value=2.5)),
     lambda x: x + 2.5)
case("range_1d", {"x": randn(5)},
     lambda x: mb.add(x=x, y=mb.cast(x=mb.range_1d(start=2, end=12, step=2), dtype="fp32")),
     lambda x: x + np.arange(2, 12, 2))
case("shape", {"x": XT}, lambda x: mb.shape(x=x), lambda x: np.array(x.shape, np.int32))
case("reverse", {"x": XT}, lambda x: mb.reverse(x=x, axes=[1, 3]), lambda x: x[:, ::-1, :, ::-1])
case("band_part", {"x": randn(5, 5)}, lambda x: mb.band_part(x=x, lower=1, upper=0),
     lambda x: np.tril(x) - np.tril(x, -2))
case("cumsum", {"x": XT}, lambda x: mb.cumsum(x=x, axis=2, exclusive=True, reverse=True),
     lambda x: np.flip(np.cumsum(np.flip(x, 2), 2), 2) - x)
case("one_hot", {"i": np.array([0, 3, 1], np.int32)},
     lambda i: mb.one_hot(indices=i, one_hot_vector_size=4, axis=0, on_value=2.0, off_value=-1.0),
     lambda i: np.where(np.arange(4)[:, None] == i[None, :], 2.0, -1.0).astype(np.float32))
case("argsort", {"x": randn(3, 7)}, lambda x: mb.argsort(x=x, axis=1, ascending=True),
     lambda x: np.argsort(x, axis=1, kind="stable").astype(np.int32))
case("topk", {"x": randn(3, 7)}, lambda x: mb.topk(x=x, k=3, axis=-1)[0],
     lambda x: -np.sort(-x, axis=-1)[:, :3])
case("space_to_depth", {"x": randn(1, 2, 4, 6)}, lambda x: mb.space_to_depth(x=x, block_size=2),
     lambda x: x.reshape(1, 2, 2, 2, 3, 2).transpose(0, 3, 5, 1, 2, 4).reshape(1, 8, 2, 3))
case("depth_to_space", {"x": randn(1, 8, 2, 3)}, lambda x: mb.depth_to_space(x=x, block_size=2),
     lambda x: x.reshape(1, 2, 2, 2, 2, 3).transpose(0, 3, 4, 1, 5, 2).reshape(1, 2, 4, 6))
case("pixel_shuffle", {"x": randn(1, 8, 2, 3)}, lambda x: mb.pixel_shuffle(x=x, upscale_factor=2),
     lambda x: F.pixel_shuffle(t(x), 2).numpy())
case("sliding_windows", {"x": randn(2, 10)},
     lambda x: mb.sliding_windows(x=x, axis=1, size=4, stride=3),
     lambda x: np.stack([x[:, i:i + 4] for i in range(0, 7, 3)], 1))

# resizing
XR = randn(1, 2, 3, 4)
case("upsample_nearest", {"x": XR},
     lambda x: mb.upsample_nearest_neighbor(x=x, scale_factor_height=2, scale_factor_width=3),
     lambda x: F.interpolate(t(x), scale_factor=(2, 3), mode="nearest").numpy())
case("resize_nearest", {"x": XR},
     lambda x: mb.resize_nearest_neighbor(x=x, target_size_height=5, target_size_width=7),
     lambda x: F.interpolate(t(x), size=(5, 7), mode="nearest").numpy())
case("upsample_bilinear_align", {"x": XR},
     lambda x: mb.upsample_bilinear(x=x, scale_factor_height=2, scale_factor_width=2,
                                    align_corners=True),
     lambda x: F.interpolate(t(x), scale_factor=2, mode="bilinear", align_corners=True).numpy())
case("upsample_bilinear_half_pixel", {"x": XR},
     lambda x: mb.upsample_bilinear(x=x, scale_factor_height=2, scale_factor_width=3,
                                    align_corners=False),
     lambda x: F.interpolate(t(x), scale_factor=(2, 3), mode="bilinear",
                             align_corners=False).numpy())
case("resize_bilinear_align", {"x": XR},
     lambda x: mb.resize_bilinear(x=x, target_size_height=5, target_size_width=7,
                                  sampling_mode="STRICT_ALIGN_CORNERS"),
     lambda x: F.interpolate(t(x), size=(5, 7), mode="bilinear", align_corners=True).numpy())
case("resize_bilinear_unalign", {"x": XR},
     lambda x: mb.resize_bilinear(x=x, target_size_height=5, target_size_width=7,
                                  sampling_mode="UNALIGN_CORNERS"),
     lambda x: F.interpolate(t(x), size=(5, 7), mode="bilinear", align_corners=False).numpy())


def _tf_default_resize(x, out_h, out_w):
    # TF ResizeBilinear(align_corners=False, half_pixel_centers=False): src = i * in / out
    def axis(n_in, n_out):
        g = np.minimum(np.arange(n_out) * n_in / n_out, n_in - 1)
        lo = np.floor(g).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), g - lo
    (r0, r1, fr), (c0, c1, fc) = axis(x.shape[-2], out_h), axis(x.shape[-1], out_w)
    rows = x[..., r0, :] * (1 - fr[:, None]) + x[..., r1, :] * fr[:, None]
    return (rows[..., c0] * (1 - fc) + rows[..., c1] * fc).astype(np.float32)


case("resize_bilinear_default", {"x": XR},
     lambda x: mb.resize_bilinear(x=x, target_size_height=5, target_size_width=7),
     lambda x: _tf_default_resize(x, 5, 7))
case("crop", {"x": randn(1, 2, 6, 7)},
     lambda x: mb.crop(x=x, crop_height=[1, 2], crop_width=[0, 3]),
     lambda x: x[..., 1:4, 0:4])


@pytest.mark.parametrize("inputs,body,expected,opset,fp16", CASES)
def test_op(tmp_path, inputs, body, expected, opset, fp16):
    path = build(tmp_path, body, inputs, opset)
    want = expected(*inputs.values())
    got = only_output(coreml_reference.predict(path, inputs))
    assert_close(got, want, "fp32")
    if fp16:
        got16 = only_output(coreml_reference.predict(path, inputs, precision="fp16"))
        want16 = want if np.asarray(want).dtype.kind in "biu" else f16exact(want)
        assert_close(got16, want16, "fp16")


def test_cases_cover_the_zoo_ops():
    """Every op type the zoo's ML Programs use is implemented."""
    zoo_ops = {"add", "avg_pool", "batch_norm", "clip", "const", "conv", "expand_dims", "linear",
               "log", "matmul", "max_pool", "mul", "pad", "pow", "reduce_max", "reduce_mean",
               "relu", "relu6", "reshape", "sigmoid", "squeeze", "tile", "transpose", "cast"}
    assert zoo_ops <= set(supported_ops())


# --- precision ------------------------------------------------------------------------------

def test_fp16_overflow_is_inf(tmp_path):
    """x * x with x = 1000 is 1e6: fine in float32, past float16's max (65504) -> inf."""
    path = build(tmp_path, lambda x: mb.mul(x=x, y=x), {"x": np.full((2,), 1000, np.float32)})
    x = {"x": np.full((2,), 1000, np.float32)}
    np.testing.assert_array_equal(only_output(coreml_reference.predict(path, x)), [1e6, 1e6])
    got = only_output(coreml_reference.predict(path, x, precision="fp16"))
    assert np.all(np.isinf(got)) and np.all(got > 0)


def test_fp16_rounds_weights_and_results(tmp_path):
    # 1 + 2**-12 is exact in float32 but rounds to 1 in float16 (10-bit mantissa).
    w = np.full((3,), 1 + 2.0 ** -12, np.float32)
    path = build(tmp_path, lambda x: mb.mul(x=x, y=w), {"x": np.ones(3, np.float32)})
    x = {"x": np.ones(3, np.float32)}
    assert np.all(only_output(coreml_reference.predict(path, x)) == w)
    assert np.all(only_output(coreml_reference.predict(path, x, precision="fp16")) == 1.0)


def test_precision_must_be_known(tmp_path):
    path = build(tmp_path, lambda x: mb.relu(x=x), {"x": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match="precision"):
        coreml_reference.predict(path, {"x": np.ones(3, np.float32)}, precision="int8")


# --- errors ---------------------------------------------------------------------------------

@pytest.fixture
def add_model(tmp_path):
    return build(tmp_path, lambda x, y: mb.add(x=x, y=y, name="sum"),
                 {"x": np.ones((2, 3), np.float32), "y": np.ones((1, 3), np.float32)})


def test_incompatible_broadcast_is_a_shape_error(add_model):
    # Declare y as (4,): the program is valid for (1, 3), and Core ML would reject (2,3)+(4,).
    loaded = coreml_reference.load(add_model)
    spec = loaded.spec
    fn = spec.mlProgram.functions["main"]
    y_type = [i for i in fn.inputs if i.name == "y"][0].type.tensorType
    y_type.rank = 1
    del y_type.dimensions[:]
    y_type.dimensions.add().constant.size = 4
    desc = [i for i in spec.description.input if i.name == "y"][0]
    del desc.type.multiArrayType.shape[:]
    desc.type.multiArrayType.shape.append(4)
    with pytest.raises(ShapeError) as err:
        coreml_reference.predict(spec, {"x": np.ones((2, 3), np.float32),
                                        "y": np.ones(4, np.float32)})
    message = str(err.value)
    assert "[2, 3]" in message and "[4]" in message and "'sum'" in message and "add" in message


def test_unsupported_op_names_type_op_and_file(tmp_path):
    path = build(tmp_path, lambda x: mb.non_zero(x=x, name="nz"), {"x": np.ones(4, np.float32)})
    assert "non_zero" not in supported_ops()
    with pytest.raises(UnsupportedError) as err:
        coreml_reference.predict(path, {"x": np.ones(4, np.float32)})
    assert err.value.type_name == "non_zero" and err.value.layer_name == "nz"
    assert path in str(err.value)


def test_missing_input(add_model):
    with pytest.raises(InputError, match="missing input 'y'"):
        coreml_reference.predict(add_model, {"x": np.ones((2, 3), np.float32)})


def test_unknown_input(add_model):
    with pytest.raises(InputError, match="unknown input"):
        coreml_reference.predict(add_model, {"x": np.ones((2, 3), np.float32),
                                             "y": np.ones((1, 3), np.float32),
                                             "z": np.ones(1, np.float32)})


def test_wrong_shape(add_model):
    with pytest.raises(InputError) as err:
        coreml_reference.predict(add_model, {"x": np.ones((3, 2), np.float32),
                                             "y": np.ones((1, 3), np.float32)})
    assert "'x'" in str(err.value) and "[3, 2]" in str(err.value) and "[2, 3]" in str(err.value)


def test_wrong_dtype(add_model):
    with pytest.raises(InputError, match="dtype"):
        coreml_reference.predict(add_model, {"x": np.full((2, 3), "a"),
                                             "y": np.ones((1, 3), np.float32)})
    with pytest.raises(InputError, match="dtype"):
        coreml_reference.predict(add_model, {"x": np.ones((2, 3), np.complex64),
                                             "y": np.ones((1, 3), np.float32)})


def test_int_input_takes_what_mlmodel_predict_takes(tmp_path):
    # int64 token ids (PyTorch's default) narrow to int32; floats truncate toward zero, as
    # Core ML converts a float multi-array to a declared int32 input.
    path = build(tmp_path, lambda i: mb.add(x=i, y=1), {"i": np.zeros(3, np.int32)})
    out = only_output(coreml_reference.predict(path, {"i": np.arange(3, dtype=np.int64)}))
    np.testing.assert_array_equal(out, [1, 2, 3])
    assert out.dtype == np.int32
    out = only_output(coreml_reference.predict(path, {"i": np.array([1.9, -1.9, 2.0], np.float32)}))
    np.testing.assert_array_equal(out, [2, 0, 3])
    with pytest.raises(InputError, match="'i' has dtype <U1, the model takes int32"):
        coreml_reference.predict(path, {"i": np.full(3, "a")})


def test_op_registry_refuses_a_duplicate_name():
    from coreml_reference.mlprogram.registry import register
    with pytest.raises(ValueError, match="'conv' registered twice"):
        register("conv")(lambda ctx, x: x)


def test_op_errors_name_the_op(tmp_path):
    # ctx.shape_error / ctx.unsupported prefix the op type and name, like the NN context's.
    from coreml_reference.mlprogram.program import Context

    class Op:
        type, name, blocks = "conv", "c1", []

    class Runner:
        precision, where, path = "fp32", " in m.mlpackage", "m.mlpackage"

    ctx = Context(Runner(), Op())
    assert str(ctx.shape_error("bad pad")) == "conv op 'c1' in m.mlpackage: bad pad"
    assert str(ctx.unsupported("pad_type 'x'")) == \
        "conv op 'c1' in m.mlpackage: unsupported pad_type 'x'"


def test_failing_op_is_a_layer_error(tmp_path):
    # An index past the axis: the op fails, and the error names the op and the file.
    idx = np.array([0, 7], np.int32)
    path = build(tmp_path, lambda x, i: mb.gather(x=x, indices=i, axis=0, name="pick"),
                 {"x": np.ones(3, np.float32), "i": idx})
    with pytest.raises(LayerError) as err:
        coreml_reference.predict(path, {"x": np.ones(3, np.float32), "i": idx})
    assert err.value.type_name == "gather" and err.value.layer_name == "pick"
    assert path in str(err.value)


CONV_W = randn(8, 3, 3, 3)


@pytest.fixture
def conv_model(tmp_path):
    """A model whose weight lives in weight.bin (large constants go to the blob file)."""
    path = build(tmp_path, lambda x: mb.conv(x=x, weight=CONV_W, pad_type="same"),
                 {"x": np.ones((1, 3, 5, 5), np.float32)}, name="conv")
    return path


def _weight_bin(package):
    return os.path.join(package, "Data", "com.apple.CoreML", "weights", "weight.bin")


def test_blob_weights_are_read(conv_model):
    x = randn(1, 3, 5, 5)
    got = only_output(coreml_reference.predict(conv_model, {"x": x}))
    np.testing.assert_allclose(got, F.conv2d(t(x), t(CONV_W), padding=1).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_truncated_weight_file(conv_model, tmp_path):
    broken = str(tmp_path / "broken.mlpackage")
    shutil.copytree(conv_model, broken)
    weights = _weight_bin(broken)
    size = os.path.getsize(weights)
    with open(weights, "r+b") as f:
        f.truncate(size - 100)
    with pytest.raises(ModelFileError) as err:
        coreml_reference.predict(broken, {"x": np.ones((1, 3, 5, 5), np.float32)})
    assert "weight.bin" in str(err.value) and "truncated" in str(err.value)


def test_corrupt_weight_metadata(conv_model, tmp_path):
    broken = str(tmp_path / "broken.mlpackage")
    shutil.copytree(conv_model, broken)
    with open(_weight_bin(broken), "r+b") as f:
        f.seek(64)                       # the first blob's metadata: overwrite its sentinel
        f.write(b"\0\0\0\0")
    with pytest.raises(ModelFileError, match="sentinel"):
        coreml_reference.predict(broken, {"x": np.ones((1, 3, 5, 5), np.float32)})


def test_missing_weight_file(conv_model, tmp_path):
    broken = str(tmp_path / "broken.mlpackage")
    shutil.copytree(conv_model, broken)
    os.remove(_weight_bin(broken))
    with pytest.raises(ModelFileError, match="weight.bin"):
        coreml_reference.predict(broken, {"x": np.ones((1, 3, 5, 5), np.float32)})


def test_corrupt_spec(conv_model, tmp_path):
    broken = str(tmp_path / "broken.mlpackage")
    shutil.copytree(conv_model, broken)
    spec_file = os.path.join(broken, "Data", "com.apple.CoreML", "model.mlmodel")
    data = open(spec_file, "rb").read()
    with open(spec_file, "wb") as f:
        f.write(data[: len(data) // 3])
    with pytest.raises(EvaluatorError) as err:
        coreml_reference.predict(broken, {"x": np.ones((1, 3, 5, 5), np.float32)})
    assert broken in str(err.value)


def test_recompiles_when_weights_change(conv_model):
    """The compiled-plan cache is keyed by file size and mtime: new weights are seen."""
    x = {"x": np.ones((1, 3, 5, 5), np.float32)}
    before = only_output(coreml_reference.predict(conv_model, x))
    weights = _weight_bin(conv_model)
    data = bytearray(open(weights, "rb").read())
    blob = np.frombuffer(bytes(data[128:128 + CONV_W.nbytes]), np.float32) * 2
    data[128:128 + CONV_W.nbytes] = blob.astype(np.float32).tobytes()
    with open(weights, "wb") as f:
        f.write(bytes(data))
    st = os.stat(weights)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    after = only_output(coreml_reference.predict(conv_model, x))
    np.testing.assert_allclose(after, 2 * before, rtol=1e-6)


# --- trace and control flow -----------------------------------------------------------------

def test_trace_sees_every_op_output(tmp_path):
    path = build(tmp_path, lambda x: mb.relu(x=mb.add(x=x, y=1.0, name="plus"), name="r"),
                 {"x": np.ones(3, np.float32)})
    seen = []
    coreml_reference.predict(path, {"x": -np.ones(3, np.float32) * 3},
                             trace=lambda var, op_type, value, op_name: seen.append(
                                 (op_type, op_name, np.array(value))))
    by_type = {op_type: (name, value) for op_type, name, value in seen}
    assert by_type["add"][0] == "plus" and np.all(by_type["add"][1] == -2)
    assert by_type["relu"][0] == "r" and np.all(by_type["relu"][1] == 0)
    assert "const" in by_type


def test_cond(tmp_path):
    def body(x):
        return mb.cond(pred=mb.greater(x=mb.reduce_sum(x=x), y=0.0),
                       _true_fn=lambda: mb.mul(x=x, y=2.0), _false_fn=lambda: mb.sub(x=x, y=1.0))
    path = build(tmp_path, body, {"x": np.ones(3, np.float32)})
    np.testing.assert_array_equal(
        only_output(coreml_reference.predict(path, {"x": np.ones(3, np.float32)})), [2, 2, 2])
    np.testing.assert_array_equal(
        only_output(coreml_reference.predict(path, {"x": -np.ones(3, np.float32)})), [-2, -2, -2])


def test_while_loop(tmp_path):
    def body(x):
        return mb.while_loop(_cond=lambda v: mb.less(x=mb.reduce_max(x=v), y=100.0),
                             _body=lambda v: [mb.mul(x=v, y=3.0)], loop_vars=[x])
    path = build(tmp_path, body, {"x": np.ones(2, np.float32)})
    out = coreml_reference.predict(path, {"x": np.array([1, 2], np.float32)})
    np.testing.assert_array_equal(only_output(out), [81, 162])


def test_mlmodel_object_input(conv_model):
    model = ct.models.MLModel(conv_model, skip_model_load=True)
    x = randn(1, 3, 5, 5)
    got = only_output(coreml_reference.predict(model, {"x": x}))
    np.testing.assert_allclose(got, F.conv2d(t(x), t(CONV_W), padding=1).numpy(),
                               rtol=1e-5, atol=1e-5)


# --- small torch modules converted by coremltools 9 (the ops the torch frontend emits) --------

class _AudioCNN(torch.nn.Module):
    """Conv / norm / pool / activation / resize mix, as in audio and vision CNNs."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)
        self.dw = torch.nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
        self.inorm = torch.nn.InstanceNorm2d(8, affine=True)
        self.up = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.conv1d = torch.nn.Conv1d(4, 6, 5, stride=2, padding=2)
        self.ln = torch.nn.LayerNorm(6)
        self.fc = torch.nn.Linear(6, 5)
        self.prelu = torch.nn.PReLU(8)

    def forward(self, x):
        x = F.relu6(self.bn(self.conv(x)))
        x = F.max_pool2d(x, 2, ceil_mode=True)
        x = self.prelu(self.inorm(self.dw(x)))
        x = F.avg_pool2d(F.pad(x, (1, 0, 0, 1), mode="reflect"), 2)
        x = F.gelu(self.up(x))
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False)
        y = self.conv1d(torch.flatten(x, 2))
        y = self.ln(y.transpose(1, 2))
        y = torch.softmax(F.silu(self.fc(y)), dim=-1)
        return y.mean(dim=1) + torch.tanh(y).amax(dim=1), torch.sigmoid(x).sum(dim=(2, 3))


def _torch_model(tmp_path, precision):
    torch.manual_seed(0)
    module = _AudioCNN().eval()
    with torch.no_grad():           # non-trivial running statistics for batch_norm
        module.bn.running_mean.uniform_(-0.5, 0.5)
        module.bn.running_var.uniform_(0.5, 2.0)
    x = randn(1, 2, 12, 16)
    traced = torch.jit.trace(module, t(x))
    model = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=x.shape)],
                       convert_to="mlprogram", compute_precision=precision)
    path = str(tmp_path / "torch.mlpackage")
    model.save(path)
    with torch.no_grad():
        want = [v.numpy() for v in module(t(x))]
    return path, {"x": x}, want


def test_torch_module_fp32(tmp_path):
    path, inputs, want = _torch_model(tmp_path, ct.precision.FLOAT32)
    got = list(coreml_reference.predict(path, inputs).values())
    for g, w in zip(got, want):
        assert_close(g, w, "fp32")
    got16 = list(coreml_reference.predict(path, inputs, precision="fp16").values())
    for g, w in zip(got16, want):
        assert_close(g, w, "fp16")


def test_torch_module_fp16_program(tmp_path):
    """coremltools' default: an fp16 program (fp16 weights in weight.bin and inline, casts at
    the inputs and outputs). Evaluated in fp32 mode it still computes in fp16 where the
    program says so, so it is held to the fp16 tolerance."""
    path, inputs, want = _torch_model(tmp_path, ct.precision.FLOAT16)
    spec = coreml_reference.load(path).spec
    ops = {op.type for op in spec.mlProgram.functions["main"].block_specializations[
        spec.mlProgram.functions["main"].opset].operations}
    assert "cast" in ops
    got = list(coreml_reference.predict(path, inputs).values())
    for g, w in zip(got, want):
        assert_close(g, w, "fp16")
