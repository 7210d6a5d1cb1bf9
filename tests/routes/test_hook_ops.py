"""What a hook can key on, in each route's own env: the op names its converter looks up,
counted (``converter_ops``), and the warning for a key that names none. Python 3.7."""
from __future__ import annotations

import json
import os
import sys

from conftest import ROOT, build_dir

RELU_KEY = {"v3": "Relu", "v4": "relu", "v9": "relu", "v9-export": "relu",
            "coreai": "aten::relu.default", "et": "relu"}


def relus_in_pytorch(route):
    """ReLUs of pann_mobilenetv1 as the toolchain sees them before our code does: ONNX
    nodes of the exported file (v3), else aten::relu nodes of torch's own trace."""
    import torch
    import zoo
    if route == "v3":
        import onnx
        graph = onnx.load(os.path.join(build_dir(), "pann_mobilenetv1", "v3", "model.onnx")).graph
        return sum(1 for node in graph.node if node.op_type == "Relu")
    entry = zoo.get("pann_mobilenetv1")
    inputs = [torch.from_numpy(a) for a in entry.example_inputs(32000).values()]
    with torch.no_grad():
        traced = torch.jit.trace(entry.build(), inputs)
    graph = traced.inlined_graph    # held: iterating a temporary graph's nodes segfaults
    return sum(1 for n in graph.nodes() if n.kind() in ("aten::relu", "aten::relu_"))


def test_converter_ops_count_every_relu(route):
    with open(os.path.join(build_dir(), "pann_mobilenetv1", route, "conversion.json")) as f:
        ops = json.load(f)["converter_ops"]
    assert ops[RELU_KEY[route]] == relus_in_pytorch(route) > 20


def test_a_hook_key_naming_no_op_is_recorded_and_warned(route, tmp_path, capsys):
    from backends.runner import convert_isolated
    hooks = tmp_path / "hooks.py"
    hooks.write_text("def f(*args):\n    raise AssertionError('never called')\n"
                     "HOOKS = {{{!r}: {{'Reluu': f}}}}\n".format(route))
    sys.path.insert(0, os.path.join(ROOT, "tests", "models"))
    import planted          # a user's model file, with its example input as the host writes it
    record = convert_isolated(sys.executable, route, "{}:pool1d".format(planted.__file__),
                              str(tmp_path), name="test_pool1d", hooks=str(hooks),
                              inputs=planted.write_inputs("pool1d", tmp_path), outputs=["scores"])
    assert record["status"] == "ok", record.get("error")
    assert record["hook_misses"] == {"Reluu": [RELU_KEY[route]]}
    warnings = [l for l in capsys.readouterr().err.splitlines() if l.startswith("warning:")]
    assert warnings == ["warning: route {}: hook 'Reluu' matches no op its converter sees in "
                        "model test_pool1d; closest: {}".format(route, RELU_KEY[route])]
