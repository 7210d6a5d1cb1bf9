"""Helpers of the ML Program op tests.

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


def _target(opset):
    """A case's opset name ("iOS17") as coremltools' target; None: the builder's default."""
    return None if opset is None else getattr(ct.target, opset)


def build(tmp_path, body, inputs, opset=None, name="m"):
    """Convert ``body`` (a function of the named inputs) to tmp_path/name.mlpackage."""
    target = _target(opset)
    prog = mb.program(input_specs=_input_specs(inputs), opset_version=target)(
        _named(body, list(inputs)))
    return convert(prog, tmp_path / (name + ".mlpackage"), target)


def _input_specs(inputs):
    specs = []
    for value in inputs.values():
        value = np.asarray(value)
        dtype = {np.dtype(np.int32): types.int32, np.dtype(bool): types.bool}.get(value.dtype,
                                                                                   types.fp32)
        specs.append(mb.TensorSpec(shape=value.shape, dtype=dtype))
    return specs


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


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


X4 = randn(2, 6, 9, 11)
X3 = randn(2, 4, 33)
W_CONV = randn(8, 6, 3, 3, scale=0.3)
W_GROUP = randn(6, 2, 3, 3, scale=0.3)
W_DW = randn(6, 1, 3, 3, scale=0.3)
W_1D = randn(5, 4, 7, scale=0.3)
B8 = randn(8)
XA = randn(3, 4, 5, scale=2.0)


# --- cases: (id, inputs, MIL body, expected from the inputs, options) -------------------------

def case_list():
    """A list of cases and the function that adds one: ``case(name, inputs, body, expected)``."""
    cases = []

    def case(name, inputs, body, expected, opset=None, fp16=True):
        cases.append(pytest.param(inputs, body, expected, opset, fp16, id=name))
    return cases, case


def check_case(tmp_path, inputs, body, expected, opset, fp16):
    path = build(tmp_path, body, inputs, opset)
    want = expected(*inputs.values())
    got = only_output(coreml_reference.predict(path, inputs))
    assert_close(got, want, "fp32")
    if fp16:
        got16 = only_output(coreml_reference.predict(path, inputs, precision="fp16"))
        want16 = want if np.asarray(want).dtype.kind in "biu" else f16exact(want)
        assert_close(got16, want16, "fp16")


def case_op_types(param):
    """MIL op types a case's program uses (built, not converted)."""
    inputs, body = param.values[0], param.values[1]
    prog = mb.program(input_specs=_input_specs(inputs), opset_version=_target(param.values[3]))(
        _named(body, list(inputs)))
    return {op.op_type for op in prog.functions["main"].operations}
