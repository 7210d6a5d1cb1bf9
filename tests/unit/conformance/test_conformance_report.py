"""The conformance suite's bookkeeping (conformance/report.py, plugin.py, __main__.py):
how a test's record is classified and counted, and what the command refuses."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conformance import report
from conformance.__main__ import main

NN = ("converters/mil/mil/ops/tests/iOS14/test_conv.py::TestConv::test_smoke[compute_unit="
      "ComputeUnit.CPU_ONLY-backend=BackendConfig(backend='neuralnetwork', precision='fp32', "
      "opset_version=<AvailableTarget.iOS14: 5>)-x=1]")
FP32 = NN.replace("'neuralnetwork', precision='fp32'", "'mlprogram', precision='fp32'")
FP16 = NN.replace("'neuralnetwork', precision='fp32'", "'mlprogram', precision='fp16'")
OLD_STYLE = "converters/mil/mil/ops/tests/iOS14/test_pool.py::TestAvgPool::test_x[backend=('mlprogram', 'fp16')]"
LAYERS = "test/neural_network/test_numpy_nn_layers.py::NewLayersSimpleTest::test_pooling3d"


def record(nodeid=NN, outcome="passed", calls=1, returned=1, raised=None, error=None, model=None):
    return {"id": nodeid, "outcome": outcome, "calls": calls, "returned": returned,
            "raised": raised, "error": error, "model": model, "seconds": 0.1}


@pytest.mark.parametrize("rec,kind", [
    (record(), "pass"),
    (record(calls=0, returned=0), "no_predict"),
    (record(outcome="failed", error=["AssertionError", "Not equal"]), "numerical"),
    (record(outcome="failed", returned=0, raised=["UnsupportedError", "unsupported layer type 'x'"],
            error=["UnsupportedError", "..."]), "raised"),
    (record(outcome="failed", returned=0, raised=["NeedsCoreML", "make_state needs Core ML"]),
     "needs_coreml"),
    (record(outcome="failed", calls=0, returned=0,
            error=["Exception", "Unable to load CoreML.framework. Cannot make predictions."]),
     "needs_coreml"),
    (record(outcome="failed", calls=0, returned=0, error=["ValueError", "converter refused"]),
     "no_predict"),
    (record(outcome="skipped", calls=0, returned=0, error=["Skipped", "iOS15+ only"]), "skipped"),
    # a test that expects predict to raise, and it did: a pass
    (record(calls=1, returned=0, raised=["InputError", "bad input"]), "pass"),
    (record(outcome="failed", calls=9, returned=9, error=["TestTimeout", "took more than 300 s"]),
     "timeout"),
    (record(outcome="failed", calls=9, returned=8, raised=["TestTimeout", "took more than 300 s"]),
     "timeout"),
])
def test_classify(rec, kind):
    assert report.classify(rec) == kind


@pytest.mark.parametrize("nodeid,model,want", [
    (NN, None, "neuralnetwork"), (FP32, None, "mlprogram-fp32"), (FP16, None, "mlprogram-fp16"),
    (OLD_STYLE, None, "mlprogram-fp16"), (LAYERS, None, "neuralnetwork"),
    ("x.py::T::test_y", "mlProgram", "mlprogram-fp16"), ("x.py::T::test_y", None, "unknown")])
def test_variant(nodeid, model, want):
    assert report.variant(record(nodeid, model=model)) == want


def test_test_class_and_message_key():
    assert report.test_class("/site/coremltools/" + NN) == \
        "converters/mil/mil/ops/tests/iOS14/test_conv.py::TestConv"
    assert report.test_class("/x/coremltools/test/a.py::test_f[1]") == "test/a.py::test_f"
    key = report.message_key(["UnsupportedError", "unsupported layer type 'pooling3d' (layer 'p7') "
                                                  "in /tmp/abc.mlmodel"])
    assert key == "UnsupportedError: unsupported layer type 'pooling3d' (layer '…')"
    key = report.message_key(["InputError", "/tmp/a.mlpackage: input 'x' has shape [1, 2]"])
    assert key == "InputError: input '…' has shape [N, N]"


def test_summarize_counts_per_group_and_class():
    records = [record(NN), record(NN, outcome="failed", error=["AssertionError", "Not equal"]),
               record(FP16), record(FP32, outcome="failed", returned=0,
                                    raised=["ShapeError", "conv op 'c': bad"]),
               record(FP32), record(LAYERS, calls=0, returned=0)]
    data = report.summarize(records, {"suite": "ci"})
    default, fp32 = data["summary"]["default"], data["summary"]["fp32"]
    assert (default["pass"], default["numerical"], default["raised"], default["no_predict"]) == (2, 1, 0, 1)
    assert default["reached_predict"] == 3 and default["pass_rate"] == pytest.approx(2 / 3)
    assert (fp32["pass"], fp32["raised"], fp32["pass_rate"]) == (1, 1, 0.5)
    assert data["summary"]["all"]["tests"] == 6
    conv = next(c for c in data["classes"] if c["class"].endswith("test_conv.py::TestConv"))
    assert conv["counts"]["pass"] == 3 and conv["raised"] == [
        {"error": "ShapeError: conv op '…': bad", "count": 1}]
    text = report.markdown(data)
    assert "| default tolerances (NN + ML Program fp16) | 4 | 3 | 2 | 1 | 0 | 0 | 1 | 0 | 0 | 66.7 % |" in text
    assert "raised ×1: `ShapeError: conv op '…': bad`" in text


def test_write_replaces_both_files(tmp_path):
    data = report.summarize([record()], {"suite": "full"})
    paths = report.write(data, str(tmp_path))
    assert [p.rsplit("/", 1)[1] for p in paths] == ["conformance.json", "conformance.md"]
    assert json.loads((tmp_path / "conformance.json").read_text())["schema_version"] == 1


def test_reference_predict_answers_mlmodel_predict_and_records():
    ct = pytest.importorskip("coremltools")
    from coremltools.models import datatypes
    from coremltools.models.neural_network import NeuralNetworkBuilder

    from conformance import plugin
    builder = NeuralNetworkBuilder([("x", datatypes.Array(2, 3))], [("out", None)],
                                   disable_rank5_shape_mapping=True)
    builder.add_activation("relu", "RELU", "x", "out")
    model = ct.models.MLModel(builder.spec, skip_model_load=True)
    plugin._record = plugin._new_record("t")
    try:
        x = np.array([[-1, 2, -3], [4, -5, 6]], np.float16)     # float16: converted, as on a Mac
        got = plugin.reference_predict(model, {"x": x})["out"]
        np.testing.assert_array_equal(got, np.maximum(x.astype(np.float32), 0))
        with pytest.raises(KeyError, match="does not match any of the model input"):
            plugin.reference_predict(model, {"y": x})
        with pytest.raises(plugin.NeedsCoreML):
            plugin.reference_predict(model, {"x": x}, state=object())
        assert plugin._record["calls"] == 1 and plugin._record["returned"] == 1
    finally:
        plugin._record = None


def test_a_failed_runtime_check_is_mlmodel_predicts_runtime_error():
    """scatter with validate_indices and an index out of range: Core ML fails the prediction
    and MLModel.predict raises RuntimeError; the evaluator's error stays the cause."""
    ct = pytest.importorskip("coremltools")
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    from conformance import plugin

    @mb.program(input_specs=[mb.TensorSpec((3, 2)), mb.TensorSpec((2,), dtype=types.int32)],
                opset_version=ct.target.iOS17)
    def prog(x, i):
        return mb.scatter(data=x, indices=i, updates=np.ones((2, 2), np.float32),
                          validate_indices=True)

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                       compute_precision=ct.precision.FLOAT32, skip_model_load=True)
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(RuntimeError, match="Unable to compute the prediction using ML Program") \
            as caught:
        plugin.reference_predict(model, {"x": x, "i": np.array([3, 0], np.int32)})
    assert isinstance(caught.value.__cause__, plugin.coreml_reference.RuntimeCheckError)
    ok = plugin.reference_predict(model, {"x": x, "i": np.array([2, 0], np.int32)})
    np.testing.assert_array_equal(next(iter(ok.values())), [[1, 1], [0, 0], [1, 1]])


def test_each_test_draws_the_same_random_inputs_on_every_run():
    torch = pytest.importorskip("torch")
    from conformance import plugin

    def draws(nodeid):
        plugin._seed(nodeid)
        return np.random.rand(3).tolist(), torch.rand(3).tolist()

    assert draws("a.py::T::t[x=1]") == draws("a.py::T::t[x=1]")
    assert draws("a.py::T::t[x=1]") != draws("a.py::T::t[x=2]")


def test_unknown_suite_is_refused():
    with pytest.raises(SystemExit) as info:
        main(["--suite", "everything"])
    assert info.value.code == 2


def test_missing_test_file_is_one_error_line(monkeypatch, capsys):
    from conformance import suite
    monkeypatch.setitem(suite.SUITES, "ci", ["converters/mil/no_such_test.py"])
    assert main(["--suite", "ci"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: coremltools' shipped test file ")


@pytest.mark.slow
def test_end_to_end_on_a_few_shipped_tests(tmp_path):
    """Runs coremltools' own L2 pooling tests through the plugin in a child process."""
    done = subprocess.run([sys.executable, "-m", "conformance", "--suite", "ci", "--out", str(tmp_path),
                           "-k", "TestL2Pool and test_builder_to_backend_smoke"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads((tmp_path / "conformance-ci.json").read_text())
    assert data["summary"]["all"]["tests"] >= 3
    assert data["summary"]["all"]["pass"] >= 3
    assert (tmp_path / "conformance-ci.md").exists()


def test_a_partial_run_says_so(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps({"collected": 5}) + "\n" + json.dumps(record()) + "\n")
    records, collected = report.read_records(str(path))
    assert collected == 5 and len(records) == 1
    data = report.summarize(records, {"collected": collected, "pytest_exit_code": -15})
    assert "**Partial run:** 1 of the 5 collected tests ran (stopped early, pytest exit code -15)" \
        in report.markdown(data)


def test_follow_sums_the_shards_and_prints_plain_lines_off_a_terminal(tmp_path, capsys):
    from conformance.__main__ import follow
    first, second = tmp_path / "records-0.jsonl", tmp_path / "records-1.jsonl"
    first.write_text("\n".join([json.dumps({"collected": 2})] +
                               [json.dumps(record()) for _ in range(2)]) + "\n")
    second.write_text("\n".join([json.dumps({"collected": 1}), json.dumps(
        record(outcome="failed", error=["AssertionError", "x"]))]) + "\n")

    class Ended:
        def __init__(self, code):
            self.code = code

        def poll(self):
            return self.code
    assert follow([(Ended(0), str(first)), (Ended(1), str(second))], every=2) == [0, 1]
    err = capsys.readouterr().err.splitlines()
    assert err == ["conformance: 2/3 tests  pass=2", "conformance: 3/3 tests  numerical=1 pass=2"]


def test_shards_split_whole_files_evenly_and_keep_suite_order(tmp_path):
    from conformance import suite
    sizes = {"a.py": 50, "b.py": 40, "c.py": 30, "d.py": 20}
    for name, size in sizes.items():
        (tmp_path / name).write_text("#" * size)
    paths = [str(tmp_path / n) for n in sizes] + [str(tmp_path / "d.py") + "::TestX"]
    groups = suite.shards(paths, 2)
    assert sorted(p for g in groups for p in g) == sorted(paths)
    loads = [sum(sizes[os.path.basename(suite.file_of(p))] for p in g) for g in groups]
    assert loads == [70, 90] or loads == [90, 70]
    for g in groups:
        assert g == [p for p in paths if p in g]
    assert suite.shards(paths, 1) == [paths]
    assert len(suite.shards(paths[:1], 4)) == 1
