"""Variants on the host side: the command line refuses what a route cannot build, bench
finds <route>+<variant> folders, the report shows them with the compute units Apple's rules
allow, and the NeuralNetwork weight decoder names what it cannot decode."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backends import builds
from backends import variants
from bench import artifacts, report
from bench.run import artifact_names

ROOT = Path(__file__).resolve().parents[3]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "coreml_routes.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, words", [
    (["--route", "v3", "--precision", "fp32"], "--precision applies to routes that type their program"),
    (["--route", "v4", "--compress", "prune50"], "route v4 cannot build variant 'prune50'"),
    (["--route", "v9", "--compress", "fp16w"], "route v9 cannot build variant 'fp16w'"),
    (["--route", "v9-export", "--compress", "lut4", "--precision", "fp32"], "not both"),
    (["--route", "v9", "--compress", "lut3"], "invalid choice: 'lut3'"),
])
def test_unavailable_variants_are_one_error_line(args, words, tmp_path):
    done = cli("convert", "--model", "logmel", "--out", str(tmp_path), *args)
    assert done.returncode == 2
    errors = [l for l in done.stderr.splitlines() if "error:" in l]
    assert len(errors) == 1 and words in errors[0], done.stderr
    assert list(tmp_path.iterdir()) == []


def test_compute_units_follow_apples_typed_execution_rules():
    assert variants.compute_units("mlProgram", "fp32") == ["CPU", "GPU"]
    assert variants.compute_units("mlProgram", "fp16") == ["CPU", "GPU", "NE"]
    assert variants.compute_units("neuralNetwork", None) == ["CPU", "GPU", "NE"]


def fake_build(root, names, model="m"):
    for name in names:
        folder = root / model / name
        folder.mkdir(parents=True)
        route, variant = builds.split_folder_name(name)
        (folder / "conversion.json").write_text(json.dumps({
            "status": "ok", "route": route, "variant": variant, "spec_type": "mlProgram",
            "compute_precision": "fp32" if variant == "fp32" else "fp16", "file_bytes": 1000}))
    (root / model / ".v9.staging-1").mkdir()          # in-flight conversions are not artifacts


def test_variants_lists_routes_then_their_variants(tmp_path):
    fake_build(tmp_path, ["v9+prune50", "v9-export", "v9", "v3+lut4", "v9+fp32", "v3"])
    assert artifacts.variants(str(tmp_path), "m") == ["v3", "v3+lut4", "v9", "v9+fp32",
                                                      "v9+prune50", "v9-export"]
    assert artifacts.variants(str(tmp_path), "m", "v9") == ["v9", "v9+fp32", "v9+prune50"]
    assert artifacts.variants(str(tmp_path), "absent") == []
    assert artifacts.locate(str(tmp_path), "m", "v9+fp32").variant == "fp32"


def test_bench_measures_found_variants_after_their_route(tmp_path):
    fake_build(tmp_path, ["v9", "v9+lut4", "v4"])
    assert artifact_names(str(tmp_path), "m", ["v4", "v9", "v9+lut4", "v3"]) == \
        ["v4", "v9", "v9+lut4", "v3"]


def test_report_has_a_variant_table_with_compute_units():
    def conv(variant, precision):
        return {"status": "ok", "spec_type": "mlProgram", "compute_precision": precision,
                "variant": variant, "file_bytes": 2_000_000, "op_count": 10}
    conversions = {"v9": {"models": {"m": conv(None, "fp16")}},
                   "v9+fp32": {"models": {"m": conv("fp32", "fp32")}},
                   "v9+lut4": {"models": {"m": dict(conv("lut4", "fp16"), status="failed",
                                                    stage="compress")}}}
    headers, rows = report.model_table("m", [], conversions)
    assert [r[0] for r in rows] == ["v9"]                      # defaults only
    assert rows[0][headers.index(report.MAY_RUN_ON)] == "CPU GPU NE"
    headers, rows = report.variants_table("m", [], conversions)
    by_name = {r[0]: dict(zip(headers, r)) for r in rows}
    assert list(by_name) == ["v9", "v9+fp32", "v9+lut4"]
    assert by_name["v9+fp32"][report.MAY_RUN_ON] == "CPU GPU"
    assert by_name["v9+lut4"][report.AS_TYPED] == "no: failed at compress"


def test_nn_weights_that_cannot_be_decoded_say_why():
    from coremltools.proto import NeuralNetwork_pb2
    from coreml_reference import nn_weights
    params = NeuralNetwork_pb2.WeightParams()
    params.rawValue = bytes([0b10110100])
    with pytest.raises(nn_weights.WeightsError, match="without quantization"):
        nn_weights.decode(params, (2,))
    params.quantization.numberOfBits = 4
    params.quantization.lookupTableQuantization.floatValue.extend([0.0] * 8)
    with pytest.raises(nn_weights.WeightsError, match="holds 8 entries, 16 expected"):
        nn_weights.decode(params, (2,))
    params.quantization.lookupTableQuantization.floatValue.extend([0.0] * 8)
    params.quantization.lookupTableQuantization.floatValue[0xB] = 5.0
    params.quantization.lookupTableQuantization.floatValue[0x4] = -1.0
    # high nibble first (NeuralNetwork packs most significant bit first)
    np.testing.assert_array_equal(nn_weights.decode(params, (2,)), [5.0, -1.0])
    params.quantization.numberOfBits = 9
    with pytest.raises(nn_weights.WeightsError, match="9-bit"):
        nn_weights.decode(params, (2,))
