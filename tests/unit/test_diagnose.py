"""coreml-routes diagnose: planted faults, and the report must point at them.

The slow tests run the CLI in a subprocess with COREML_ROUTES_TEST_MODELS=1 (the small
models of zoo/testing.py) and the routes' envs (.tox/v3, .tox/v4; v9 is this Python).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[2]

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


def have_env(route):
    env = {"v3": "v3", "v4": "v4"}.get(route)
    return env is None or (ROOT / ".tox" / env / "bin" / "python").exists()


def diagnose(tmp_path, route, model, *extra, hooks=None):
    if not have_env(route):
        pytest.skip("no .tox env for route {}".format(route))
    args = [sys.executable, "-m", "coreml_routes.cli", "diagnose", "--route", route,
            "--model", model, "--out", str(tmp_path)] + list(extra)
    if isinstance(hooks, str):       # the hooks' code: write it to a file
        (tmp_path / "hooks.py").write_text(hooks)
        hooks = tmp_path / "hooks.py"
    if hooks is not None:
        args += ["--hooks", str(hooks)]
    env = dict(os.environ, COREML_ROUTES_TEST_MODELS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=300)
    name = "diagnosis-fp16.json" if "fp16" in extra else "diagnosis.json"
    path = tmp_path / model / route / name
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
    with pytest.raises(ConversionError) as info:
        with Stages()("convert"):
            convert_single_node(Node())
    assert failed_op(info.value) == {"type": "int", "name": "29", "outputs": ["29"]}


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
    found, compared = first_divergence(builder.spec, traced, reference)
    assert compared == 2
    assert (found["type"], found["name"], found["output"]) == ("constantPad", "p", "b")
    assert found["inputs"][0]["producer"] == {"type": "activation", "name": "r"}
    assert found["inputs"][0]["checked"]
    assert "axis 0 +1, axis 1 +1 (Core ML), PyTorch changes axis 1 +2" in found["note"]
    assert "padAmounts: [1,0,0,1]" in found["params"]
