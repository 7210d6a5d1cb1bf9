"""Conversion hooks for route v3: convert ONNX ``Log`` without onnx-coreml's 1e-6 offset.

    coreml-routes convert --route v3 --model pann_mobilenetv1 --hooks examples/hooks_log.py

Why: a NeuralNetwork ``unary`` LOG layer computes ``log(x + epsilon)``. onnx-coreml 1.3
writes ONNX ``Log`` through coremltools 3.3's ``add_unary``, whose default ``epsilon`` is
1e-6. ONNX ``Log`` is a plain ``log(x)``. PANNs' log-mel takes the log of a power
spectrogram clamped at 1e-10, so on quiet audio 1e-6 dominates the small mel bins and the
log-mel is lifted by several dB. coremltools' own converters (4 and later) write the MIL
``log`` op, whose default epsilon is 1e-45, into the same layer field: this hook does the
same, so the layer computes ``log(x)`` for every x a float32 can hold above 1e-45.

``tox -e v3`` passes it with the Pad fix (``--hooks examples/hooks_pad.py --hooks
examples/hooks_log.py``). A hooks file is plain Python run in the route's env (here Python 3.7,
coremltools 3.3).
"""

LOG_EPSILON = 1e-45   # coremltools' MIL `log` default, as its NeuralNetwork backend writes it


def log_plain(builder, node, graph, err):
    """onnx-coreml custom conversion function: (builder, node, graph, err) -> None.

    The converter's own ``Log`` conversion (layer and shape bookkeeping), then the epsilon of
    the layer it wrote."""
    from onnx_coreml._operators_nd import _convert_log   # the converter's own
    _convert_log(builder, node, graph, err)
    layer = builder.nn_spec.layers[-1]
    if layer.WhichOneof("layer") != "unary" or node.outputs[0] not in layer.output:
        raise ValueError("hooks_log: expected onnx-coreml's Log to write one unary layer "
                         "for {!r}".format(node.outputs[0]))
    layer.unary.epsilon = LOG_EPSILON


HOOKS = {"v3": {"Log": log_plain}}
