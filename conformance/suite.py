"""Which of coremltools' shipped tests make up the suite: paths inside the installed wheel.

The suite is CNN-oriented, like the models this project converts. Left out, with the reason:
- recurrent ops (lstm / gru / rnn; ~8,600 tests, hours here): the evaluator has LSTM only,
  checked against PyTorch in tests/unit/neuralnetwork/test_recurrent.py;
- compression, quantization and ``constexpr_*`` ops (iOS16 constexpr, iOS17 quantization,
  iOS18 compression; ~6,100 tests), stateful models (iOS18 states: ``make_state`` needs
  Core ML) and iOS18 transformers (scaled dot-product attention);
- random ops (distributions, compared by moments) and the coreml dialect;
- NeuralNetwork tests of the file format or of Mac-only APIs (compiled models, custom layers,
  TensorFlow numerics).
"""
from __future__ import annotations

import os

MIL_OPS = "converters/mil/mil/ops/tests"
NN = "test/neural_network"

FULL = [
    MIL_OPS + "/iOS14/test_activation.py",
    MIL_OPS + "/iOS14/test_control_flow.py",
    MIL_OPS + "/iOS14/test_conv.py",
    MIL_OPS + "/iOS14/test_elementwise_binary.py",
    MIL_OPS + "/iOS14/test_elementwise_unary.py",
    MIL_OPS + "/iOS14/test_image_resizing.py",
    MIL_OPS + "/iOS14/test_linear.py",
    MIL_OPS + "/iOS14/test_normalization.py",
    MIL_OPS + "/iOS14/test_pool.py",
    MIL_OPS + "/iOS14/test_reduction.py",
    MIL_OPS + "/iOS14/test_scatter_gather.py",
    MIL_OPS + "/iOS14/test_tensor_operation.py",
    MIL_OPS + "/iOS14/test_tensor_transformation.py",
    MIL_OPS + "/iOS15/test_elementwise_unary.py",
    MIL_OPS + "/iOS15/test_image_resizing.py",
    MIL_OPS + "/iOS15/test_tensor_transformation.py",
    MIL_OPS + "/iOS16/test_conv.py",
    MIL_OPS + "/iOS16/test_image_resizing.py",
    MIL_OPS + "/iOS16/test_scatter_gather.py",
    MIL_OPS + "/iOS16/test_tensor_operation.py",
    MIL_OPS + "/iOS16/test_tensor_transformation.py",
    MIL_OPS + "/iOS17/test_activation.py",
    MIL_OPS + "/iOS17/test_conv.py",
    MIL_OPS + "/iOS17/test_elementwise_unary.py",
    MIL_OPS + "/iOS17/test_image_resizing.py",
    MIL_OPS + "/iOS17/test_linear.py",
    MIL_OPS + "/iOS17/test_normalization.py",
    MIL_OPS + "/iOS17/test_reduction.py",
    MIL_OPS + "/iOS17/test_scatter_gather.py",
    MIL_OPS + "/iOS17/test_tensor_operation.py",
    MIL_OPS + "/iOS17/test_tensor_transformation.py",
    MIL_OPS + "/iOS18/test_tensor_transformation.py",
    NN + "/test_numpy_nn_layers.py",
    NN + "/test_nn_builder.py",
    NN + "/test_neural_networks.py",
    NN + "/test_simple_nn_inference.py",
    NN + "/test_model.py",
    NN + "/test_quantization.py",
]

# The CI subset: the op families of the zoo's models (conv, pool, elementwise, linear,
# reductions, resizing) and the NeuralNetwork layer tests, without the stress and "slow"
# variants (their time goes into a few large convolutions: thousands of predictions each).
# Fixed, so that a CI run compares with the last.
# Under 10 minutes on this 2-core machine.
CI = [
    MIL_OPS + "/iOS14/test_conv.py",
    MIL_OPS + "/iOS14/test_pool.py",
    MIL_OPS + "/iOS14/test_elementwise_binary.py",
    MIL_OPS + "/iOS14/test_linear.py",
    MIL_OPS + "/iOS14/test_reduction.py",
    MIL_OPS + "/iOS14/test_image_resizing.py::TestUpsampleNearestNeighbor",
    MIL_OPS + "/iOS14/test_image_resizing.py::TestUpsampleBilinear",
    MIL_OPS + "/iOS14/test_image_resizing.py::TestResizeBilinear",
    MIL_OPS + "/iOS14/test_image_resizing.py::TestCropResize",
    NN + "/test_numpy_nn_layers.py::NewLayersSimpleTest",
    NN + "/test_numpy_nn_layers.py::IOS14SingleLayerTests",
]

# pytest -k expression a suite always applies (anded with the user's -k).
KEYWORDS = {"ci": "not stress and not slow"}

SUITES = {"full": FULL, "ci": CI}


def coremltools_root() -> str:
    """Folder of the installed coremltools package (the tests ship inside it)."""
    import importlib.util
    spec = importlib.util.find_spec("coremltools")
    if spec is None or not spec.origin:
        raise RuntimeError("coremltools is not installed; the conformance suite runs its tests")
    return os.path.dirname(spec.origin)


def test_paths(name: str):
    """Absolute paths (file or file::Class node ids) of a suite's tests."""
    root = coremltools_root()
    return [os.path.join(root, rel) for rel in SUITES[name]]


def file_of(path: str) -> str:
    return path.split("::", 1)[0]


def shards(paths, n: int):
    """``paths`` split into at most ``n`` groups of about equal work, each in suite order.
    A file's size stands for its number of tests; a file::Class entry counts as its file."""
    n = max(1, min(n, len(paths)))
    loads, groups = [0] * n, [[] for _ in range(n)]
    for path in sorted(paths, key=lambda p: -os.path.getsize(file_of(p))):
        i = loads.index(min(loads))
        loads[i] += os.path.getsize(file_of(path))
        groups[i].append(path)
    order = {p: k for k, p in enumerate(paths)}
    return [sorted(g, key=order.get) for g in groups if g]
