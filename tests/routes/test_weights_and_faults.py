"""Strict weight loading and converter crashes, in each route's own env (Python 3.7 ok)."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

import zoo


def test_strict_checkpoint_round_trip():
    """Arrays taken from one model load into a fresh one and give identical outputs."""
    import torch
    source = zoo.get("pann_mobilenetv1").build()
    arrays = dict((k, v.numpy().copy()) for k, v in source.state_dict().items())
    arrays["fc_audioset.bias"] += 0.5          # differs from the seeded weights
    target = zoo.load_weights(zoo.get("pann_mobilenetv1").build(), arrays)
    x = torch.from_numpy(zoo.get("pann_mobilenetv1").example_inputs(16000)["waveform"])
    with torch.no_grad():
        got = target(x)[0].numpy()
        source.fc_audioset.bias.add_(0.5)
        want = source(x)[0].numpy()
    np.testing.assert_array_equal(got, want)


def test_checkpoint_with_missing_extra_or_misshaped_keys_is_refused():
    module = zoo.get("pann_mobilenetv1").build()
    arrays = dict((k, v.numpy()) for k, v in module.state_dict().items())
    missing = dict(arrays)
    del missing["fc1.weight"]
    with pytest.raises(zoo.ZooError, match="missing key.*fc1.weight"):
        zoo.load_weights(module, missing, where="ckpt.pth")
    extra = dict(arrays, **{"head.weight": np.zeros(3, np.float32)})
    with pytest.raises(zoo.ZooError, match="unexpected key.*head.weight"):
        zoo.load_weights(module, extra, where="ckpt.pth")
    misshaped = dict(arrays, **{"fc1.weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(zoo.ZooError, match=r"fc1.weight has shape \(3, 3\)"):
        zoo.load_weights(module, misshaped, where="ckpt.pth")


# A hook that really segfaults inside the converter, on an op logmel has in every route.
SEGFAULT_HOOKS = '''
import ctypes

def crash(*args, **kwargs):
    ctypes.string_at(0)          # read address 0: SIGSEGV

HOOKS = {"v3": {"Conv": crash}, "v4": {"log": crash}, "v9": {"log": crash},
         "v9-export": {"log": crash}, "coreai": {"aten::log.default": crash},
         "et": {"log": crash}}
'''


def test_segfault_is_a_recorded_failure_and_keeps_earlier_results(route, tmp_path):
    from backends.runner import convert_isolated
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = str(tmp_path)
    hooks = tmp_path / "crash_hooks.py"
    hooks.write_text(SEGFAULT_HOOKS)

    crashed = convert_isolated(sys.executable, route, "logmel", out, 4000, hooks=str(hooks), env=env)
    assert crashed["status"] == "failed"
    assert crashed["signal"] == "SIGSEGV"
    assert crashed["stage"] == "convert"
    with open(os.path.join(out, "logmel", route, "conversion.json")) as f:
        assert json.load(f)["signal"] == "SIGSEGV"

    # The run goes on: the next conversion works, and replaces the failed record.
    ok = convert_isolated(sys.executable, route, "logmel", out, 4000, env=env)
    assert ok["status"] == "ok"

    # A later crash must not destroy that good conversion.
    convert_isolated(sys.executable, route, "logmel", out, 4000, hooks=str(hooks), env=env)
    folder = os.path.join(out, "logmel", route)
    with open(os.path.join(folder, "conversion.json")) as f:
        assert json.load(f)["status"] == "ok"
    with open(os.path.join(folder, "conversion.failed.json")) as f:
        assert json.load(f)["signal"] == "SIGSEGV"
    assert os.path.exists(os.path.join(folder, "golden.npz"))
