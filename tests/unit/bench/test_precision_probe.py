"""The float16 precision probe (bench/precision_probe.py): its two candidate answers, the
reference evaluator's place between them, and Core ML's through an injected runtime."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("coremltools")

from bench import precision_probe  # noqa: E402
from bench.macos import CoreMLRuntime  # noqa: E402


def test_the_two_answers_differ_on_every_probe():
    # (x + 2048) - 2048 in float16: 2049 and 2053 round to 2048 and 2052 (ties to even)
    for _, fp16, fp32 in precision_probe.PROBES.values():
        assert np.asarray(fp16).tolist() == [0.0, 4.0, 4.0, 6.0]
        assert np.asarray(fp32).tolist() == [1.0, 3.0, 5.0, 6.0]


class FakeCoreML(CoreMLRuntime):
    """CPU keeps float32, GPU rounds every op to float16, the Neural Engine refuses."""
    name = "fake"

    def load(self, path, compute_unit):
        if compute_unit == "CPU_AND_NE":
            raise RuntimeError("no Neural Engine here")
        answer = [1.0, 3.0, 5.0, 6.0] if compute_unit == "CPU_ONLY" else [0.0, 4.0, 4.0, 6.0]
        if compute_unit == "ALL":
            answer = [0.5, 3.0, 5.0, 6.0]

        class Model:
            def predict(self, inputs):
                return {"y": np.array(answer, np.float32)}
        return Model()


def test_verdicts_per_compute_unit_and_the_reference_runs_as_typed(tmp_path):
    results = precision_probe.probe(FakeCoreML(), folder=str(tmp_path))
    assert set(results) == set(precision_probe.PROBES)
    for row in results.values():
        assert row["reference"]["verdict"] == "float16 per op"
        assert row["CPU_ONLY"]["verdict"] == "float32"
        assert row["CPU_AND_GPU"]["verdict"] == "float16 per op"
        assert row["ALL"] == {"verdict": "neither", "output": [0.5, 3.0, 5.0, 6.0]}
        assert "no Neural Engine here" in row["CPU_AND_NE"]["not_measured"]


def test_off_macos_every_core_ml_cell_says_why(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(precision_probe, "is_macos", lambda: False)
    assert precision_probe.main(["--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "fp16-probe.json").read_text())
    for row in saved["probes"].values():
        assert all(row[unit] == {"not_measured": "needs macOS"}
                   for unit in ("CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE", "ALL"))
    assert "not measured: needs macOS" in capsys.readouterr().out


def test_an_out_folder_that_cannot_be_made_is_one_error_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert precision_probe.main(["--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --out ") and str(blocker) in err[0]
