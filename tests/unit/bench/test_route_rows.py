"""Bench rows for the routes whose artifacts the host's evaluator cannot open (et's .pte,
coreai's .aimodel): accuracy from the route's own Linux runtime, static facts from the
artifact, device cells that say why they are empty; results accept the real runtimes' names;
the report puts a Core AI row's cells under the Core ML columns and says what ran each."""
import json
import os
import platform

import numpy as np
import pytest

from backends.base import NotEmulated
from bench import accuracy, report, results, static
from bench import run as bench_run
from bench.macos import NEEDS_MACOS, NEEDS_MACOS_27

GOLDEN = {"clip_output": np.array([[0.1, 0.9, 0.3, 0.2, 0.7, 0.05]], np.float32)}
INPUTS = {"waveform": np.linspace(-1, 1, 64, dtype=np.float32).reshape(1, 64)}


class FakeRouteRunner(object):
    """Stands for bench.run.RouteRunner: outputs known by construction (PyTorch's plus an
    offset of ``error``), and no fp16 emulation when ``emulates_fp16`` is False."""

    def __init__(self, route, label, error=1e-3, emulates_fp16=True):
        self.route, self.label, self.error, self.emulates_fp16 = route, label, error, emulates_fp16
        self.calls = []

    def __call__(self, path, inputs, precision):
        self.calls.append((os.path.basename(path), precision))
        if precision == "fp16" and not self.emulates_fp16:
            raise NotEmulated("the interpreter runs the program as typed (fp32)")
        return {"clip_output": GOLDEN["clip_output"] + self.error}


def write_build(root, model, route, record, artifact):
    folder = root / model / route
    folder.mkdir(parents=True)
    (folder / artifact).mkdir()
    (folder / "conversion.json").write_text(json.dumps(dict(
        record, status="ok", artifact=artifact, model=model, route=route, weights="seeded")))
    np.savez(str(folder / "golden.npz"), **dict(
        [("input:" + k, v) for k, v in INPUTS.items()] + [("output:" + k, v) for k, v in GOLDEN.items()]))
    return folder


def test_a_coreai_row_is_measured_by_its_runtime_and_says_why_for_the_rest(tmp_path, monkeypatch):
    write_build(tmp_path, "mine", "coreai", {
        "spec_type": "coreai", "file_bytes": 1234, "op_count": 7, "compute_precision": "fp32",
        "compute_units": ["CPU", "GPU", "NE"],
        "storage_types": {"Float32": 1000, "Float16": 24, "Int32": 5, "Bool": 2}}, "model.aimodel")
    runner = FakeRouteRunner("coreai", "Apple's Core AI interpreter", error=1e-3, emulates_fp16=False)
    monkeypatch.setattr(bench_run, "route_runner", lambda route: runner)
    row = bench_run.measure_row("mine", "coreai", str(tmp_path), 2, 0, 1, None)

    assert row["status"] == "ok"
    fp32 = row["reference"]["fp32"]
    assert fp32["runner"] == "Apple's Core AI interpreter"
    assert fp32["outputs"]["clip_output"]["max_abs_error"] == pytest.approx(1e-3, rel=1e-3)
    assert fp32["outputs"]["clip_output"]["top5_agreement"] == 1.0   # a constant offset keeps the order
    assert fp32["first_nonfinite"] is None                            # no trace through a runtime
    assert row["reference"]["fp16"] == {"not_measured": "Apple's Core AI interpreter has no fp16 "
                                        "emulation (the interpreter runs the program as typed (fp32))"}
    assert "not timed" in row["reference"]["latency"]["not_measured"]
    assert ("model.aimodel", "fp32") in runner.calls and ("model.aimodel", "fp16") in runner.calls
    # static facts from the asset's storage summary: float elements only
    assert row["static"]["parameters"]["count"] == 1024
    assert row["static"]["weight_precision"] == "fp16+fp32"
    if platform.system() != "Darwin":
        units = row["coreml"]["compute_units"]
        assert sorted(units) == ["CPU", "GPU", "NE"]
        assert all(cell == {"not_measured": NEEDS_MACOS_27} for cell in units.values())
        assert row["timing"]["coreml"] is None


def test_an_et_row_counts_the_weights_of_its_partitions(tmp_path, monkeypatch):
    folder = write_build(tmp_path, "mine", "et", {
        "spec_type": "executorch", "file_bytes": 99, "op_count": 3, "compute_precision": "fp16",
        "executorch": {"partitions": 2, "not_delegated": {"aten.acosh.default": 1}}}, "model.pte")
    (folder / "model.pte").rmdir()
    (folder / "model.pte").write_bytes(b"pte")
    for i in (0, 1):
        (folder / "partitions" / "{}.mlpackage".format(i)).mkdir(parents=True)
    per_partition = {"0.mlpackage": ("fp16", 300), "1.mlpackage": ("fp32", 20)}

    def fake_spec_facts(path):
        kind, n = per_partition[os.path.basename(path)]
        return {"parameters": {"count": n, "source": "spec"}, "weight_precision": kind}
    monkeypatch.setattr(static, "spec_facts", fake_spec_facts)
    runner = FakeRouteRunner("et", "ExecuTorch program", error=0.0)
    monkeypatch.setattr(bench_run, "route_runner", lambda route: runner)
    row = bench_run.measure_row("mine", "et", str(tmp_path), 2, 0, 1, None)

    assert row["static"]["parameters"]["count"] == 320
    assert "2 Core ML partition(s)" in row["static"]["parameters"]["source"]
    assert "1 op(s) outside Core ML are not counted" in row["static"]["parameters"]["source"]
    assert row["static"]["weight_precision"] == "fp16+fp32"
    # et emulates fp16 in its partitions: both precisions measured, exact by construction
    for precision in ("fp32", "fp16"):
        figures = row["reference"][precision]["outputs"]["clip_output"]
        assert figures["max_abs_error"] == 0.0 and figures["snr_db"] == "inf"
    if platform.system() != "Darwin":
        assert row["coreml"]["compute_units"]["ALL"] == {"not_measured": NEEDS_MACOS}


def test_routes_run_by_the_host_need_no_runner_and_an_absent_env_is_a_reason(monkeypatch):
    assert bench_run.route_runner("v9") is None
    assert bench_run.route_runner("v9+lut4") is None
    monkeypatch.setattr(bench_run, "route_python", lambda route: None)
    runner = bench_run.route_runner("et+lin8")
    assert runner.route == "et" and "ExecuTorch" in runner.label
    cell = accuracy.reference_accuracy("model.pte", INPUTS, GOLDEN, "fp32", runner)
    assert cell["not_measured"].startswith(runner.label + ": RouteEnvMissing")
    assert "tox -e et" in cell["not_measured"]


def section(name, injected=False):
    cell = {"load_seconds": 0.5, "latency": {"unit": "ms", "median": 3.0, "p90": 4.0, "min": 2.5,
                                             "runs": 3, "warmup": 1}, "accuracy": {}}
    units = ("CPU", "GPU", "NE") if name == "coreai-runtime" else ("ALL",)
    return {"runtime": {"name": name, "injected": injected}, "compile": {"not_measured": "x"},
            "compute_units": dict((u, cell) for u in units)}


def host_doc(rows):
    return {"schema": results.SCHEMA, "kind": results.KIND, "updated": "now",
            "host": {"name": "mac", "os": "Darwin 27", "machine": "arm64", "cpu": "M9", "toolchain": {}},
            "baselines": {}, "rows": {"m": rows}}


def test_results_take_the_real_executorch_and_coreai_runtimes_and_refuse_fakes(tmp_path):
    real = {"et": {"status": "ok", "coreml": section("executorch-pybindings")},
            "coreai": {"status": "ok", "coreml": section("coreai-runtime")}}
    path = results.write_host(str(tmp_path), host_doc(real))
    assert sorted(json.load(open(path))["rows"]["m"]) == ["coreai", "et"]
    for bad in (section("coreai-runtime", injected=True), section("some-other-runtime")):
        with pytest.raises(results.InjectedResultsError):
            results.write_host(str(tmp_path), host_doc({"coreai": {"status": "ok", "coreml": bad}}))


def test_the_report_puts_core_ai_cells_under_the_core_ml_columns():
    from test_report import ok_row     # tests/unit/bench/test_report.py, beside this file
    linux = ok_row("coreai", {"runtime": None, "compile": {"not_measured": NEEDS_MACOS_27},
                              "compute_units": dict((u, {"not_measured": NEEDS_MACOS_27})
                                                    for u in ("CPU", "GPU", "NE"))})
    linux["reference"]["fp32"]["runner"] = "Apple's Core AI interpreter"
    mac = ok_row("coreai", section("coreai-runtime"))
    conversions = {"coreai": {"models": {"m1": {"status": "ok", "file_bytes": 10, "op_count": 3,
                                                 "compute_units": ["CPU", "GPU", "NE"]}}}}
    docs = [dict(host_doc({}), host={"name": "linux"}, rows={"m1": {"coreai": linux}}),
            dict(host_doc({}), host={"name": "mac"}, rows={"m1": {"coreai": mac}})]
    headers, rows = report.model_table("m1", docs, conversions)
    line = dict(zip(headers, rows[0]))
    assert line["linux CPU_AND_GPU"] == "not measured: " + NEEDS_MACOS_27
    assert line["mac CPU_AND_NE"].startswith("Core AI NE: 3 ms")
    assert line["mac ALL"].startswith("not measured: Core AI specializes for one compute unit kind")
    assert line[report.AS_TYPED].endswith("by Apple's Core AI interpreter")
