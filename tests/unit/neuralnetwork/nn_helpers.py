"""Helpers of the NeuralNetwork layer tests: build a tiny spec with coremltools' builder,
compare the evaluator with an expectation computed independently (numpy / torch).
Tolerances: fp32 — rtol 1e-5, atol 1e-5 (float32 summation-order differences only);
fp16 — atol/rtol 1e-2 of the output's scale (weights, inputs and every layer output are
rounded to float16, whose step is ~1e-3 relative; a few layers compound that).
"""
from __future__ import annotations

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")
torch = pytest.importorskip("torch")
F = torch.nn.functional

from coremltools.models import datatypes  # noqa: E402
from coremltools.models.neural_network import NeuralNetworkBuilder  # noqa: E402

import coreml_reference  # noqa: E402
from coreml_reference import (InputError, LayerError, ModelFileError, ShapeError,  # noqa: E402
                              UnsupportedError)

RNG = np.random.RandomState(0)
FP32 = dict(rtol=1e-5, atol=1e-5)
FP16_REL = 1e-2


def randn(*shape, scale=1.0):
    return (RNG.randn(*shape) * scale).astype(np.float32)


def network(inputs, build, outputs=("out",)):
    """A spec with the given {name: shape} inputs; build(builder) adds the layers."""
    builder = NeuralNetworkBuilder([(n, datatypes.Array(*s)) for n, s in inputs.items()],
                                   [(n, None) for n in outputs], disable_rank5_shape_mapping=True)
    build(builder)
    return builder.spec


def check(spec, feeds, expected, fp16=True, name="out"):
    """fp32 tight; fp16 within 1e-2 of the output's scale."""
    expected = np.asarray(expected, dtype=np.float32)
    got = coreml_reference.predict(spec, feeds)[name]
    assert got.shape == expected.shape, (got.shape, expected.shape)
    np.testing.assert_allclose(got, expected, **FP32)
    if fp16:
        got16 = coreml_reference.predict(spec, feeds, precision="fp16")[name]
        scale = max(1.0, float(np.max(np.abs(expected))))
        np.testing.assert_allclose(got16, expected, rtol=FP16_REL, atol=FP16_REL * scale)
    return got


def t(x):
    return torch.from_numpy(np.ascontiguousarray(x))


def n(x):
    return x.detach().numpy()
