"""NeuralNetwork layer implementations, one module per family; each registers its types."""
from coreml_reference.neuralnetwork.layers.registry import REGISTRY, register  # noqa: F401
from coreml_reference.neuralnetwork.layers import (  # noqa: F401  (imported to register)
    activation, constant, control, conv, elementwise, index, matmul, norm, padding, pooling,
    random, recurrent, reduce, resize, shape, unary)
