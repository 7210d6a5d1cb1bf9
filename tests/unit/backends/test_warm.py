"""Warm starts: conversions in one env fork from one process that imported the toolchain,
and each still starts from that import alone (route v9, this Python)."""
import os
import sys

import numpy as np
import pytest

from backends import warm
from backends.runner import convert_isolated

# build() leaves a mark on the imported toolchain: a conversion that sees one was not
# isolated from the one before. A file "sleep" beside it makes a conversion outlast its timeout.
MODEL = '''
import os
import time

import coremltools
import torch


def build():
    if hasattr(coremltools, "_left_by_an_earlier_conversion"):
        raise RuntimeError("this conversion sees state an earlier one left")
    coremltools._left_by_an_earlier_conversion = True
    if os.path.exists(os.path.join(os.path.dirname(__file__), "sleep")):
        time.sleep(60)
    return torch.nn.ReLU()
'''

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="warm starts are Linux only")


@pytest.fixture
def user_model(tmp_path, monkeypatch):
    monkeypatch.delenv("COREML_ROUTES_COLD", raising=False)
    warm.close_all()
    (tmp_path / "m.py").write_text(MODEL)
    np.savez(tmp_path / "in.npz", **{"input:x": np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)})
    yield lambda name, **kw: convert_isolated(
        sys.executable, "v9", "{}:build".format(tmp_path / "m.py"), str(tmp_path / "build"),
        name=name, inputs=str(tmp_path / "in.npz"), outputs=["y"], **kw)
    warm.close_all()


def test_one_import_serves_every_conversion_and_each_starts_clean(user_model):
    first = user_model("a")
    (server,) = warm._idle.values()
    second = user_model("b")
    assert first["status"] == second["status"] == "ok", (first.get("error"), second.get("error"))
    assert list(warm._idle.values()) == [server] and server.alive()
    # the first waited for the toolchain's import (in the warm process); the second did not
    assert second["seconds"]["load_toolchain"] < 0.5 < first["seconds"]["load_toolchain"]


def test_a_timeout_kills_the_conversion_and_the_env_stays_warm(user_model, tmp_path):
    assert user_model("a")["status"] == "ok"
    (server,) = warm._idle.values()
    (tmp_path / "sleep").touch()
    slow = user_model("slow", timeout=3)
    assert slow["status"] == "failed" and slow["error"] == "timed out after 3 s"
    (tmp_path / "sleep").unlink()
    assert user_model("b")["status"] == "ok"
    assert list(warm._idle.values()) == [server] and server.alive()


def test_an_interrupt_before_the_child_is_named_still_ends_it(user_model, tmp_path):
    """Ctrl-C right after a request was sent: the child it started is ended, and the next
    conversion reads its own replies."""
    assert user_model("a")["status"] == "ok"
    (server,) = warm._idle.values()
    (tmp_path / "sleep").touch()
    server._send({"args": ["--route", "v9", "--model", "{}:build".format(tmp_path / "m.py"),
                           "--out", str(tmp_path / "slow"), "--inputs", str(tmp_path / "in.npz")],
                  "env": dict(os.environ), "cwd": os.getcwd(), "stderr": str(tmp_path / "err")})
    server._interrupted(None)
    (tmp_path / "sleep").unlink()
    assert user_model("b")["status"] == "ok"
    assert list(warm._idle.values()) == [server] and server.alive()


def test_cold_start_when_asked(user_model, monkeypatch):
    monkeypatch.setenv("COREML_ROUTES_COLD", "1")
    record = user_model("a")
    assert record["status"] == "ok" and not warm._idle
    assert record["seconds"]["load_toolchain"] > 0.5      # the child imported it itself
