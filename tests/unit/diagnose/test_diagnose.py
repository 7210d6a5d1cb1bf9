"""coreml-routes diagnose: planted faults, and the report must point at them.

The slow tests run the CLI in a subprocess on the small models of tests/models/planted.py
(loaded as a user's model file) and the routes' envs (.tox/v3, .tox/v4; v9 is this Python).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "models"))
import planted  # noqa: E402 — the planted-fault models, as a user's file

BAD_PAD = '''
def pad_wrong_axis(builder, node, graph, err):
    # pads the channels (axis 1) by what PyTorch pads the time axis with
    pads = [int(p) for p in node.attrs["pads"]]
    rank = len(pads) // 2
    amounts = [0] * (2 * rank)
    amounts[2], amounts[3] = pads[rank - 1], pads[2 * rank - 1]
    builder.add_constant_pad(name=node.name or node.outputs[0], input_names=node.inputs[:1],
                             output_name=node.outputs[0], value=0.0, pad_amounts=amounts)
HOOKS = {"v3": {"Pad": pad_wrong_axis}}
'''

BAD_RELU = '''
def relu(context, node):
    from coremltools.converters.mil import Builder as mb
    x = context[node.inputs[0]]
    context.add(mb.relu(x=mb.mul(x=x, y=-1.0), name=node.name))   # relu(-x): wrong sign
HOOKS = {"v4": {"relu": relu}, "v9": {"relu": relu}, "v9-export": {"relu": relu}}
'''


# One ReLU in the middle of PANNs MobileNetV1 (the 14th of 28) converted with the wrong sign,
# every other one converted right. The hook writes the name of the node it broke beside
# itself, so the test knows where the fault is without asking diagnose.
MID_RELU = '''
import os
PLANTED = os.path.join(os.path.dirname(__file__), "planted.txt")
FAULT_AT = 14
_count = [0]


def _faulty(name):
    _count[0] += 1
    if _count[0] != FAULT_AT:
        return False
    with open(PLANTED, "w") as f:
        f.write(name)
    return True


def relu_mil(context, node):
    from coremltools.converters.mil import Builder as mb
    x = context[node.inputs[0]]
    if _faulty(node.name):
        x = mb.mul(x=x, y=-1.0)
    context.add(mb.relu(x=x, name=node.name))


def relu_onnx(builder, node, graph, err):
    name, source = node.name or node.outputs[0], node.inputs[0]
    if _faulty(node.outputs[0]):
        builder.add_activation(name + "_negated", "LINEAR", source, name + "_negated",
                               params=[-1.0, 0.0])
        source = name + "_negated"
    builder.add_activation(name, "RELU", source, node.outputs[0])


HOOKS = {"v3": {"Relu": relu_onnx, "Pad": pad_per_axis}, "v4": {"relu": relu_mil},
         "v9": {"relu": relu_mil}, "v9-export": {"relu": relu_mil}}
'''


def have_env(route):
    env = {"v3": "v3", "v4": "v4"}.get(route)
    return env is None or (ROOT / ".tox" / env / "bin" / "python").exists() or \
        bool(os.environ.get("COREML_ROUTES_PYTHON_" + env.upper()))


def diagnose(tmp_path, route, model, *extra, hooks=None):
    if not have_env(route):
        pytest.skip("no .tox env for route {}".format(route))
    which = planted.cli_args(model, tmp_path) if model in planted.NAMES else ["--model", model]
    args = [sys.executable, "-m", "coreml_routes.cli", "diagnose", "--route", route,
            "--out", str(tmp_path)] + which + list(extra)
    if isinstance(hooks, str):       # the hooks' code: write it to a file
        (tmp_path / "hooks.py").write_text(hooks)
        hooks = tmp_path / "hooks.py"
    if hooks is not None:
        args += ["--hooks", str(hooks)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=300)
    name = "diagnosis-fp16.json" if "fp16" in extra else "diagnosis.json"
    folder = route + "+fp32" if route.startswith("v9") else route   # ML Programs: the fp32 variant
    path = tmp_path / model / folder / name
    assert path.exists(), done.stdout + done.stderr
    print(done.stdout)
    return json.loads(path.read_text()), done.stdout


# ------------------------------------------------------------------ planted faults (slow)

@pytest.mark.slow
def test_v3_pad_on_wrong_axis_names_the_pad_layer(tmp_path):
    d, text = diagnose(tmp_path, "v3", "test_pool1d", hooks=BAD_PAD)
    assert d["verdict"] == "diverges"
    assert d["layer"]["type"] == "constantPad"
    assert d["layer"]["shape_coreml"] != d["layer"]["shape_pytorch"]
    assert all(i["checked"] for i in d["layer"]["inputs"])      # its input still agreed
    assert "constantPad" in text


@pytest.mark.slow
def test_v3_stock_pad_is_found_and_example_hook_fixes_it(tmp_path):
    d, _ = diagnose(tmp_path, "v3", "test_pool1d")
    assert d["verdict"] == "diverges" and d["layer"]["type"] == "constantPad"
    d, _ = diagnose(tmp_path, "v3", "test_pool1d", hooks=ROOT / "examples" / "hooks_pad.py")
    assert d["verdict"] == "matches", d


@pytest.mark.slow
@pytest.mark.parametrize("route,expected", [("v4", "activation"), ("v9", "relu"),
                                            ("v9-export", "relu")])
def test_wrong_sign_relu_is_named(tmp_path, route, expected):
    d, _ = diagnose(tmp_path, route, "test_pool1d", hooks=BAD_RELU)
    assert d["verdict"] == "diverges"
    assert d["layer"]["type"] == expected
    assert d["layer"]["shape_coreml"] == d["layer"]["shape_pytorch"]


@pytest.mark.slow
@pytest.mark.parametrize("route,relu_type", [("v3", "activation"), ("v4", "activation"),
                                             ("v9", "relu"), ("v9-export", "relu")])
def test_a_fault_mid_pann_is_named(tmp_path, route, relu_type):
    """The real MobileNetV1, one wrong ReLU half-way: diagnose names that ReLU, not anything
    before it (v9's transposed front end included), and every value before it agrees."""
    from diagnose.divergence import sanitize
    hooks = (ROOT / "examples" / "hooks_pad.py").read_text() + MID_RELU   # v3: its Pad fix too
    d, text = diagnose(tmp_path, route, "pann_mobilenetv1", hooks=hooks)
    planted = (tmp_path / "planted.txt").read_text()
    assert d["verdict"] == "diverges", text
    assert d["layer"]["type"] == relu_type
    assert d["layer"]["output"] in (planted, sanitize(planted)), text
    assert d["layer"]["shape_coreml"] == d["layer"]["shape_pytorch"]
    counts = d["counts"]
    assert counts["agree"] >= 40 and counts["layout_differs"] == 0   # all before it agree
    assert not d["outputs"]["clip_output"]["agree"]       # and the fault reaches the output
    assert "first divergent layer: {} ".format(relu_type) in text


@pytest.mark.slow
@pytest.mark.parametrize("route", ["v9", "v9-export"])
def test_clean_pann_matches_through_layout_changes(tmp_path, route):
    """ct 9 moves a transpose across the front end's pow/add: those values are compared in
    PyTorch's axis order, and agree."""
    d, text = diagnose(tmp_path, route, "pann_mobilenetv1")
    assert d["verdict"] == "matches", text
    counts = d["counts"]
    assert counts["permuted"] >= 3 and counts["depart"] == 0
    assert counts["compared"] - counts["constants_compared"] >= 110      # of 113 computed
    assert "compared {} of {} traced values".format(counts["compared"], counts["traced"]) in text


@pytest.mark.slow
def test_unconvertible_module_is_named_with_its_op(tmp_path):
    d, text = diagnose(tmp_path, "v9", "test_nested_upsample")
    assert d["verdict"] == "conversion failed"
    assert d["module"] == {"path": "head.1", "type": "Upsample"}
    assert d["failed_op"]["type"] == "int"
    assert "0-dimensional arrays" in d["error"]
    assert "head.1 (Upsample)" in text


@pytest.mark.slow
def test_pann_upsample_on_v9(tmp_path):
    d, _ = diagnose(tmp_path, "v9", "pann_upsample")
    assert d["module"]["type"] == "Upsample" and d["failed_op"]["type"] == "int"


@pytest.mark.slow
@pytest.mark.parametrize("route", ["v9", "v3"])
def test_fp16_overflow_names_the_first_overflowing_layer(tmp_path, route):
    d, _ = diagnose(tmp_path, route, "test_fp16_overflow", "--precision", "fp16")
    layer = d["layer"]
    assert d["verdict"] == "overflow", d
    assert layer["fp32_max_abs"] > 65504
    assert all(i["fp32_max_abs"] < 65504 for i in layer["inputs"] if "fp32_max_abs" in i)


# ------------------------------------------------------------------ the pieces (fast)

def test_smallest_failing_descends_into_the_failing_child():
    from diagnose.failure import smallest_failing
    model = nn.Sequential(nn.ReLU(), nn.Sequential(nn.Tanh(), nn.Sequential(nn.Sigmoid())))
    bad = {"1", "1.1", "1.1.0"}

    def attempt(path):
        failed = path in bad
        return {"status": "failed" if failed else "ok", "error": "boom" if failed else None}
    path, module, record, attempts = smallest_failing(model, {"status": "failed", "error": "boom"},
                                                      attempt)
    assert path == "1.1.0" and isinstance(module, nn.Sigmoid)
    assert [a["module"] for a in attempts] == ["0", "1", "1.0", "1.1", "1.1.0"]


def test_failing_child_stops_at_parent_when_children_convert():
    from diagnose.failure import smallest_failing
    model = nn.Sequential(nn.ReLU(), nn.Tanh())
    path, _, _, _ = smallest_failing(model, {"status": "failed", "error": "x"},
                                     lambda p: {"status": "ok"})
    assert path == ""


def test_failed_op_is_read_from_the_traceback():
    from backends.base import ConversionError, Stages
    from backends.worker import failed_op

    class Node(object):
        kind, name, outputs = "int", "29", ["29"]

    def convert_single_node(node):
        raise TypeError("only 0-dimensional arrays can be converted to Python scalars")
    with pytest.raises(ConversionError) as caught:
        with Stages()("convert"):
            convert_single_node(Node())
    assert failed_op(caught.value) == {"type": "int", "name": "29", "outputs": ["29"]}


def test_names_and_shapes():
    from diagnose.divergence import Reference, compare, sanitize
    assert sanitize("input.3") == "input_3" and sanitize("15") == "var_15"
    ref = Reference({"input.3": np.ones(3)}, "test")
    assert ref.get("input_3") is not None and ref.get("nope") is None
    assert compare(np.ones((1, 3, 1)), np.ones((1, 3)))["agree"]
    assert not compare(np.ones((1, 4)), np.ones((1, 3)))["agree"]
    assert not compare(-np.ones(3), np.ones(3))["agree"]


def test_first_divergence_on_a_spec():
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    from diagnose.divergence import Reference, Traced, first_divergence
    builder = NeuralNetworkBuilder([("x", datatypes.Array(2, 3))], [("b", None)],
                                   disable_rank5_shape_mapping=True)
    builder.add_activation("r", "RELU", "x", "a")
    builder.add_constant_pad("p", ["a"], "b", pad_amounts=[1, 0, 0, 1])
    traced = Traced()
    traced("a", "activation", np.ones((2, 3)), "r")
    traced("b", "constantPad", np.ones((3, 4)), "p")
    reference = Reference({"a": np.ones((2, 3)), "b": np.ones((2, 5))}, "test")
    found, counts = first_divergence(builder.spec, traced, reference)
    assert counts["compared"] == 2 and counts["depart"] == 1
    assert (found["type"], found["name"], found["output"]) == ("constantPad", "p", "b")
    assert found["inputs"][0]["producer"] == {"type": "activation", "name": "r"}
    assert found["inputs"][0]["checked"]
    assert "axis 0 +1, axis 1 +1 (Core ML), PyTorch changes axis 1 +2" in found["note"]
    assert "padAmounts: [1,0,0,1]" in found["params"]


def test_layer_params_read_as_written():
    # onnx-coreml 1.3's Log: an enum by its name, a float32 field as the value it holds.
    from coremltools.proto import NeuralNetwork_pb2
    from diagnose.divergence import _params
    unary = NeuralNetwork_pb2.UnaryFunctionLayerParams
    assert _params(unary(type=unary.LOG, epsilon=1e-6, alpha=1.0, scale=1.0)) == \
        "type: LOG, alpha: 1, epsilon: 1e-06, scale: 1"


def test_a_permuted_layout_is_compared_in_pytorch_order():
    from diagnose.divergence import compare
    torch_value = np.arange(2 * 3 * 5, dtype=np.float64).reshape(1, 2, 3, 5)
    coreml = torch_value.transpose(0, 1, 3, 2)            # ct 9 moved a transpose across
    result = compare(coreml, torch_value)
    assert result["agree"] and result["layout"] == "permuted"
    result = compare(coreml + 1.0, torch_value)           # permuted and wrong: it departs
    assert result["agree"] is False and result["layout"] == "permuted"
    square = np.random.RandomState(0).rand(4, 4)
    assert compare(square.T, square)["agree"]             # equal shapes, axes swapped
    assert not compare(square.T, square, layouts=False)["agree"]
    assert not compare(coreml, torch_value, layouts=False)["agree"]   # model outputs


def test_reshaped_unknown_and_resized_layouts():
    from diagnose.divergence import compare
    value = np.arange(12, dtype=np.float64)
    assert compare(value.reshape(2, 6), value.reshape(3, 4))["layout"] == "reshaped"
    unknown = compare(value[::-1].reshape(2, 6), value.reshape(3, 4))
    assert unknown["agree"] is None and unknown["layout"] == "differs"   # not compared
    assert compare(np.ones((2, 6)), np.ones((2, 5)))["agree"] is False   # sizes differ


def test_axis_orders_are_all_found_up_to_a_limit():
    from diagnose.divergence import _axis_orders
    assert _axis_orders([3, 5, 3], [3, 3, 5], 10) == [(0, 2, 1), (2, 0, 1)]
    assert _axis_orders([2] * 6, [2] * 6, 120) is None                   # 720 orders
    assert _axis_orders([2, 3], [2, 4], 10) == []


def test_counts_say_what_was_compared_and_why_not():
    from diagnose.divergence import Reference, Traced, first_divergence
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder
    builder = NeuralNetworkBuilder([("x", datatypes.Array(2, 3))], [("c", None)],
                                   disable_rank5_shape_mapping=True)
    builder.add_transpose("t", [1, 0], "x", "a")
    builder.add_activation("r", "RELU", "a", "b")
    builder.add_activation("s", "SIGMOID", "b", "c")
    x = np.arange(6.0).reshape(2, 3) - 2
    traced = Traced()
    traced("w", "loadConstantND", np.ones(3), "w")             # converter-made constant
    traced("a", "transpose", x.T, "t")                         # PyTorch kept (2, 3)
    traced("b", "activation", np.maximum(x.T, 0), "r")
    traced("c", "activation", np.maximum(x.T, 0), "s")         # wrong: no sigmoid
    traced("d", "activation", np.zeros(4), "q")                # no PyTorch twin
    reference = Reference({"a": x, "b": np.maximum(x, 0), "c": 1 / (1 + np.exp(-np.maximum(x, 0)))},
                          "test")
    found, counts = first_divergence(builder.spec, traced, reference)
    assert (found["name"], found["output"]) == ("s", "c")
    assert "axes in another order" in found["note"]
    assert dict((k, counts[k]) for k in ("traced", "compared", "agree", "permuted", "depart",
                                         "constants", "constants_without_twin",
                                         "values_without_twin")) == dict(
        traced=5, compared=3, agree=2, permuted=2, depart=1, constants=1,
        constants_without_twin=1, values_without_twin=1)


def test_outputs_that_all_match_are_never_diverges():
    from diagnose.run import verdict
    layer = {"type": "pow", "name": "var_52", "output": "var_52"}
    found = {"outputs": {"y": {"agree": True}}, "layer": dict(layer)}
    assert verdict(found, None) == "matches"
    assert found["layer"] is None and found["departs_yet_outputs_match"] == layer
    found = {"outputs": {"y": {"agree": False}}, "layer": dict(layer)}
    assert verdict(found, None) == "diverges"
    assert verdict({"outputs": {"y": {"agree": False}}, "layer": None}, None) == \
        "diverges (no matched layer departs)"
    assert verdict({"outputs": {}, "layer": None}, RuntimeError("x")) == "evaluator stopped"
