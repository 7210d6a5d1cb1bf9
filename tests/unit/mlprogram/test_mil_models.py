"""The ML Program evaluator on real converted models: every zoo model, routes v9 and
v9-export, against PyTorch's golden outputs saved next to each model.

Build directory: $COREML_ROUTES_BUILD, else <repo>/build; a missing artifact is a skip, and
so is a model whose conversion.json records a failed conversion (with its error as reason).
Run as typed, an fp32 program (``<route>+fp32``) is held to the fp32 tolerance of
coreml_reference.metrics.within_tolerance, the routes' default fp16 program to the fp16 one;
fp16 emulation (GPU / ANE float16) is reported and must reach SNR >= metrics.FP16_MIN_SNR_DB.
Run with -s to see the measured errors.
"""
from __future__ import annotations

import numpy as np
import pytest

from coreml_reference import metrics, predict
from golden_builds import converted, report, zoo_models

ROUTES = ["v9", "v9-export", "v9+fp32", "v9-export+fp32"]
TYPED = {"v9": "fp16", "v9-export": "fp16", "v9+fp32": "fp32", "v9-export+fp32": "fp32"}


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("model", zoo_models())
def test_as_typed_matches_pytorch(model, route):
    path, inputs, golden = converted(model, route)
    outputs = predict(path, inputs)
    assert set(golden) <= set(outputs), "outputs {} lack golden {}".format(sorted(outputs),
                                                                             sorted(golden))
    for name, want in golden.items():
        got = outputs[name]
        report(model, route, TYPED[route], name, got, want)
        assert got.shape == want.shape
        assert metrics.within_tolerance(got, want, TYPED[route]), name


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("model", zoo_models())
def test_fp16_emulation_is_close(model, route):
    path, inputs, golden = converted(model, route)
    outputs = predict(path, inputs, precision="fp16")
    for name, want in golden.items():
        got = outputs[name]
        snr = report(model, route, "fp16", name, got, want)
        assert np.array_equal(np.isfinite(got), np.isfinite(want)), name
        assert snr >= metrics.FP16_MIN_SNR_DB, name


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES)
def test_trace_reaches_every_op(route):
    """trace sees one value per op output, named as in the program, ending in the outputs."""
    path, inputs, golden = converted("pann_mobilenetv1", route)
    from coreml_reference.loader import load
    from coreml_reference.mlprogram.program import main_block
    _, block = main_block(load(path))
    declared = [out.name for op in block.operations for out in op.outputs]
    seen = []
    outputs = predict(path, inputs, trace=lambda var, op_type, value, op_name: seen.append(var))
    assert seen == declared
    assert set(golden) <= set(outputs)
