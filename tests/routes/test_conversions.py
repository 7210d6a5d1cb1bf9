"""Every zoo model by every route of this env: converted, named and shaped as in PyTorch,
with golden outputs that a fresh PyTorch run reproduces. Python 3.7 compatible."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import build_dir

# Failures that are facts about a route, asserted so a change either way is noticed.
KNOWN_FAILURES = {
    ("pann_upsample", "v9"): "only 0-dimensional arrays can be converted to Python scalars",
}


def folder(model, route):
    return os.path.join(build_dir(), model, route)


def load_record(model, route):
    path = os.path.join(folder(model, route), "conversion.json")
    if not os.path.exists(path):
        pytest.fail("no conversion record at {}: run the route's batch first".format(path))
    with open(path) as f:
        return json.load(f)


def golden(model, route):
    with np.load(os.path.join(folder(model, route), "golden.npz"), allow_pickle=False) as data:
        return dict((k, data[k]) for k in data.files)


def require_ok(model, route):
    if (model, route) in KNOWN_FAILURES:
        pytest.skip("{} does not convert by {} (known, asserted in test_converts)".format(model, route))


def test_converts(model, route):
    import backends
    record = load_record(model, route)
    expected_failure = KNOWN_FAILURES.get((model, route))
    if expected_failure:
        assert record["status"] == "failed"
        assert expected_failure in record["error"]
        return
    assert record["status"] == "ok", "{} by {} failed at {}: {}".format(
        model, route, record.get("stage"), record.get("error"))
    names = [backends.get(route).artifact, "golden.npz", "conversion.json"]
    if route == "v3":
        names.append("model.onnx")
    for name in names:
        assert os.path.exists(os.path.join(folder(model, route), name)), name
    assert record["seconds"]["convert"] > 0
    assert record["toolchain"]["torch"]


def test_spec_names_and_shapes_match_pytorch(model, route):
    import backends
    import zoo
    require_ok(model, route)
    backend = backends.get(route)     # each route reads its own artifact (.aimodel: Core AI)
    facts = backend.inspect(os.path.join(folder(model, route), backend.artifact))
    arrays = golden(model, route)
    entry = zoo.get(model)
    assert [f["name"] for f in facts["inputs"]] == list(entry.inputs)
    assert [f["name"] for f in facts["outputs"]] == list(entry.outputs)
    for feature in facts["inputs"]:
        assert tuple(feature["shape"]) == arrays["input:" + feature["name"]].shape
    for feature in facts["outputs"]:
        assert tuple(feature["shape"]) == arrays["output:" + feature["name"]].shape


def test_golden_equals_fresh_pytorch_run(model, route):
    import torch
    import zoo
    require_ok(model, route)
    arrays = golden(model, route)
    entry = zoo.get(model)
    module = entry.build()
    inputs = [arrays["input:" + name] for name in entry.inputs]
    samples = load_record(model, route)["samples"]
    for name, value in entry.example_inputs(samples).items():
        np.testing.assert_array_equal(arrays["input:" + name], value)
    with torch.no_grad():
        outputs = module(*[torch.from_numpy(a) for a in inputs])
    if not isinstance(outputs, tuple):
        outputs = (outputs,)
    for name, value in zip(entry.outputs, outputs):
        np.testing.assert_allclose(value.numpy(), arrays["output:" + name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)
