"""Route v3 on ONNX files as real projects ship them (tox -e v3, Python 3.7): a tf2onnx-style
symbolic batch (``[N, 76, 32, 1]``) takes the given input's shape before onnx-coreml runs,
and a 0-sized dimension in a converted model is never silent. The ONNX file is written here
with onnx.helper; expected outputs come from PyTorch on the same arrays."""
from __future__ import annotations

import sys
from collections import OrderedDict

import numpy as np
import pytest

SHAPE = (1, 76, 32, 1)


@pytest.fixture(autouse=True)
def v3_only(route):
    if route != "v3":
        pytest.skip("ONNX files convert by route v3")


def symbolic_batch_onnx(path, batch="N"):
    import onnx
    from onnx import TensorProto, helper
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [1], [0.5])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["input_1", "scale"], ["scaled"], name="mul"),
         helper.make_node("Relu", ["scaled"], ["output_1"], name="relu")],
        "tf2onnx_like",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [batch, 76, 32, 1])],
        [helper.make_tensor_value_info("output_1", TensorProto.FLOAT, [batch, 76, 32, 1])],
        [scale])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 4
    # No onnx.checker here: with torch already imported (other tests do), onnx 1.6's C++
    # checker segfaults in this env (GUIDE: import onnx before torch). The worker that
    # converts the file is its own process and imports onnx first.
    onnx.save(model, path)


def test_symbolic_batch_takes_the_given_shape_and_converts(tmp_path):
    import onnx
    import torch
    from backends.builds import Case, write_cases_file
    from backends.runner import convert_isolated
    onnx_path = str(tmp_path / "kws.onnx")
    symbolic_batch_onnx(onnx_path)
    x = np.random.RandomState(0).randn(*SHAPE).astype(np.float32)
    expected = torch.relu(torch.from_numpy(x) * 0.5).numpy()
    inputs = str(tmp_path / "inputs.npz")
    write_cases_file(inputs, [Case("example", OrderedDict(input_1=x), OrderedDict(output_1=expected))])
    record = convert_isolated(sys.executable, "v3", onnx_path, str(tmp_path / "build"),
                              name="kws", inputs=inputs)
    assert record["status"] == "ok", record.get("error")
    assert record["onnx_input_shapes_fixed"] == {"input_1": ["N", 76, 32, 1]}
    assert record["zero_dims"] == []
    assert [i["shape"] for i in record["inputs"]] == [list(SHAPE)]
    folder = tmp_path / "build" / "kws" / "v3"
    dims = onnx.load(str(folder / "model.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == list(SHAPE)


def test_a_fixed_dimension_other_than_the_given_one_is_bad_input(tmp_path):
    from backends.builds import Case, write_cases_file
    from backends.runner import BadInput, convert_isolated
    onnx_path = str(tmp_path / "kws.onnx")
    symbolic_batch_onnx(onnx_path, batch=2)
    x = np.zeros(SHAPE, np.float32)
    inputs = str(tmp_path / "inputs.npz")
    write_cases_file(inputs, [Case("example", OrderedDict(input_1=x), OrderedDict(output_1=x))])
    with pytest.raises(BadInput) as e:
        convert_isolated(sys.executable, "v3", onnx_path, str(tmp_path / "build"), name="kws",
                         inputs=inputs)
    assert "declares shape [2, 76, 32, 1]" in str(e.value)


def test_zero_sized_dimensions_of_a_converted_spec_are_listed():
    import coremltools
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    from backends.routes.v3 import zero_dims
    builder = NeuralNetworkBuilder([("input_1", datatypes.Array(*SHAPE))], [("out", None)],
                                   disable_rank5_shape_mapping=True)
    builder.add_activation("relu", "RELU", "input_1", "out")
    spec = builder.spec
    assert zero_dims(spec) == []
    del spec.description.input[0].type.multiArrayType.shape[:]
    spec.description.input[0].type.multiArrayType.shape.extend([0, 76, 32, 1])
    assert zero_dims(spec) == [{"feature": "input", "name": "input_1", "shape": [0, 76, 32, 1]}]
    assert coremltools.__version__.startswith("3.")
