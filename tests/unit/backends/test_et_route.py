"""Route et as the host sees it (no ExecuTorch here): metadata, what it accepts, the compute
units it claims for its Core ML partitions. Conversion and runs are tested in its own env
(tests/routes/test_et.py, tox -e et)."""
import subprocess
import sys

import backends
from backends import sources


def test_importing_the_route_loads_no_toolchain():
    code = ("import sys, backends; backends.get('et'); "
            "print(sorted(m for m in ('torch', 'executorch', 'coremltools') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, check=True,
                          universal_newlines=True)
    assert done.stdout.strip() == "[]"


def test_metadata():
    et = backends.get("et")
    assert (et.env, et.python, et.artifact) == ("et", "3.11", "model.pte")
    assert et.runtime == "ExecuTorch + Core ML" and et.runs_in_host is False
    assert et.variants == ("fp32", "lin8")


def test_onnx_and_torchscript_are_not_applicable_with_the_reason():
    et = backends.get("et")
    assert "use route v3" in et.accepts(sources.parse("model.onnx"))
    assert "use route v9" in et.accepts(sources.parse("model.pt"))
    assert et.accepts(sources.parse("pann_mobilenetv1")) is None
    assert et.accepts(sources.parse("my_model.py:build")) is None


def test_compute_units_follow_the_partitions_precision():
    et = backends.get("et")
    assert et.compute_units({"compute_precision": "fp16"}) == ["CPU", "GPU", "NE"]
    assert et.compute_units({"compute_precision": "fp32"}) == ["CPU", "GPU"]
    # an fp32-typed partition anywhere bars the Neural Engine for it
    assert et.compute_units({"compute_precision": "mixed"}) == ["CPU", "GPU"]


def test_overall_precision():
    from backends.routes.et import overall_precision
    assert overall_precision(["fp16", "fp16"]) == "fp16"
    assert overall_precision(["fp32"]) == "fp32"
    assert overall_precision(["fp16", "fp32"]) == "mixed"
    assert overall_precision([]) is None
