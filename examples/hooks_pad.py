"""Conversion hooks for route v3: convert ONNX ``Pad`` the way Core ML reads its pads.

    coreml-routes convert --route v3 --model pann_mobilenetv1 --hooks examples/hooks_pad.py

Why: ONNX lists pads as all the begins, then all the ends (``[b0, b1, b2, e0, e1, e2]``);
Core ML's ``constantPad`` reads one (begin, end) pair per axis (``[b0, e0, b1, e1, ...]``).
onnx-coreml 1.3 copies the ONNX list unchanged. That is harmless for all-zero pads, but
``F.avg_pool1d(x, 3, 1, padding=1)`` (PANNs' time smoothing) exports as a Pad of a
(batch, channels, time) tensor with pads ``[0, 0, 1, 0, 0, 1]`` — Core ML then pads the
channels at the start and time only at the end, and the next ``add`` fails to broadcast.

The hook picks the nodes by their attributes, not by name: constant-mode pads with a non-zero
amount, whose order matters. Others go to onnx-coreml's own converter unchanged. A hooks file
is plain Python run in the route's env (here Python 3.7, coremltools 3.3).
"""


def pad_per_axis(builder, node, graph, err):
    """onnx-coreml custom conversion function: (builder, node, graph, err) -> None."""
    mode = node.attrs.get("mode", "constant")
    if isinstance(mode, bytes):
        mode = mode.decode()
    pads = [int(p) for p in node.attrs.get("pads", [])]
    if mode != "constant" or not any(pads):
        from onnx_coreml._operators_nd import _convert_pad   # the converter's own
        return _convert_pad(builder, node, graph, err)
    rank = len(pads) // 2
    per_axis = []
    for axis in range(rank):
        per_axis += [pads[axis], pads[rank + axis]]    # (begin, end) of each axis
    builder.add_constant_pad(name=node.name or node.outputs[0], input_names=node.inputs[:1],
                             output_name=node.outputs[0],
                             value=float(node.attrs.get("value", 0.0)), pad_amounts=per_axis)


HOOKS = {"v3": {"Pad": pad_per_axis}}
