"""Failed and missing artifacts become rows with reasons, and the run goes on."""
import json
import os

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
