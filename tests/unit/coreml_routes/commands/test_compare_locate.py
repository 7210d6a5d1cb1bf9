"""compare names the layer where a diverging route departs, not just the output: the v3
LOG story (onnx-coreml 1.3 writes log(x + 1e-6)) on a model of one log of a power."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]

LOG_POWER = '''
import torch
import torch.nn as nn


class LogPower(nn.Module):
    def forward(self, x):
        return torch.log(x * x + 1e-12)


def build():
    return LogPower()
'''


@pytest.mark.slow
def test_stock_v3_names_the_log_layer_on_the_quiet_case(tmp_path):
    (tmp_path / "log_power.py").write_text(LOG_POWER)
    out = tmp_path / "build"
    done = subprocess.run([sys.executable, "-m", "coreml_routes.cli", "compare", "--model",
                           str(tmp_path / "log_power.py") + ":build", "--input", "x:1x64",
                           "--routes", "v3", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stdout + done.stderr     # nothing to recommend
    row = json.loads((out / "log_power-build" / "compare.json").read_text())["routes"]["v3"]
    # At 1e-3 of full scale, x*x is about 1e-6: the epsilon doubles it.
    assert row["verified"]["status"] == "diverges" and row["verified"]["worst_case"] == "quiet"
    located = row["first_divergent_layer"]
    assert located.startswith("first divergent layer on case quiet: unary ")
    assert "type: LOG" in located and "epsilon: 1e-06" in located
    assert located in row["why_not"] and "first divergent layer on case quiet" in done.stdout
    stages = row["stage_seconds"]
    assert {"env", "toolchain", "convert", "verify", "fp16"} <= set(stages)
    assert "seconds per stage" in done.stdout


def test_a_search_that_fails_keeps_the_verdict_and_says_so(tmp_path, monkeypatch):
    """The layer search is extra: when it fails (a crashed env, a model diagnose cannot cut),
    the route keeps its verdict and reason, and the row says the layer was not located."""
    from collections import OrderedDict
    from types import SimpleNamespace

    import numpy as np

    import diagnose
    import pipeline.conversions
    from backends.builds import Case, write_cases
    from coreml_routes.commands.compare import locate_divergences

    folder = tmp_path / "v4"
    folder.mkdir()
    x = OrderedDict(x=np.ones((1, 4), np.float32))
    write_cases(str(folder), [Case("example", x, OrderedDict(y=x["x"])),
                              Case("quiet", x, OrderedDict(y=x["x"]))])

    def crashed(*args, **kwargs):
        raise RuntimeError("v4 env: converter killed by signal 11\nmore detail")
    monkeypatch.setattr(diagnose, "diagnose", crashed)
    monkeypatch.setattr(pipeline.conversions, "single_route_python", lambda *a: "python")
    row = {"status": "ok", "precision": "fp32", "folder": str(folder),
           "verified": {"status": "diverges", "worst_case": "quiet"},
           "why_not": "diverges: output y departs from PyTorch (SNR 8.0 dB)"}
    doc = {"routes": {"v4": row}}
    request = SimpleNamespace(source=SimpleNamespace(kind="python", spec="m.py:build"),
                              samples=1, weights_npz=None, name="m", outputs=None)
    locate_divergences(doc, request, [], str(tmp_path), lambda text: None)
    assert row["first_divergent_layer"] == (
        "first divergent layer not located: RuntimeError: v4 env: converter killed by signal 11")
    assert row["why_not"].startswith("diverges: output y departs from PyTorch (SNR 8.0 dB); ")
    assert row["verified"]["status"] == "diverges"
