"""Route et (ExecuTorch 1.5.1 + Core ML delegate), in its own env (tox -e et): small seeded
models converted here, and the zoo conversion batch left in build/. Expected outputs come
from PyTorch; the route's run (run_artifact) is held to coreml_reference.metrics' tolerance
for the precision the partitions are typed in, as bench/verify holds every route."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, build_dir

# Small models, written to a file so that the worker can load them as FILE.py:FUNCTION.
MODELS_PY = '''
import torch


class Whole(torch.nn.Module):
    """conv -> relu -> mean -> linear: every op has a Core ML converter."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv1d(2, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(-1))


class Split(torch.nn.Module):
    """acosh between two linears: CoreMLPartitioner 1.5.1 rejects acosh by name (its
    _UNSUPPORTED_OP_TARGETS, citing coremltools issue 2569), so it stays outside Core ML:
    two partitions around one CPU kernel; h is both a user output and the second
    partition's input."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.a = torch.nn.Linear(4, 4)
        self.b = torch.nn.Linear(4, 2)

    def forward(self, x):
        h = torch.acosh(self.a(x).abs() + 1.0)
        return self.b(h), h


def whole():
    return Whole().eval()


def split():
    return Split().eval()
'''


@pytest.fixture(autouse=True)
def et_only(route):
    if route != "et":
        pytest.skip("ExecuTorch tests run in route et's env")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("et_models")
    path = folder / "et_models.py"
    path.write_text(MODELS_PY)
    sys.path.insert(0, str(folder))
    try:
        import et_models
    finally:
        sys.path.remove(str(folder))
    return path, et_models


def convert(module, inputs, output_names, out_dir, variant=None):
    """The route's own convert + inspect, as the worker calls them; returns the record facts."""
    import backends
    from backends.base import Job, Stages
    backend = backends.get("et")
    backend.load_toolchain()
    job = Job(module, inputs, output_names, str(out_dir))
    job.variant = variant
    record = dict(backend.convert(job, Stages()))
    record.update(backend.inspect(os.path.join(str(out_dir), backend.artifact)))
    record["compute_units"] = backend.compute_units(record)
    return record


def pytorch(module, inputs):
    import torch
    with torch.no_grad():
        out = module(*[torch.from_numpy(a) for a in inputs.values()])
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def assert_matches(outputs, golden, names, precision):
    from coreml_reference import metrics
    assert sorted(outputs) == sorted(names)
    for name, expected in zip(names, golden):
        actual = np.asarray(outputs[name])
        assert actual.shape == expected.shape, name
        assert metrics.within_tolerance(actual, expected, precision), "{}: SNR {:.1f} dB, max abs {}".format(
            name, metrics.snr_db(actual, expected), metrics.max_abs_error(actual, expected))


def test_whole_model_is_one_partition_and_matches_pytorch_in_both_precisions(models, tmp_path):
    import backends
    _, et_models = models
    inputs = {"x": np.random.RandomState(0).standard_normal((1, 2, 8)).astype(np.float32)}
    module = et_models.whole()
    golden = pytorch(module, inputs)
    for variant, precision, units in ((None, "fp16", ["CPU", "GPU", "NE"]),
                                      ("fp32", "fp32", ["CPU", "GPU"])):
        out = tmp_path / (variant or "default")
        out.mkdir()
        record = convert(module, inputs, ["y"], out, variant)
        block = record["executorch"]
        assert block["partitions"] == 1 and block["not_delegated"] == {}
        assert block["delegated_ops"] == block["total_ops"] > 0
        assert record["compute_precision"] == precision and record["compute_units"] == units
        assert record["cpu_fallback_ops"] == {}
        assert record["op_types"] == {"executorch_call_delegate": 1}
        assert (out / "partitions" / "0.mlpackage").is_dir() and not (out / "partitions" / "1.mlpackage").exists()
        assert record["inputs"] == [{"name": "x", "shape": [1, 2, 8], "dtype": "float32"}]
        outputs = backends.get("et").run_artifact(str(out / "model.pte"), record, inputs, "fp32")
        assert_matches(outputs, golden, ["y"], precision)


def test_op_left_outside_core_ml_runs_in_torch_and_the_whole_still_matches(models, tmp_path):
    import backends
    _, et_models = models
    inputs = {"x": np.random.RandomState(2).standard_normal((3, 4)).astype(np.float32)}
    module = et_models.split()
    golden = pytorch(module, inputs)
    record = convert(module, inputs, ["y", "h"], tmp_path, "fp32")
    block = record["executorch"]
    assert block["not_delegated"] == {"aten.acosh.default": 1}
    assert block["partitions"] == 2
    assert 0 < block["delegated_ops"] < block["total_ops"] == block["delegated_ops"] + 1
    assert record["cpu_fallback_ops"] == {"aten.acosh.default": 1}
    assert record["op_types"] == {"executorch_call_delegate": 2, "aten::acosh.out": 1}
    assert [p["file"] for p in record["partition_specs"]] == ["partitions/0.mlpackage",
                                                              "partitions/1.mlpackage"]
    outputs = backends.get("et").run_artifact(str(tmp_path / "model.pte"), record, inputs, "fp32")
    assert_matches(outputs, golden, ["y", "h"], "fp32")
    # The emulated fp16 partitions (GPU / Neural Engine arithmetic) stay within fp16's bound.
    outputs = backends.get("et").run_artifact(str(tmp_path / "model.pte"), record, inputs, "fp16")
    assert_matches(outputs, golden, ["y", "h"], "fp16")
    assert not np.array_equal(outputs["y"], golden[0])      # fp16 emulation really applied

    # A .pte alone (converted elsewhere: no executorch.json, no partitions/ beside it): its
    # partitions are unpacked on the fly, inputs taken in order, outputs named output_<i>.
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(str(tmp_path / "model.pte"), str(bare / "model.pte"))
    outputs = backends.get("et").run_artifact(str(bare / "model.pte"), {}, inputs)
    assert_matches(outputs, golden, ["output_0", "output_1"], "fp32")
    assert os.listdir(str(bare)) == ["model.pte"]

    # A wrong input is one line naming it, not a traceback from deep inside.
    from backends.base import BadInput
    from backends.executorch_program import ProgramError
    with pytest.raises(BadInput, match="input 'x' is missing"):
        backends.get("et").run_artifact(str(tmp_path / "model.pte"), record, {"z": inputs["x"]})
    with pytest.raises(ProgramError, match=r"shape \[2, 4\], the program was exported for \[3, 4\]"):
        backends.get("et").run_artifact(str(tmp_path / "model.pte"), record, {"x": inputs["x"][:2]})


def test_worker_and_artifact_run_command_lines(models, tmp_path):
    """How the host drives the route: the worker converts FILE.py:FUNCTION with the user's
    inputs, then artifact_run runs the .pte from the files alone."""
    path, _ = models
    x = np.random.RandomState(3).standard_normal((3, 4)).astype(np.float32)
    np.savez(str(tmp_path / "in.npz"), **{"input:x": x})
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = tmp_path / "split"
    done = subprocess.run([sys.executable, "-m", "backends.worker", "--route", "et", "--model",
                           "{}:split".format(path), "--inputs", str(tmp_path / "in.npz"),
                           "--outputs", "y,h", "--out", str(out)],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "extracted" not in done.stdout
    with open(str(out / "conversion.json")) as f:
        record = json.load(f)
    assert record["status"] == "ok" and record["toolchain"]["executorch"].startswith("1.5.1")
    assert set(record["seconds"]) >= {"export", "convert", "save"}
    assert record["executorch"]["not_delegated"] == {"aten.acosh.default": 1}
    assert record["spec_type"] == "executorch" and record["compute_precision"] == "fp16"
    golden = np.load(str(out / "golden.npz"))
    np.testing.assert_array_equal(golden["input:x"], x)

    done = subprocess.run([sys.executable, "-m", "backends.artifact_run", "--route", "et",
                           "--artifact", str(out / "model.pte"), "--inputs", str(tmp_path / "in.npz"),
                           "--out", str(tmp_path / "got.npz")],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert done.returncode == 0, done.stderr[-2000:]
    got = np.load(str(tmp_path / "got.npz"))
    assert_matches(dict((k, got[k]) for k in got.files), [golden["output:y"], golden["output:h"]],
                   ["y", "h"], "fp16")

    # ONNX and TorchScript inputs are not applicable: exit 2, one line with the reason.
    done = subprocess.run([sys.executable, "-m", "backends.worker", "--route", "et", "--model",
                           str(tmp_path / "m.onnx"), "--out", str(tmp_path / "onnx")],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: route et is not applicable: an ONNX file has no PyTorch module for "
        "torch.export: use route v3")


def test_zoo_conversion_by_batch(route):
    """build/pann_mobilenetv1/et/ as the batch left it: the .pte, its one partition, the
    executorch block, and the whole program's run matching PyTorch's golden outputs."""
    import backends
    folder = os.path.join(build_dir(), "pann_mobilenetv1", "et")
    path = os.path.join(folder, "conversion.json")
    if not os.path.exists(path):
        pytest.fail("no conversion record at {}: run the et batch first".format(path))
    with open(path) as f:
        record = json.load(f)
    assert record["status"] == "ok", record.get("error")
    for name in ("model.pte", "partitions/0.mlpackage", "golden.npz", "executorch.json"):
        assert os.path.exists(os.path.join(folder, name)), name
    block = record["executorch"]
    assert set(block) == {"partitions", "delegated_ops", "total_ops", "not_delegated"}
    assert block["partitions"] == 1 and block["not_delegated"] == {}
    assert block["delegated_ops"] == block["total_ops"] > 50
    golden = np.load(os.path.join(folder, "golden.npz"))
    inputs = dict((k[len("input:"):], golden[k]) for k in golden.files if k.startswith("input:"))
    names = [k[len("output:"):] for k in golden.files if k.startswith("output:")]
    outputs = backends.get("et").run_artifact(os.path.join(folder, "model.pte"), record, inputs)
    assert_matches(outputs, [golden["output:" + n] for n in names], names, record["compute_precision"])


def relu_as_abs(context, node):
    """A wrong converter, on purpose: relu lowered as abs."""
    from coremltools.converters.mil import Builder as mb
    context.add(mb.abs(x=context[node.inputs[0]], name=node.name))


def test_diagnose_names_the_first_divergent_partition_then_the_op(models):
    from backends.executorch_diagnose import compare_with_torch
    _, et_models = models
    x = np.random.RandomState(0).standard_normal((1, 2, 8)).astype(np.float32)
    broken = compare_with_torch(et_models.whole(), {"x": x}, ["y"], hooks={"relu": relu_as_abs})
    first = broken["first_divergent"]
    assert first["partition"] == 0
    assert first["op"]["node"] == "aten_relu_default" and first["op"]["target"] == "aten.relu.default"
    ops = [(o["node"], o["within_tolerance"]) for o in broken["partitions"][0]["ops"]]
    assert ops[0] == ("aten_conv1d_default", True)          # upstream of relu still matches

    # The hook was undone: the same model lowers correctly again, and both partitions of
    # the split model (each fed PyTorch's inputs to it) match.
    assert compare_with_torch(et_models.whole(), {"x": x}, ["y"])["first_divergent"] is None
    split = compare_with_torch(et_models.split(), {"x": x.reshape(4, 4)[:3]}, ["y", "h"])
    assert split["first_divergent"] is None
    assert [p["partition"] for p in split["partitions"]] == [0, 1]
    assert all(o["within_tolerance"] for p in split["partitions"] for o in p["outputs"])
