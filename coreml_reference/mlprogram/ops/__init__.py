"""MIL op implementations; importing this package fills the registry."""
from coreml_reference.mlprogram.ops import (  # noqa: F401
    activation, classifier, constexpr, control, conv_pool, elementwise, linear_norm, recurrent,
    reduction, resize, state, tensor)
