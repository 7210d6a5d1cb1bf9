"""A model Core ML would reject is called invalid (InvalidModelError, a ShapeError, which
verify reports as "diverges: Core ML would reject it"), naming the layer / op; a layer the
evaluator lacks stays UnsupportedError, naming the type. Specs built here with coremltools'
builders, then broken the way a converter breaks them."""
from __future__ import annotations

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")

from coremltools.models import datatypes  # noqa: E402
from coremltools.models.neural_network import NeuralNetworkBuilder  # noqa: E402

import coreml_reference  # noqa: E402
from coreml_reference import InvalidModelError, ShapeError, UnsupportedError  # noqa: E402

X = np.ones((1, 2, 4, 4), np.float32)


def builder():
    return NeuralNetworkBuilder([("x", datatypes.Array(1, 2, 4, 4))], [("out", None)],
                                disable_rank5_shape_mapping=True)


def test_a_layer_reading_a_blob_nobody_produces_is_invalid_and_named():
    b = builder()
    b.add_activation("relu_1", "RELU", "x", "h")
    b.add_activation("relu_2", "RELU", "ghost", "out")
    with pytest.raises(InvalidModelError) as e:
        coreml_reference.predict(b.spec, {"x": X})
    assert isinstance(e.value, ShapeError)          # what verify turns into "diverges"
    assert e.value.layer_name == "relu_2"
    assert "activation layer 'relu_2'" in str(e.value) and "'ghost'" in str(e.value)


def test_convolution_whose_channels_do_not_fit_its_input_is_invalid_and_named():
    b = builder()
    weights = np.ones((3, 3, 3, 4), np.float32)      # kernel_channels 3 for a 2-channel input
    b.add_convolution("conv", kernel_channels=3, output_channels=4, height=3, width=3,
                      stride_height=1, stride_width=1, border_mode="valid", groups=1, W=weights,
                      b=None, has_bias=False, input_name="x", output_name="out")
    with pytest.raises(InvalidModelError) as e:
        coreml_reference.predict(b.spec, {"x": X})
    assert e.value.layer_name == "conv"
    assert "convolution layer 'conv'" in str(e.value)


def test_a_kernel_larger_than_its_input_is_invalid_and_named():
    b = builder()
    b.add_pooling("pool", height=5, width=5, stride_height=1, stride_width=1, layer_type="MAX",
                  padding_type="VALID", input_name="x", output_name="out")
    with pytest.raises(InvalidModelError) as e:
        coreml_reference.predict(b.spec, {"x": X})
    assert e.value.layer_name == "pool"


def test_a_layer_type_newer_than_the_spec_version_is_invalid():
    b = builder()
    b.add_cumsum("cumsum", ["x"], "out", axis=1)      # an iOS 14 (version 5) layer
    spec = b.spec
    spec.specificationVersion = 4
    with pytest.raises(InvalidModelError) as e:
        coreml_reference.predict(spec, {"x": X})
    assert e.value.layer_name == "cumsum"
    assert "needs specification version 5 (iOS 14), the model declares 4" in str(e.value)
    spec.specificationVersion = 5                    # the same layer where it exists runs
    out = coreml_reference.predict(spec, {"x": X})["out"]
    np.testing.assert_array_equal(out, np.cumsum(X, axis=1))


def test_a_layer_the_evaluator_lacks_is_unsupported_not_invalid():
    b = builder()
    b.add_activation("relu", "RELU", "x", "h")
    layer = b.spec.neuralNetwork.layers.add()
    layer.name, layer.input[:], layer.output[:] = "mine", ["h"], ["out"]
    layer.custom.className = "MyLayer"               # custom layers run the app's own code
    with pytest.raises(UnsupportedError) as e:
        coreml_reference.predict(b.spec, {"x": X})
    assert not isinstance(e.value, ShapeError)
    assert "custom" in str(e.value) and "'mine'" in str(e.value)


def test_an_ml_program_op_reading_a_variable_nobody_produces_is_invalid_and_named():
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3))], opset_version=ct.target.iOS16)
    def prog(x):
        y = mb.relu(x=x, name="first")
        return mb.add(x=y, y=x, name="second")

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       compute_precision=ct.precision.FLOAT32)
    spec = model.get_spec()
    block = list(spec.mlProgram.functions["main"].block_specializations.values())[0]
    ops = block.operations
    second = [op for op in ops if op.type == "add"][0]
    second.inputs["x"].arguments[0].name = "nowhere"
    with pytest.raises(InvalidModelError) as e:
        coreml_reference.predict(spec, {"x": np.ones((2, 3), np.float32)})
    assert e.value.layer_name == "second"
    assert "'nowhere'" in str(e.value) and "add op" in str(e.value)
