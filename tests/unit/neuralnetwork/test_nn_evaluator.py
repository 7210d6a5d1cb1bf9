"""NeuralNetwork evaluator: the layer loop (coreml_reference/neuralnetwork/__init__.py):
inputs, fp16 emulation, trace and errors.

Expected values come from numpy / torch, never from the evaluator."""
from __future__ import annotations

import numpy as np
import pytest

from nn_helpers import (FP32, InputError, LayerError, ModelFileError, NeuralNetworkBuilder,
                        UnsupportedError, coreml_reference, datatypes,
                        network, randn)


def test_fp16_rounds_weights_and_overflows_to_inf():
    x = np.array([[1.0, 300.0]], dtype=np.float32)
    w = np.array([[1.0001, 0.0], [0.0, 300.0]], dtype=np.float32)
    spec = network({"x": x.shape}, lambda nb: nb.add_inner_product("fc", w, None, 2, 2, False, "x", "out"))
    fp32 = coreml_reference.predict(spec, {"x": x})["out"]
    fp16 = coreml_reference.predict(spec, {"x": x}, precision="fp16")["out"]
    np.testing.assert_allclose(fp32, [[1.0001, 90000.0]], rtol=1e-6)
    assert fp16[0, 0] == np.float32(np.float16(1.0001)) == 1.0     # weight rounded
    assert np.isinf(fp16[0, 1])                                   # 90000 > 65504



def test_trace_sees_every_blob_with_layer_name():
    x = randn(2, 3)

    def build(nb):
        nb.add_activation("first", "RELU", "x", "mid")
        nb.add_unary("second", "mid", "out", "abs")
    seen = []
    coreml_reference.predict(network({"x": x.shape}, build), {"x": x},
                             trace=lambda *args: seen.append(args))
    assert [(name, kind, layer) for name, kind, _, layer in seen] == [
        ("mid", "activation", "first"), ("out", "unary", "second")]
    np.testing.assert_array_equal(seen[0][2], np.maximum(x, 0))


def tiny_relu():
    return network({"x": (2, 3)}, lambda nb: nb.add_activation("relu", "RELU", "x", "out"))


def test_missing_input_is_named():
    with pytest.raises(InputError, match="missing input 'x'"):
        coreml_reference.predict(tiny_relu(), {"y": randn(2, 3)})


def test_wrong_input_shape_names_both_shapes():
    with pytest.raises(InputError, match=r"shape \[3, 2\]; the model takes \[2, 3\]"):
        coreml_reference.predict(tiny_relu(), {"x": randn(3, 2)})


def test_integer_input_for_float_array_is_converted_like_mlmodel_predict():
    # MLModel.predict converts any real array to the declared FLOAT32 multi-array.
    x = np.array([[-2, 0, 3], [4, -5, 6]], dtype=np.int64)
    out = coreml_reference.predict(tiny_relu(), {"x": x})
    np.testing.assert_array_equal(next(iter(out.values())), [[0, 0, 3], [4, 0, 6]])


def test_non_numeric_input_is_rejected():
    with pytest.raises(InputError, match="'x' has dtype <U1"):
        coreml_reference.predict(tiny_relu(), {"x": np.full((2, 3), "a")})


def test_unsupported_layer_names_type_layer_and_file(tmp_path):
    # A simple RNN: a layer type the evaluator does not implement (LSTM it does).
    spec = network({"x": (5, 1, 3, 1, 1)}, lambda nb: nb.add_simple_rnn(
        "rnn", np.zeros((4, 4)), np.zeros((4, 3)), np.zeros(4), 4, 3, "TANH", ["x"], ["out"]))
    path = tmp_path / "rnn.mlmodel"
    path.write_bytes(spec.SerializeToString())
    with pytest.raises(UnsupportedError) as info:
        coreml_reference.predict(str(path), {"x": randn(5, 1, 3, 1, 1)})
    text = str(info.value)
    assert "simpleRecurrent" in text and "'rnn'" in text and str(path) in text


def test_unexpected_exception_is_wrapped_with_layer(monkeypatch):
    from coreml_reference.neuralnetwork import layers

    def broken(ctx, p, inputs):
        raise RuntimeError("boom")
    monkeypatch.setitem(layers.REGISTRY, "activation", broken)
    with pytest.raises(LayerError, match="activation layer 'relu'.*boom"):
        coreml_reference.predict(tiny_relu(), {"x": randn(2, 3)})


def test_corrupt_and_truncated_files(tmp_path):
    garbage = tmp_path / "garbage.mlmodel"
    garbage.write_bytes(b"\xff\xfe this is not a protobuf \x00\x01" * 10)
    with pytest.raises(ModelFileError):
        coreml_reference.predict(str(garbage), {"x": randn(2, 3)})
    truncated = tmp_path / "truncated.mlmodel"
    truncated.write_bytes(tiny_relu().SerializeToString()[:-7])
    with pytest.raises(ModelFileError):
        coreml_reference.predict(str(truncated), {"x": randn(2, 3)})


def test_non_neural_spec_is_rejected():
    from coremltools.proto import Model_pb2
    spec = Model_pb2.Model()
    spec.specificationVersion = 4
    spec.treeEnsembleRegressor.treeEnsemble.numPredictionDimensions = 1
    with pytest.raises(ModelFileError, match="treeEnsembleRegressor"):
        coreml_reference.predict(spec, {})


def test_rank5_mapping_of_legacy_inputs():
    """Specification <= 3 maps a [C] input to the blob [1, 1, C, 1, 1]."""
    w = randn(2, 3)
    builder = NeuralNetworkBuilder([("x", datatypes.Array(3))], [("out", None)])
    builder.add_inner_product("fc", w, None, 3, 2, False, "x", "out")
    x = randn(3)
    got = coreml_reference.predict(builder.spec, {"x": x})["out"]
    np.testing.assert_allclose(got.reshape(-1), w @ x, **FP32)


def test_unsupported_parameter_names_layer_and_what():
    # A pooling type outside MAX / AVERAGE / L2: the message says which layer and what.
    spec = network({"x": (1, 2, 4, 4)}, lambda nb: nb.add_pooling(
        "pool", 2, 2, 2, 2, "MAX", "VALID", input_name="x", output_name="out"))
    spec.neuralNetwork.layers[0].pooling.type = 7
    with pytest.raises(UnsupportedError) as info:
        coreml_reference.predict(spec, {"x": randn(1, 2, 4, 4)})
    assert str(info.value) == "pooling layer 'pool': unsupported pooling type 7"


def test_layer_registry_refuses_a_duplicate_name():
    from coreml_reference.neuralnetwork.layers.registry import register
    with pytest.raises(ValueError, match="'convolution' registered twice"):
        register("convolution")(lambda ctx, p, inputs: None)
