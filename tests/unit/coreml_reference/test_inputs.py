"""Inputs as MLModel.predict takes them (coreml_reference/inputs.py): image inputs.

A PIL image feeds an image input; Core ML reads its pixels (0..255) into [1, C, H, W] in the
declared channel order, then applies the model's scale and biases (in-graph for an ML Program,
``preprocessing`` for a NeuralNetwork). The expected values apply that preprocessing by hand
to the image's pixels and run PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")
torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

import coreml_reference  # noqa: E402
from coreml_reference import InputError  # noqa: E402

H, W = 4, 5
SCALE = 1 / 255.0


def _net(channels):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(channels, 2, 1), torch.nn.ReLU()).eval()


def _convert(tmp_path, net, image_type, convert_to):
    traced = torch.jit.trace(net, torch.rand(image_type.shape.shape))
    extra = {"compute_precision": ct.precision.FLOAT32} if convert_to == "mlprogram" else {}
    model = ct.convert(traced, inputs=[image_type], convert_to=convert_to, skip_model_load=True,
                       **extra)
    path = str(tmp_path / ("m.mlpackage" if convert_to == "mlprogram" else "m.mlmodel"))
    model.save(path)
    return path


@pytest.mark.parametrize("convert_to", ["neuralnetwork", "mlprogram"])
@pytest.mark.parametrize("layout", ["RGB", "BGR"])
def test_color_image_is_read_in_its_channel_order_then_scaled(tmp_path, convert_to, layout):
    bias = [-0.5, 0.1, 0.25]
    image_type = ct.ImageType(name="img", shape=(1, 3, H, W), scale=SCALE, bias=bias,
                              color_layout=getattr(ct.colorlayout, layout))
    net = _net(3)
    path = _convert(tmp_path, net, image_type, convert_to)
    rgb = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)

    got = coreml_reference.predict(path, {"img": Image.fromarray(rgb, "RGB")})

    chw = rgb.transpose(2, 0, 1).astype(np.float32)
    if layout == "BGR":
        chw = chw[::-1]
    x = chw * SCALE + np.float32(bias).reshape(3, 1, 1)
    want = net(torch.from_numpy(np.ascontiguousarray(x[None]))).detach().numpy()
    out = next(iter(got.values()))
    np.testing.assert_allclose(out.reshape(want.shape), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("convert_to", ["neuralnetwork", "mlprogram"])
def test_grayscale_image(tmp_path, convert_to):
    image_type = ct.ImageType(name="img", shape=(1, 1, H, W), scale=SCALE, bias=-0.5,
                              color_layout=ct.colorlayout.GRAYSCALE)
    net = _net(1)
    path = _convert(tmp_path, net, image_type, convert_to)
    gray = np.random.default_rng(2).integers(0, 256, (H, W), dtype=np.uint8)

    got = coreml_reference.predict(path, {"img": Image.fromarray(gray, "L")})

    x = gray.astype(np.float32)[None, None] * SCALE - 0.5
    want = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(next(iter(got.values())).reshape(want.shape), want,
                               rtol=1e-5, atol=1e-6)


def test_a_wrong_image_is_one_clear_error(tmp_path):
    image_type = ct.ImageType(name="img", shape=(1, 3, H, W), color_layout=ct.colorlayout.RGB)
    path = _convert(tmp_path, _net(3), image_type, "mlprogram")
    rgb = np.zeros((H, W, 3), np.uint8)
    with pytest.raises(InputError, match=r"'img' is an image input \(RGB\): it takes PIL mode 'RGB', "
                                         r"not 'L'"):
        coreml_reference.predict(path, {"img": Image.fromarray(rgb[..., 0], "L")})
    with pytest.raises(InputError, match=r"'img' is 6x4 \(width x height\); the model takes 5x4"):
        coreml_reference.predict(path, {"img": Image.fromarray(np.zeros((4, 6, 3), np.uint8))})
    with pytest.raises(InputError, match=r"pass a PIL image of mode 'RGB', not ndarray"):
        coreml_reference.predict(path, {"img": rgb})


def _rank5_identity_model(**preprocessing):
    """A spec-v1 NeuralNetwork (rank-5 blobs) whose image input passes through unchanged."""
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    from coremltools.models.neural_network.utils import make_image_input
    builder = NeuralNetworkBuilder([("data", datatypes.Array(3, H, W))],
                                   [("out", datatypes.Array(3, H, W))])
    builder.add_activation("identity", "LINEAR", "data", "out")
    model = make_image_input(ct.models.MLModel(builder.spec, skip_model_load=True), "data",
                             image_format="NCHW", **preprocessing)
    return model.get_spec()


def test_rank5_network_scaler_per_channel():
    spec = _rank5_identity_model(scale=2.0, red_bias=-5.0, green_bias=-6.0,
                                 blue_bias=-2.5)
    rgb = np.random.default_rng(4).integers(0, 256, (H, W, 3), dtype=np.uint8)
    got = coreml_reference.predict(spec, {"data": Image.fromarray(rgb, "RGB")})["out"]
    want = 2.0 * rgb.transpose(2, 0, 1).astype(np.float32) \
        + np.float32([-5.0, -6.0, -2.5]).reshape(3, 1, 1)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-6)


def test_mean_image_is_subtracted_and_a_wrong_sized_one_named():
    spec = _rank5_identity_model()
    mean = np.arange(3 * H * W, dtype=np.float32)
    del spec.neuralNetwork.preprocessing[:]
    step = spec.neuralNetwork.preprocessing.add()
    step.featureName = "data"
    step.meanImage.meanImage.extend(mean.tolist())
    rgb = np.random.default_rng(5).integers(0, 256, (H, W, 3), dtype=np.uint8)
    got = coreml_reference.predict(spec, {"data": Image.fromarray(rgb, "RGB")})["out"]
    want = rgb.transpose(2, 0, 1).astype(np.float32) - mean.reshape(3, H, W)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-6)
    del step.meanImage.meanImage[-1]
    with pytest.raises(coreml_reference.ModelFileError, match="mean image of input 'data' has 59"):
        coreml_reference.predict(spec, {"data": Image.fromarray(rgb, "RGB")})
