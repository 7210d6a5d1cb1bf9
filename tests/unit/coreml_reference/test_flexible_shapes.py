"""The evaluator runs a flexible model at every shape it declares (ML Program and
NeuralNetwork: multiArrayType shapeRange / enumeratedShapes) and refuses any other shape with
one InputError naming the input and the allowed shapes; ``predict`` says it in one line, exit 2.
The model is a small CNN over a variable-length waveform; expected values come from PyTorch."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
ct = pytest.importorskip("coremltools")

import coreml_reference  # noqa: E402
from coreml_reference import InputError  # noqa: E402
from coreml_routes import cli  # noqa: E402


class WaveCNN(torch.nn.Module):
    """Conv1d, max pooling, Conv1d, then a mean over time: any length in, [1, 4] out."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = torch.nn.Conv1d(1, 8, 9, stride=2, padding=4)
        self.conv2 = torch.nn.Conv1d(8, 4, 5, padding=2)

    def forward(self, x):
        pooled = torch.nn.functional.max_pool1d(torch.relu(self.conv1(x)), 2)
        return torch.relu(self.conv2(pooled)).mean(-1)


def _convert(tmp_path, shape, convert_to, name):
    module = WaveCNN().eval()
    traced = torch.jit.trace(module, torch.randn(1, 1, 400))
    kwargs = {"convert_to": convert_to}
    if convert_to == "mlprogram":
        kwargs.update(compute_precision=ct.precision.FLOAT32, minimum_deployment_target=ct.target.iOS16)
    mlmodel = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=shape)], **kwargs)
    path = str(tmp_path / (name + (".mlpackage" if convert_to == "mlprogram" else ".mlmodel")))
    mlmodel.save(path)
    return module, path


def _torch(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.fixture(scope="module", params=["mlprogram", "neuralnetwork"])
def ranged(request, tmp_path_factory):
    shape = (1, 1, ct.RangeDim(lower_bound=200, upper_bound=800, default=400))
    return _convert(tmp_path_factory.mktemp("range"), shape, request.param, "range")


@pytest.fixture(scope="module", params=["mlprogram", "neuralnetwork"])
def enumerated(request, tmp_path_factory):
    shape = ct.EnumeratedShapes(shapes=[(1, 1, 200), (1, 1, 400), (1, 1, 800)], default=(1, 1, 400))
    return _convert(tmp_path_factory.mktemp("enum"), shape, request.param, "enum")


@pytest.mark.parametrize("length", [200, 333, 800])
def test_a_range_runs_at_both_ends_and_inside(ranged, length):
    module, path = ranged
    x = np.random.RandomState(length).randn(1, 1, length).astype(np.float32)
    out = coreml_reference.predict(path, {"x": x})
    got = next(iter(out.values()))
    np.testing.assert_allclose(got.reshape(1, 4), _torch(module, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("length", [199, 801])
def test_outside_the_range_is_one_input_error_naming_the_allowed_shapes(ranged, length):
    _, path = ranged
    with pytest.raises(InputError) as e:
        coreml_reference.predict(path, {"x": np.zeros((1, 1, length), np.float32)})
    assert "'x'" in str(e.value) and "200..800" in str(e.value)


@pytest.mark.parametrize("length", [200, 400, 800])
def test_every_enumerated_shape_runs(enumerated, length):
    module, path = enumerated
    x = np.random.RandomState(length).randn(1, 1, length).astype(np.float32)
    got = next(iter(coreml_reference.predict(path, {"x": x}).values()))
    np.testing.assert_allclose(got.reshape(1, 4), _torch(module, x), rtol=1e-4, atol=1e-5)


def test_a_shape_not_enumerated_is_refused(enumerated):
    _, path = enumerated
    with pytest.raises(InputError) as e:
        coreml_reference.predict(path, {"x": np.zeros((1, 1, 300), np.float32)})
    assert "'x'" in str(e.value) and "[1, 1, 800]" in str(e.value)


def test_predict_outside_the_declared_range_is_one_error_line_exit_2(ranged, tmp_path, capsys):
    _, path = ranged
    npz = tmp_path / "long.npz"
    np.savez(npz, x=np.zeros((1, 1, 900), np.float32))
    code = cli.main(["predict", path, "--input", str(npz)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and "'x'" in err[0] and "200..800" in err[0], err


@pytest.mark.parametrize("kept", [8, 1])
def test_one_loaded_model_runs_each_length_with_its_own_prepared_layers(ranged, kept,
                                                                         monkeypatch):
    # A NeuralNetwork layer keeps its prepared convolution / pooling per input shape (a few
    # shapes at most): running a loaded model at one length must not reuse what was prepared
    # for another.
    from coreml_reference.neuralnetwork import context
    monkeypatch.setattr(context, "SHAPES_KEPT", kept)
    module, path = ranged
    loaded = coreml_reference.load(path)
    for length in (400, 200, 800, 400):
        x = np.random.RandomState(length).randn(1, 1, length).astype(np.float32)
        got = next(iter(coreml_reference.predict(loaded, {"x": x}).values()))
        np.testing.assert_allclose(got.reshape(1, 4), _torch(module, x), rtol=1e-4, atol=1e-5)
