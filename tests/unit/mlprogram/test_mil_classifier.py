"""ML Program evaluator: classifiers (coreml_reference/mlprogram/ops/classifier.py).

A model converted with coremltools' ClassifierConfig ends in a ``classify`` op; its two outputs
must come back as MLModel.predict gives them: the label, and {label: probability}."""
from __future__ import annotations

import numpy as np
import pytest

import coreml_reference
from mil_helpers import ct, torch


@pytest.mark.parametrize("labels", [["cat", "dog", "bird", "fish"], [10, 20, 30, 40]])
def test_classifier_outputs_label_and_probabilities(tmp_path, labels):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Softmax(dim=-1)).eval()
    x = torch.randn(1, 5)
    model = ct.convert(torch.jit.trace(net, x), inputs=[ct.TensorType(name="x", shape=(1, 5))],
                       classifier_config=ct.ClassifierConfig(labels), convert_to="mlprogram",
                       compute_precision=ct.precision.FLOAT32, skip_model_load=True)
    path = str(tmp_path / "classifier.mlpackage")
    model.save(path)
    description = model.get_spec().description

    got = coreml_reference.predict(path, {"x": x.numpy()})

    probs = net(x).detach().numpy().reshape(-1)
    label = got[description.predictedFeatureName]
    assert label == labels[int(np.argmax(probs))] and type(label) is type(labels[0])
    table = got[description.predictedProbabilitiesName]
    assert list(table) == labels
    np.testing.assert_allclose([table[k] for k in labels], probs, rtol=1e-5)
