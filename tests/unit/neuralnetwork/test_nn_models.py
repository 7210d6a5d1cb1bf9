"""The NeuralNetwork evaluator on real converted models: every zoo model, routes v3 and v4,
against PyTorch's golden outputs saved next to each model.

Build directory: $COREML_ROUTES_BUILD, else <repo>/build; a missing artifact is a skip.
fp32 is held to coreml_reference.metrics.within_tolerance; fp16 (an emulation of GPU / ANE
float16) is reported and must stay finite wherever the golden is, with SNR >=
metrics.FP16_MIN_SNR_DB. Run with -s to see the measured errors.

Known converter fault: stock onnx-coreml 1.3 (route v3) copies ONNX's pad order
([b0, b1, b2, e0, e1, e2]) into constantPad, which Core ML reads per axis ([b0, e0, ...]);
PANNs' avg_pool1d(padding=1) then pads the wrong axes and the following add cannot
broadcast (see examples/hooks_pad.py). Such a model must fail with ShapeError, as Core ML
would; a v3 build made with that hook is compared with the golden like any other.
"""
from __future__ import annotations


import numpy as np
import pytest

from coreml_reference import ShapeError, metrics, predict
from golden_builds import converted, report, zoo_models

ROUTES = ["v3", "v4"]


def has_onnx_ordered_pad(path):
    """A constantPad whose amounts are asymmetric read per axis but symmetric read in ONNX's
    begins-then-ends order: the stock v3 pad fault."""
    from coreml_reference.loader import load
    spec = load(path).spec
    network = getattr(spec, spec.WhichOneof("Type"))
    for layer in network.layers:
        if layer.WhichOneof("layer") != "constantPad":
            continue
        pads = list(layer.constantPad.padAmounts)
        half = len(pads) // 2
        per_axis = [(pads[2 * i], pads[2 * i + 1]) for i in range(half)]
        onnx_order = list(zip(pads[:half], pads[half:]))
        if any(pads) and any(b != e for b, e in per_axis) and all(b == e for b, e in onnx_order):
            return True
    return False


def evaluated(model, route, precision):
    """[(name, evaluator's output, PyTorch's golden output, SNR)], shapes checked; None for a
    stock v3 build with the pad fault, which must raise ShapeError as Core ML would."""
    path, inputs, golden = converted(model, route)
    if route == "v3" and has_onnx_ordered_pad(path):
        with pytest.raises(ShapeError, match="cannot broadcast"):
            predict(path, inputs, precision=precision)
        return None
    outputs = predict(path, inputs, precision=precision)
    assert set(golden) <= set(outputs)
    found = []
    for name, want in golden.items():
        got = outputs[name]
        assert got.shape == want.shape, (name, got.shape, want.shape)
        found.append((name, got, want, report(model, route, precision, name, got, want)))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("model", zoo_models())
def test_fp32_matches_pytorch(model, route):
    for name, got, want, _ in evaluated(model, route, "fp32") or []:
        assert metrics.within_tolerance(got, want, "fp32"), name


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("model", zoo_models())
def test_fp16_emulation_is_finite_and_close(model, route):
    for name, got, want, snr in evaluated(model, route, "fp16") or []:
        assert np.all(np.isfinite(got[np.isfinite(want)])), name
        assert snr >= metrics.FP16_MIN_SNR_DB, (name, snr)
