"""Failed and missing artifacts become rows with reasons, and the run goes on."""
import json
import os
import shutil

import numpy as np
import pytest

from bench import artifacts
from bench.run import run_bench
from coreml_routes import cli


def write_conversion(folder, **record):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "conversion.json"), "w") as f:
        json.dump(record, f)


@pytest.fixture
def build(tmp_path):
    root = tmp_path / "build"
    write_conversion(str(root / "pann_upsample" / "v9"), status="failed", stage="convert",
                     error="TypeError: only 0-dimensional arrays", model="pann_upsample", route="v9",
                     seconds={"trace": 0.5, "convert": 0.25})
    ok = root / "pann_upsample" / "v3"
    write_conversion(str(ok), status="ok", artifact="model.mlmodel", model="pann_upsample",
                     route="v3", seconds={"convert": 1.0}, file_bytes=7, spec_type="neuralNetwork",
                     layer_count=1)
    (ok / "model.mlmodel").write_bytes(b"not a model")      # the evaluator must refuse it
    np.savez(str(ok / "golden.npz"), **{"input:segments": np.zeros((1, 3, 527), np.float32),
                                        "output:frame_output": np.zeros((1, 96, 527), np.float32)})
    return root


def test_locate_gives_reasons(build):
    failed = artifacts.locate(str(build), "pann_upsample", "v9")
    assert failed.reason == "conversion failed at stage convert: TypeError: only 0-dimensional arrays"
    missing = artifacts.locate(str(build), "pann_upsample", "v4")
    assert missing.reason.startswith("missing: no conversion.json")
    assert artifacts.locate(str(build), "pann_upsample", "v3").usable


def test_run_writes_rows_with_reasons_and_goes_on(build, tmp_path):
    out = tmp_path / "results"
    run_bench(["pann_upsample"], ["v9", "v4", "v3"], str(build), str(out), repeat=2, warmup=0,
              reference_repeat=1, host="testhost", runtime=None, progress=False)
    data = json.loads((out / "testhost.json").read_text())
    rows = data["rows"]["pann_upsample"]
    assert rows["v9"]["status"] == "failed"
    assert rows["v9"]["conversion"]["stage"] == "convert"
    assert "only 0-dimensional arrays" in rows["v9"]["reason"]
    assert rows["v9"]["conversion"]["seconds"] == pytest.approx(0.75)
    assert rows["v4"]["status"] == "missing" and "no conversion.json" in rows["v4"]["reason"]
    # v3 is measured after the two failures: the evaluator's refusal is a cell with a reason
    assert rows["v3"]["status"] == "ok"
    assert rows["v3"]["reference"]["fp32"]["not_measured"].startswith("reference evaluator:")
    if os.uname().sysname != "Darwin":
        assert rows["v3"]["coreml"]["compute_units"]["ALL"] == {"not_measured": "needs macOS"}
    base = data["baselines"]["pann_upsample"]
    assert base["pytorch_cpu"]["runs"] == 2
    assert "onnxruntime_cpu" in base and "not_measured" in base["onnxruntime_cpu"]  # no model.onnx


def test_unknown_names_are_one_line_and_exit_2(capsys, tmp_path):
    assert cli.main(["bench", "--models", "nope", "--build", str(tmp_path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown model 'nope'")
    assert cli.main(["bench", "--routes", "v7", "--build", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: unknown route 'v7'")


def test_interrupted_run_keeps_earlier_results(build, tmp_path, monkeypatch):
    from bench import run as run_module
    out = tmp_path / "results"
    run_bench(["pann_upsample"], ["v9"], str(build), str(out), repeat=1, warmup=0,
              reference_repeat=1, host="h", progress=False)
    real = run_module.measure_row

    def interrupt_on_v3(model, route, *args):
        if route == "v3":
            raise KeyboardInterrupt
        return real(model, route, *args)

    monkeypatch.setattr(run_module, "measure_row", interrupt_on_v3)
    with pytest.raises(KeyboardInterrupt):
        run_bench(["pann_upsample"], ["v4", "v3"], str(build), str(out), repeat=1, warmup=0,
                  reference_repeat=1, host="h", progress=False)
    rows = json.loads((out / "h.json").read_text())["rows"]["pann_upsample"]
    assert set(rows) == {"v9", "v4"}    # the earlier run's row and the finished one


def test_a_bench_that_finds_no_build_writes_nothing_and_exits_2(build, tmp_path, capsys):
    out = tmp_path / "results"
    run_bench(["pann_upsample"], ["v3"], str(build), str(out), repeat=1, warmup=0,
              reference_repeat=1, host="h", progress=False)
    before = (out / "h.json").read_bytes()
    for args in (["--build", str(tmp_path / "nope"), "--models", "pann_upsample"],
                 ["--build", str(build), "--models", "logmel"]):          # a build without logmel
        assert cli.main(["bench", *args, "--out", str(out), "--host", "h", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: no build found:"), err
        assert (out / "h.json").read_bytes() == before
    empty = tmp_path / "empty"
    assert cli.main(["bench", "--build", str(tmp_path / "nope"), "--out", str(empty), "--no-progress"]) == 2
    assert not empty.exists()


def test_a_row_whose_build_is_gone_keeps_its_measurement(build, tmp_path):
    out = tmp_path / "results"
    run_bench(["pann_upsample"], ["v3"], str(build), str(out), repeat=1, warmup=0,
              reference_repeat=1, host="h", progress=False)
    measured = json.loads((out / "h.json").read_text())["rows"]["pann_upsample"]["v3"]
    assert measured["status"] == "ok"
    shutil.rmtree(str(build / "pann_upsample" / "v3"))
    run_bench(["pann_upsample"], ["v9", "v3", "v4"], str(build), str(out), repeat=1, warmup=0,
              reference_repeat=1, host="h", progress=False)
    rows = json.loads((out / "h.json").read_text())["rows"]["pann_upsample"]
    assert rows["v3"] == measured                         # no new measurement: the old one stays
    assert rows["v4"]["status"] == "missing"              # nothing to keep: the reason is shown
    assert rows["v9"]["status"] == "failed"


def test_each_row_says_how_it_was_timed(build, tmp_path):
    out = tmp_path / "results"
    run_bench(["pann_upsample"], ["v3"], str(build), str(out), repeat=2, warmup=1,
              reference_repeat=4, host="h", progress=False)
    write_conversion(str(build / "pann_upsample" / "v4"), status="ok", artifact="model.mlmodel")
    shutil.copy(str(build / "pann_upsample" / "v3" / "model.mlmodel"), str(build / "pann_upsample" / "v4"))
    shutil.copy(str(build / "pann_upsample" / "v3" / "golden.npz"), str(build / "pann_upsample" / "v4"))
    run_bench(["pann_upsample"], ["v4"], str(build), str(out), repeat=1, warmup=0,
              reference_repeat=3, host="h", progress=False)
    data = json.loads((out / "h.json").read_text())
    rows = data["rows"]["pann_upsample"]
    assert rows["v3"]["timing"] == {"reference_evaluator": {"runs": 4, "warmup": 1}, "coreml": None}
    assert rows["v4"]["timing"] == {"reference_evaluator": {"runs": 3, "warmup": 0}, "coreml": None}
    assert "settings" not in data          # no file-wide label that one re-run could change


def test_a_build_copied_from_another_machine_needs_no_env_and_no_old_path(build, tmp_path, monkeypatch):
    import subprocess
    copied = tmp_path / "from-linux" / "b"
    shutil.copytree(str(build), str(copied))
    shutil.rmtree(str(build))                      # the building machine's folder is gone

    def no_process(*args, **kwargs):
        raise AssertionError("bench started a process: {}".format(args[0] if args else kwargs))
    monkeypatch.setattr(subprocess, "Popen", no_process)    # no tox, no route interpreter
    out = tmp_path / "results"
    assert cli.main(["bench", "--build", str(copied), "--models", "pann_upsample", "--routes", "v3", "v9",
                     "--repeat", "1", "--warmup", "0", "--reference-repeat", "1",
                     "--out", str(out), "--host", "mac", "--no-progress"]) == 0
    text = (out / "mac.json").read_text()
    assert str(build) not in text
    rows = json.loads(text)["rows"]["pann_upsample"]
    assert rows["v3"]["status"] == "ok" and rows["v9"]["status"] == "failed"


def test_the_mac_path_end_to_end_through_an_injected_runtime(build, tmp_path):
    """A whole bench run as on a Mac, Core ML replaced by a fake: every row says how Core ML
    was timed, and the fake's figures are refused at the door of results/."""
    from bench import results
    from test_macos import FAST, FakeRuntime, golden
    runtime = FakeRuntime(golden())
    doc = run_bench(["pann_upsample"], ["v3"], str(build), str(tmp_path / "r"), repeat=1, warmup=0,
                    reference_repeat=1, host="mac", runtime=runtime, progress=False, write=False,
                    protocol=FAST)
    row = doc["rows"]["pann_upsample"]["v3"]
    assert row["timing"] == {"reference_evaluator": {"runs": 1, "warmup": 0}, "coreml": FAST}
    cell = row["coreml"]["compute_units"]["CPU_AND_NE"]
    assert cell["latency"]["protocol"] == FAST and len(cell["latency"]["round_means"]) == FAST["rounds"]
    assert cell["placement"]["estimated_cost"]["neural_engine_share"] == pytest.approx(0.75)
    with pytest.raises(results.InjectedResultsError):
        run_bench(["pann_upsample"], ["v3"], str(build), str(tmp_path / "r"), repeat=1, warmup=0,
                  reference_repeat=1, host="mac", runtime=runtime, progress=False, protocol=FAST)
    written = json.loads((tmp_path / "r" / "mac.json").read_text())   # the real host baselines only
    assert written["rows"] == {} and "pann_upsample" in written["baselines"]
