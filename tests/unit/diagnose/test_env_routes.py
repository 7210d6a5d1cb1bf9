"""diagnose --route et / --route coreai, end to end: a model whose relu is lowered wrongly on
purpose (as abs, by a hooks file) must be named; the same model lowered by the stock
converter must match. The search runs in the routes' own envs (.tox/et, .tox/coreai), which
CI creates before the unit tests; expected values come from PyTorch (the golden outputs the
worker computes, and torch run node by node)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

MODELS = '''
import torch


class ConvReluHead(torch.nn.Module):
    """conv -> relu -> mean -> linear: one Core ML partition for et, every op lowered by
    coreai-torch."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(2, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(-1))


def build():
    torch.manual_seed(0)
    return ConvReluHead().eval()
'''

# relu lowered as abs, for both routes (each converter's own hook point).
RELU_AS_ABS = '''
def relu_as_abs_mil(context, node):
    from coremltools.converters.mil import Builder as mb
    context.add(mb.abs(x=context[node.inputs[0]], name=node.name))


def relu_as_abs_coreai(values_map, node, loc):
    from coreai._compiler.dialects import coreai
    return coreai.abs_(values_map[node.args[0].name])


HOOKS = {"et": {"relu": relu_as_abs_mil}, "coreai": {"aten::relu.default": relu_as_abs_coreai}}
'''


def have_env(route):
    return (ROOT / ".tox" / route / "bin" / "python").exists() or \
        bool(os.environ.get("COREML_ROUTES_PYTHON_" + route.upper()))


def diagnose(tmp_path, route, *extra, hooks=None):
    if not have_env(route):
        pytest.skip("no .tox/{} env".format(route))
    (tmp_path / "models.py").write_text(MODELS)
    args = [sys.executable, "-m", "coreml_routes.cli", "diagnose", "--route", route,
            "--model", "{}:build".format(tmp_path / "models.py"), "--input", "x:1x2x8",
            "--out", str(tmp_path / "out")] + list(extra)
    if hooks is not None:
        (tmp_path / "hooks.py").write_text(hooks)
        args += ["--hooks", str(tmp_path / "hooks.py")]
    done = subprocess.run(args, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    return done


def diagnosed(tmp_path, route, folder, exit_code, *extra, hooks=None, name="diagnosis.json"):
    """diagnose's process, its exit code checked, and the report it wrote in ``folder``."""
    done = diagnose(tmp_path, route, *extra, hooks=hooks)
    assert done.returncode == exit_code, done.stdout + done.stderr
    path = tmp_path / "out" / "models-build" / folder / name
    assert path.exists(), list((tmp_path / "out").rglob("*.json"))
    return done, json.loads(path.read_text())


@pytest.mark.slow
def test_et_names_the_partition_then_the_relu_lowered_wrongly(tmp_path):
    # diagnosed in float32, as the ML Program routes
    done, d = diagnosed(tmp_path, "et", "et+fp32", 1, hooks=RELU_AS_ABS)
    assert d["verdict"] == "diverges" and d["variant"] == "fp32"
    assert d["partition"]["index"] == 0 and d["partition"]["precision"] == "fp32"
    assert d["op"]["node"] == "aten_relu_default" and d["op"]["target"] == "aten.relu.default"
    assert not d["op"]["within_tolerance"] and d["op"]["max_abs_error"] > 0.1
    assert not d["outputs"]["output_0"]["agree"]     # the whole .pte's run departs as well
    c = d["counts"]
    assert c["partitions"] == 1 and c["partitions_within_tolerance"] == 0
    assert 1 <= c["agree"] < c["compared"]           # the conv before relu still agrees
    assert "first divergent partition: 0" in done.stdout
    assert "first divergent op in it: aten.relu.default 'aten_relu_default'" in done.stdout


@pytest.mark.slow
def test_et_stock_lowering_matches(tmp_path):
    _, d = diagnosed(tmp_path, "et", "et+fp32", 0)
    assert d["verdict"] == "matches" and d["partition"] is None and d["op"] is None
    assert d["outputs"]["output_0"]["agree"]
    assert d["counts"]["agree"] == d["counts"]["compared"] > 0


@pytest.mark.slow
def test_coreai_names_the_relu_lowered_wrongly(tmp_path):
    done, d = diagnosed(tmp_path, "coreai", "coreai", 1, hooks=RELU_AS_ABS)
    assert d["verdict"] == "diverges" and d["variant"] is None
    assert d["op"]["node"] == "relu" and d["op"]["target"] == "aten::relu.default"
    assert d["partition"] is None
    assert not d["outputs"]["output_0"]["agree"]
    assert 1 <= d["counts"]["agree"] < d["counts"]["compared"]     # convolution still agrees
    assert "first divergent op: aten::relu.default 'relu'" in done.stdout


@pytest.mark.slow
def test_coreai_stock_lowering_matches_in_fp32_and_its_fp16_program(tmp_path):
    _, d = diagnosed(tmp_path, "coreai", "coreai", 0)
    assert d["verdict"] == "matches" and d["op"] is None
    assert d["counts"]["agree"] == d["counts"]["compared"] > 0
    _, d = diagnosed(tmp_path, "coreai", "coreai+fp16", 0, "--precision", "fp16",
                     name="diagnosis-fp16.json")                # the fp16 variant
    assert d["verdict"] == "fp16 within tolerance" and d["variant"] == "fp16"
    assert d["outputs"]["output_0"]["agree"] and d["outputs"]["output_0"]["snr_db"] > 20


@pytest.mark.slow
def test_a_hooks_file_that_fails_is_one_error_line(tmp_path):
    done = diagnose(tmp_path, "et", hooks="HOOKS = {'et': {'relu': undefined_name}}\n")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: hooks file ")
    assert "NameError" in lines[0]
