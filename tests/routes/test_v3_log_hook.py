"""Route v3's Log fix (examples/hooks_log.py, combined with the Pad fix in
examples/hooks_pad.py + hooks_log.py), in the v3 env (tox -e v3, Python 3.7).

onnx-coreml 1.3 writes ONNX ``Log`` as a unary LOG layer with epsilon 1e-6; Core ML computes
``log(x + epsilon)``, which lifts the log-mel of quiet audio by several dB. The hook writes
coremltools' own epsilon for log (1e-45). Expected outputs come from PyTorch (torch 1.4 in this
env) on a quiet input this test writes. The converted models are run by coreml_reference,
which needs the host's Python (3.10+, protobuf 4+): ``COREML_ROUTES_HOST_PYTHON`` or the
``python3.11`` on PATH.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, build_dir

EXAMPLES = os.path.join(ROOT, "examples")
ONNX_COREML_EPSILON = 1e-6
HOOK_EPSILON = 1e-45


@pytest.fixture(autouse=True)
def v3_only(route):
    if route != "v3":
        pytest.skip("the Log hook is route v3's")


def quiet_pink_noise(samples, peak_dbfs=-60.0, seed=7):
    """1/f noise (amplitude ~ 1/sqrt(f)) peaking at ``peak_dbfs`` (0 dBFS = 1.0)."""
    rng = np.random.RandomState(seed)
    spectrum = np.fft.rfft(rng.randn(samples))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    x = np.fft.irfft(spectrum / np.sqrt(freqs), samples)
    return (x / np.abs(x).max() * 10.0 ** (peak_dbfs / 20.0)).astype(np.float32)[None]


def log_epsilons(path):
    import coremltools
    spec = coremltools.utils.load_spec(path)
    return [layer.unary.epsilon for layer in spec.neuralNetwork.layers
            if layer.WhichOneof("layer") == "unary" and layer.unary.type == layer.unary.LOG]


@pytest.fixture(scope="module")
def conversions(tmp_path_factory, request):
    """logmel converted with the Pad fix alone (stock Log) and with both fixes."""
    if "v3" not in request.config.getoption("route"):   # module scope: before v3_only runs
        pytest.skip("the Log hook is route v3's")
    from backends.runner import convert_isolated
    out = tmp_path_factory.mktemp("v3_log")
    models = {}
    for label, files in (("pad", ["hooks_pad.py"]), ("pad+log", ["hooks_pad.py", "hooks_log.py"])):
        record = convert_isolated(sys.executable, "v3", "logmel", str(out / label),
                                  hooks=[os.path.join(EXAMPLES, f) for f in files])
        assert record["status"] == "ok", record.get("error")
        models[label] = str(out / label / "logmel" / "v3" / "model.mlmodel")
    return models


def test_log_layers_carry_coremltools_epsilon_only_with_the_hook(conversions):
    stock = log_epsilons(conversions["pad"])
    fixed = log_epsilons(conversions["pad+log"])
    assert len(stock) == len(fixed) == 1
    assert stock[0] == pytest.approx(ONNX_COREML_EPSILON)
    assert 0.0 < fixed[0] <= 2 * HOOK_EPSILON    # 1e-45 is a float32 subnormal (~1.4e-45)


def host_python():
    python = os.environ.get("COREML_ROUTES_HOST_PYTHON") or shutil.which("python3.11")
    if not python:
        pytest.skip("no host Python (3.10+) to run coreml_reference: set COREML_ROUTES_HOST_PYTHON")
    return python


EVALUATE = """
import sys
import numpy as np
import coreml_reference
x = np.load(sys.argv[1])["waveform"]
for path in sys.argv[3:]:
    out = coreml_reference.predict(path, {"waveform": x})
    np.save(sys.argv[2] + "." + str(sys.argv.index(path)) + ".npy", out["melspec"])
"""


def test_quiet_log_mel_matches_pytorch_only_with_the_log_fix(conversions, tmp_path):
    import torch
    import zoo
    x = quiet_pink_noise(32000)
    with torch.no_grad():
        expected = zoo.get("logmel").build()(torch.from_numpy(x)).numpy()
    np.savez(str(tmp_path / "quiet.npz"), waveform=x)
    paths = [conversions["pad"], conversions["pad+log"]]
    env = dict(os.environ, PYTHONPATH=ROOT)
    subprocess.check_call([host_python(), "-c", EVALUATE, str(tmp_path / "quiet.npz"),
                           str(tmp_path / "out")] + paths, env=env, cwd=ROOT)
    stock, fixed = [np.load(str(tmp_path / "out.{}.npy".format(i))) for i in (3, 4)]
    assert expected.max() < -40.0          # quiet: every log-mel bin below -40 dB
    stock_error = np.abs(stock - expected).max()
    fixed_error = np.abs(fixed - expected).max()
    assert stock_error > 3.0, stock_error  # measured 14.4 dB at -60 dBFS
    assert fixed_error < 1e-3, fixed_error  # measured 2.3e-5 dB


def test_tox_builds_the_zoo_with_both_fixes():
    folder = os.path.join(build_dir(), "pann_mobilenetv1", "v3")
    with open(os.path.join(folder, "conversion.json")) as f:
        record = json.load(f)
    if record.get("hooks") != "hooks_pad.py, hooks_log.py":
        pytest.skip("build/ was not converted by tox -e v3 (hooks: {})".format(record.get("hooks")))
    epsilons = log_epsilons(os.path.join(folder, "model.mlmodel"))
    assert epsilons and all(0.0 < e <= 2 * HOOK_EPSILON for e in epsilons)
