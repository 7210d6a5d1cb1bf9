"""NeuralNetwork evaluator: random layers (coreml_reference/neuralnetwork/layers/random.py).

Random numbers cannot be compared one by one with a reference: the tests check the
distribution (moments, frequencies) and that a seeded layer repeats itself, as Core ML's do."""
from __future__ import annotations

import numpy as np
import pytest

from nn_helpers import coreml_reference, network


def _run(build, feeds, shape_in=(2,)):
    spec = network({"x": shape_in}, build)
    first = coreml_reference.predict(spec, feeds)["out"]
    second = coreml_reference.predict(spec, feeds)["out"]
    return first, second


@pytest.mark.parametrize("kind", ["static", "like", "dynamic"])
def test_random_normal_moments_and_seed(kind):
    shape = (200, 300)
    feeds = {"x": np.array(shape, np.float32)} if kind == "dynamic" else {"x": np.zeros(shape, np.float32)}
    in_shape = (2,) if kind == "dynamic" else shape

    def build(nb):
        if kind == "static":
            nb.add_random_normal_static("r", "out", output_shape=list(shape), mean=1.5, stddev=0.5, seed=7)
        else:
            getattr(nb, "add_random_normal_" + kind)("r", "x", "out", mean=1.5, stddev=0.5, seed=7)
    first, second = _run(build, feeds, in_shape)
    assert first.shape == shape
    np.testing.assert_array_equal(first, second)             # seeded: the same every time
    assert abs(first.mean() - 1.5) < 0.01 and abs(first.std() - 0.5) < 0.01


def test_random_uniform_and_bernoulli():
    shape = [100, 500]
    spec = network({"x": (1,)}, lambda nb: nb.add_random_uniform_static(
        "u", "out", output_shape=shape, minval=-2.0, maxval=4.0, seed=3))
    u = coreml_reference.predict(spec, {"x": np.zeros(1, np.float32)})["out"]
    assert u.min() >= -2 and u.max() < 4 and abs(u.mean() - 1.0) < 0.05
    spec = network({"x": (1,)}, lambda nb: nb.add_random_bernoulli_static(
        "b", "out", output_shape=shape, prob=0.3, seed=3))
    b = coreml_reference.predict(spec, {"x": np.zeros(1, np.float32)})["out"]
    assert set(np.unique(b)) <= {0.0, 1.0} and abs(b.mean() - 0.3) < 0.01


def test_categorical_distribution_frequencies():
    probs = np.array([[0.1, 0.6, 0.3], [0.0, 0.0, 1.0]], np.float32)
    spec = network({"x": probs.shape}, lambda nb: nb.add_categorical_distribution(
        "c", "x", "out", num_samples=20000, is_logits=False, seed=5))
    samples = coreml_reference.predict(spec, {"x": probs})["out"]
    assert samples.shape == (2, 20000)
    freq = np.stack([np.bincount(row.astype(int), minlength=3) / 20000 for row in samples])
    np.testing.assert_allclose(freq, probs, atol=0.01)
