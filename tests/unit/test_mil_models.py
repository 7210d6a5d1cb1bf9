"""The ML Program evaluator on real converted models: every zoo model, routes v9 and
v9-export, against PyTorch's golden outputs saved next to each model.

Build directory: $COREML_ROUTES_BUILD, else <repo>/build; a missing artifact is a skip, and
so is a model whose conversion.json records a failed conversion (with its error as reason).
fp32 is held to coreml_reference.metrics.within_tolerance; fp16 (an emulation of GPU / ANE
float16) is reported and must reach SNR >= metrics.FP16_MIN_SNR_DB. Run with -s to see the
measured errors.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from coreml_reference import metrics, predict

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("COREML_ROUTES_BUILD") or os.path.join(ROOT, "build")
MODELS = ["pann_mobilenetv1", "pann_mobilenetv2", "logmel", "pann_upsample"]
ROUTES = ["v9", "v9-export"]


def zoo_models():
    try:
        import zoo
        return list(zoo.MODELS)
    except Exception:           # noqa: BLE001 — the zoo needs torch; fall back to the list
        return MODELS


def artifact(model, route):
    folder = os.path.join(BUILD, model, route)
    record = os.path.join(folder, "conversion.json")
    if os.path.exists(record):
        with open(record) as f:
            conversion = json.load(f)
        if conversion.get("status") != "ok":
            pytest.skip("{}/{}: conversion {}: {}".format(model, route, conversion.get("status"),
                                                          conversion.get("error")))
    path, golden = os.path.join(folder, "model.mlpackage"), os.path.join(folder, "golden.npz")
    if not (os.path.exists(path) and os.path.exists(golden)):
        pytest.skip("no {}/{} build in {} (model.mlpackage + golden.npz); set "
                    "COREML_ROUTES_BUILD or run coreml-routes convert".format(model, route, BUILD))
    with np.load(golden) as data:
        inputs = {k[len("input:"):]: data[k] for k in data.files if k.startswith("input:")}
        outputs = {k[len("output:"):]: data[k] for k in data.files if k.startswith("output:")}
    return path, inputs, outputs


def report(model, route, precision, name, got, want):
    error, snr = metrics.max_abs_error(got, want), metrics.snr_db(got, want)
    print("\n{}/{} {} {}: max abs error {:.3e}, SNR {:.1f} dB".format(
        model, route, precision, name, error, snr))
    return snr


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("model", zoo_models())
def test_fp32_matches_pytorch(model, route):
    path, inputs, golden = artifact(model, route)
    outputs = predict(path, inputs)
    assert set(golden) <= set(outputs), "outputs {} lack golden {}".format(sorted(outputs),
                                                                             sorted(golden))
    for name, want in golden.items():
        got = outputs[name]
        report(model, route, "fp32", name, got, want)
        assert got.shape == want.shape
        assert metrics.within_tolerance(got, want, "fp32"), name


@pytest.mark.slow
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("model", zoo_models())
def test_fp16_emulation_is_close(model, route):
    path, inputs, golden = artifact(model, route)
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
    path, inputs, golden = artifact("pann_mobilenetv1", route)
    from coreml_reference.loader import load
    from coreml_reference.mlprogram.program import main_block
    _, block = main_block(load(path))
    declared = [out.name for op in block.operations for out in op.outputs]
    seen = []
    outputs = predict(path, inputs, trace=lambda var, op_type, value, op_name: seen.append(var))
    assert seen == declared
    assert set(golden) <= set(outputs)
