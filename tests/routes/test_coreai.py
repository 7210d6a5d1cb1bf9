"""Route coreai in its own env (tox -e coreai): coreai-torch converts, and Apple's Core AI
interpreter (coreai-core, Linux) runs the asset; expected values come from PyTorch.

Tiny seeded models keep this fast: the interpreter takes ~0.3 s per PANNs call."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

from conftest import ROOT, build_dir


def need_coreai(route):
    if route != "coreai":
        pytest.skip("Core AI's toolchain lives in the coreai env only")


def tiny_module():
    """conv -> relu -> pool -> linear with two outputs (logits, probabilities), seeded."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8 * 4 * 4, 10)

        def forward(self, x):
            y = torch.nn.functional.avg_pool2d(torch.relu(self.conv(x)), 2)
            logits = self.fc(y.flatten(1))
            return logits, torch.softmax(logits, dim=-1)

    torch.manual_seed(0)
    return Tiny().eval()


def tiny_inputs():
    return OrderedDict(image=np.random.RandomState(1).standard_normal((1, 3, 8, 8)).astype(np.float32))


def torch_outputs(module, inputs):
    import torch
    with torch.no_grad():
        out = module(*(torch.from_numpy(a) for a in inputs.values()))
    return [o.numpy() for o in out]


def convert_tiny(tmp_path, variant=None):
    import backends
    from backends.base import Job, Stages
    backend = backends.get("coreai")
    backend.load_toolchain()
    job = Job(tiny_module(), tiny_inputs(), ["logits", "probs"], str(tmp_path))
    job.variant = variant
    stages = Stages()
    backend.convert(job, stages)
    path = os.path.join(str(tmp_path), backend.artifact)
    return backend, path, stages


def test_not_applicable_to_onnx_and_torchscript(route):
    need_coreai(route)
    import backends
    from backends import sources
    backend = backends.get("coreai")
    assert "not ONNX" in backend.accepts(sources.parse("model.onnx"))
    assert "TorchScript" in backend.accepts(sources.parse("model.pt"))
    assert backend.accepts(sources.parse("pann_mobilenetv1")) is None
    assert backend.runs_in_host is False and backend.runtime == "Core AI"


def test_tiny_model_converts_and_the_interpreter_matches_pytorch(route, tmp_path):
    need_coreai(route)
    from coreml_reference import metrics
    backend, path, stages = convert_tiny(tmp_path)
    assert set(stages.seconds) == {"export", "convert", "save"}
    facts = backend.inspect(path)
    assert facts["spec_type"] == "coreai" and facts["compute_precision"] == "fp32"
    assert facts["inputs"] == [{"name": "image", "type": "Float32", "shape": [1, 3, 8, 8]}]
    assert [(f["name"], f["shape"]) for f in facts["outputs"]] == [("logits", [1, 10]), ("probs", [1, 10])]
    assert facts["op_types"]["conv2d"] == 1 and facts["op_types"]["softmax"] == 1
    assert facts["op_count"] == sum(facts["op_types"].values())
    on_disk = sum(os.path.getsize(os.path.join(r, n)) for r, _, names in os.walk(path) for n in names)
    assert facts["file_bytes"] == on_disk > 8 * 3 * 3 * 3 * 4    # the conv weights at least
    assert backend.compute_units(facts) == ["CPU", "GPU", "NE"]
    assert "macOS / iOS 27" in facts["compute_unit_placement"]

    got = backend.run_artifact(path, facts, tiny_inputs())
    want = torch_outputs(tiny_module(), tiny_inputs())
    assert list(got) == ["logits", "probs"]
    for name, expected in zip(["logits", "probs"], want):
        assert got[name].dtype == np.float32 and got[name].shape == expected.shape
        assert metrics.within_tolerance(got[name], expected, "fp32"), (
            name, metrics.snr_db(got[name], expected), metrics.max_abs_error(got[name], expected))


def test_fp16_asked_of_an_fp32_program_is_not_emulated(route, tmp_path):
    need_coreai(route)
    from backends.base import NotEmulated
    backend, path, _ = convert_tiny(tmp_path)
    with pytest.raises(NotEmulated, match="runs the program as typed.*macOS 27"):
        backend.run_artifact(path, backend.inspect(path), tiny_inputs(), precision="fp16")


def test_fp16_variant_is_typed_float16_and_computes_in_it(route, tmp_path):
    need_coreai(route)
    from coreml_reference import metrics
    backend, path, _ = convert_tiny(tmp_path, variant="fp16")
    facts = backend.inspect(path)
    assert facts["inputs"][0]["type"] == "Float16" and facts["outputs"][0]["type"] == "Float16"
    assert facts["compute_precision"] == "fp16", facts["compute_types"]
    got = backend.run_artifact(path, facts, tiny_inputs())          # float32 inputs are cast
    assert got["logits"].dtype == np.float16
    again = backend.run_artifact(path, facts, tiny_inputs(), precision="fp16")   # as typed
    np.testing.assert_array_equal(again["logits"], got["logits"])
    want = torch_outputs(tiny_module(), tiny_inputs())[0]
    logits = got["logits"].astype(np.float32)
    assert metrics.within_tolerance(logits, want, "fp16"), metrics.snr_db(logits, want)
    assert not np.array_equal(logits, want)                        # it did round
    # ...the way float16 does: errors of the order of float16's resolution at that scale.
    assert metrics.max_abs_error(logits, want) < 8 * np.finfo(np.float16).eps * np.abs(want).max()


MAX_POOL_3D = """
import torch

class Pool3d(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.max_pool3d(x, 2)

def build():
    return Pool3d().eval()
"""

DATA_DEPENDENT_BRANCH = """
import torch

class Branchy(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1

def build():
    return Branchy().eval()
"""


def run_worker(tmp_path, source, inputs):
    from backends.builds import write_arrays
    model, given, out = tmp_path / "model.py", tmp_path / "in.npz", tmp_path / "out"
    model.write_text(source)
    write_arrays(str(given), inputs)
    done = subprocess.run([sys.executable, "-m", "backends.worker", "--route", "coreai",
                           "--model", "{}:build".format(model), "--inputs", str(given),
                           "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    with open(str(out / "conversion.json")) as f:
        return done, json.load(f), out


def test_an_op_coreai_torch_rejects_is_a_recorded_failure_at_convert(route, tmp_path):
    """coreai-torch 0.4.3 has no lowering for max_pool3d (it lowers avg_pool3d)."""
    need_coreai(route)
    done, record, out = run_worker(tmp_path, MAX_POOL_3D, {"x": np.ones((1, 2, 4, 4, 4), np.float32)})
    assert done.returncode == 1, done.stderr
    assert record["status"] == "failed" and record["stage"] == "convert"
    assert "unsupported ATen ops: aten.max_pool3d_with_indices.default" in record["error"]
    assert "register_torch_lowering" in record["error"]     # the converter's own advice, kept
    assert record["converter_ops"]["aten::max_pool3d_with_indices.default"] == 1
    assert not (out / "model.aimodel").exists()


def test_a_model_torch_export_rejects_fails_at_export(route, tmp_path):
    need_coreai(route)
    done, record, _ = run_worker(tmp_path, DATA_DEPENDENT_BRANCH, {"x": np.ones((1, 4), np.float32)})
    assert done.returncode == 1, done.stderr
    assert record["stage"] == "export"
    assert record["error"].startswith("GuardOnDataDependentSymNode: Could not guard on data-dependent")


def test_zoo_conversion_runs_in_the_interpreter_like_pytorch(model, route):
    """What ``tox -e coreai``'s batch wrote: the asset, its record, and outputs that the
    interpreter reproduces from golden.npz's inputs within the fp32 tolerance."""
    need_coreai(route)
    import backends
    from backends import builds
    from coreml_reference import metrics
    folder = builds.route_dir(build_dir(), model, "coreai")
    record = builds.load_record(folder)
    assert record["status"] == "ok", record.get("error")
    assert record["spec_type"] == "coreai" and record["artifact"] == "model.aimodel"
    assert record["toolchain"]["coreai-torch"] == "0.4.3"
    path = os.path.join(folder, "model.aimodel")
    assert os.path.isfile(os.path.join(path, "main.mlirb"))
    inputs, golden = builds.read_golden(folder)
    got = backends.get("coreai").run_artifact(path, record, inputs)
    assert list(got) == list(golden)
    for name, expected in golden.items():
        assert metrics.within_tolerance(got[name], expected, "fp32"), (
            name, metrics.snr_db(got[name], expected), metrics.max_abs_error(got[name], expected))


def test_artifact_run_cli_runs_the_asset_in_the_env(route, tmp_path):
    """How a host runs an .aimodel: ``python -m backends.artifact_run`` in this env."""
    need_coreai(route)
    from backends.builds import write_arrays
    from coreml_reference import metrics
    _, path, _ = convert_tiny(tmp_path)
    given, got = str(tmp_path / "x.npz"), str(tmp_path / "y.npz")
    write_arrays(given, tiny_inputs())

    def cli(precision):
        return subprocess.run([sys.executable, "-m", "backends.artifact_run", "--route", "coreai",
                               "--artifact", path, "--inputs", given, "--out", got,
                               "--precision", precision], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True,
                              env=dict(os.environ, PYTHONPATH=ROOT))
    done = cli("fp32")
    assert done.returncode == 0, done.stderr
    with np.load(got) as data:
        outputs = dict((k, data[k]) for k in data.files)
    want = torch_outputs(tiny_module(), tiny_inputs())
    assert sorted(outputs) == ["logits", "probs"]
    for name, expected in zip(["logits", "probs"], want):
        assert metrics.within_tolerance(outputs[name], expected, "fp32")
    os.remove(got)
    refused = cli("fp16")
    assert refused.returncode == 1 and not os.path.exists(got)
    assert refused.stderr.strip().splitlines()[-1].startswith("NotEmulated: Core AI's Linux interpreter")


def relu_lowered_as_abs(values_map, node, loc):
    """A wrong lowering, as a hooks file would give it: relu computed as abs."""
    from coreai._compiler.dialects import coreai
    return coreai.abs_(values_map[node.args[0].name])


def test_intermediates_name_no_op_when_the_interpreter_agrees(route):
    need_coreai(route)
    from backends.coreai_intermediates import compare_with_torch
    report = compare_with_torch(tiny_module(), tiny_inputs(), ["logits", "probs"])
    assert report["first_divergent"] is None
    compared = [op["node"] for op in report["ops"]]
    assert {"convolution", "relu", "addmm", "_softmax"} <= set(compared)
    assert all(op["within_tolerance"] for op in report["ops"])
    relu = report["ops"][compared.index("relu")]
    assert relu["target"] == "aten::relu.default" and relu["shape"] == [1, 8, 8, 8]


def test_intermediates_name_the_first_divergent_op(route):
    """relu lowered as abs: the conv before it still agrees, relu is named first."""
    need_coreai(route)
    from backends.coreai_intermediates import compare_with_torch
    report = compare_with_torch(tiny_module(), tiny_inputs(), ["logits", "probs"],
                                hooks={"aten::relu.default": relu_lowered_as_abs})
    first = report["first_divergent"]
    assert first["node"] == "relu" and first["target"] == "aten::relu.default"
    assert first["snr_db"] < 20 and first["max_abs_error"] > 0.1
    conv = [op for op in report["ops"] if op["node"] == "convolution"][0]
    assert conv["within_tolerance"]


def conv_bn_module():
    import torch
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
    with torch.no_grad():
        module[1].running_mean.uniform_(-1.0, 1.0)
        module[1].running_var.uniform_(0.5, 2.0)
        module[1].weight.uniform_(0.5, 2.0)
    return module.eval()


def test_intermediates_tell_a_folded_batch_norm_from_a_divergence(route):
    """Core AI folds the batch norm into the (bias-free, as in PANNs) conv before it: the
    value logged for the conv is the norm's, which is no divergence."""
    need_coreai(route)
    from backends.coreai_intermediates import compare_with_torch
    report = compare_with_torch(conv_bn_module(), tiny_inputs(), ["y"])
    assert report["first_divergent"] is None, report["first_divergent"]
    assert report["fused"].get("convolution", "").startswith(("_native_batch_norm", "getitem"))
    assert "relu" in [op["node"] for op in report["ops"]]
