"""Stateful models, converted by this env's route in its own worker (tox -e v9 / et / coreai /
v3 / v4 ... -- -k states): the models are written here (seeded), the golden is PyTorch's over
successive calls, and ``verified`` must hold over every call where the route carries states.

- a KV-cache decoder in two cache styles: indexed assignment ``cache[:, :, pos] = k`` and
  ``cache.index_copy_(2, pos, k)`` (Hugging Face StaticCache style);
- a streaming model whose state is a ring buffer of its past frames;
- the same stateful model with --steps 1 and --steps 8.
Python 3.7 compatible (the v3 env runs it).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import OrderedDict

import numpy as np
import pytest

from conftest import ROOT

MODELS = textwrap.dedent('''
    import torch, torch.nn as nn

    class Decoder(nn.Module):
        def __init__(self, style, vocab=32, d=16, ctx=8):
            super().__init__()
            self.style = style
            self.emb = nn.Embedding(vocab, d)
            self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
            self.out = nn.Linear(d, vocab)
            self.register_buffer("k_cache", torch.zeros(1, 1, ctx, d))
            self.register_buffer("v_cache", torch.zeros(1, 1, ctx, d))

        def forward(self, tokens, pos):
            h = self.emb(tokens).unsqueeze(1)
            k, v = self.k(h), self.v(h)
            if self.style == "index":
                self.k_cache[:, :, pos] = k
                self.v_cache[:, :, pos] = v
            else:
                self.k_cache.index_copy_(2, pos, k)
                self.v_cache.index_copy_(2, pos, v)
            ctx = self.k_cache.shape[2]
            mask = (torch.arange(ctx) <= pos).view(1, 1, 1, ctx)
            att = self.q(h) @ self.k_cache.transpose(-1, -2) / 4.0
            att = att.masked_fill(~mask, -1e4).softmax(-1)
            return self.out(att @ self.v_cache).squeeze(1)

    class Ring(nn.Module):
        def __init__(self, f=8, n=4):
            super().__init__()
            self.register_buffer("past", torch.zeros(1, f, n))
            self.conv = nn.Conv1d(f, 4, n)

        def forward(self, frame):
            self.past.copy_(torch.cat([self.past[:, :, 1:], frame], 2))
            return self.conv(self.past)

    def indexed():
        return Decoder("index")

    def index_copy():
        return Decoder("index_copy")

    def ring():
        return Ring()
''')

CARRIES = ("v9", "v9-export", "et", "coreai")


def _convert(tmp_path, route, factory, step_inputs, steps):
    from backends.builds import Case, write_cases_file
    models = tmp_path / "stateful_models.py"
    models.write_text(MODELS)
    first = OrderedDict((k, v[0]) for k, v in step_inputs.items())
    write_cases_file(str(tmp_path / "in.npz"), [Case("example", first, OrderedDict())])
    write_cases_file(str(tmp_path / "steps.npz"), [Case("steps", step_inputs, OrderedDict())])
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "backends.worker", "--route", route, "--model",
                           "{}:{}".format(models, factory), "--out", str(out), "--inputs",
                           str(tmp_path / "in.npz"), "--steps", str(steps), "--step-inputs",
                           str(tmp_path / "steps.npz")], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    with open(str(out / "conversion.json")) as f:
        return str(out), json.load(f)


def _tokens(steps):
    rng = np.random.RandomState(7)
    return OrderedDict([("tokens", rng.randint(0, 32, (steps, 1, 1)).astype(np.int64)),
                        ("pos", np.arange(steps, dtype=np.int64).reshape(steps, 1))])


def _frames(steps):
    rng = np.random.RandomState(8)
    return OrderedDict([("frame", rng.standard_normal((steps, 1, 8, 1)).astype(np.float32))])


def _golden_is_stepwise(out, steps):
    from backends.builds import read_cases
    (case,) = read_cases(out)
    assert case.label == "steps"
    for value in list(case.inputs.values()) + list(case.outputs.values()):
        assert value.shape[0] == steps
    return case


def _check(route, out, record, steps):
    assert record["steps"] == steps
    assert [s["name"] for s in record["states"]]
    _golden_is_stepwise(out, steps)
    if route not in CARRIES:
        assert record["status"] == "not applicable"
        assert record["reason"] == "states need iOS 18 (Core ML spec 9)"
        return None
    return record


def _verified(route, out, record):
    from backends.builds import as_record
    from bench.verify import verify
    import backends
    backend, runner = backends.get(route), None
    if not backend.runs_in_host:   # .pte / .aimodel: the route's own runtime, here in its env

        def runner(path, inputs, precision, steps=None):
            if steps:
                return backend.run_artifact_steps(path, as_record(record), inputs, steps, precision)
            return backend.run_artifact(path, as_record(record), inputs, precision)
    return verify(out, as_record(record), runner)


def test_kv_decoder_indexed_assignment_converts_with_states(tmp_path, route):
    out, record = _convert(tmp_path, route, "indexed", _tokens(5), 5)
    if _check(route, out, record, 5) is None:
        return
    assert record["status"] == "ok", record.get("error")
    if route in ("v9", "v9-export"):
        assert record["deployment_target"] == "iOS18"
    if route == "coreai":
        assert len(record["states"]) == 2
        return   # Core AI's Linux interpreter dies (SIGILL) on this program: see the report
    verdict = _verified(route, out, record)
    if route == "v9" and verdict["status"] == "diverges":
        # Seen here: the traced program converts with its two fp16 states and departs from
        # call 1; v9-export (torch.export) matches. The cause is not found yet.
        pytest.xfail("v9 (torch.jit.trace) stateful decoder departs at call 1: cause not found")
    assert verdict["status"] == "matches", verdict
    assert verdict["steps"] == 5 and verdict["first_departing_step"] is None


def test_kv_decoder_index_copy_is_the_converters_to_refuse(tmp_path, route):
    out, record = _convert(tmp_path, route, "index_copy", _tokens(4), 4)
    if _check(route, out, record, 4) is None:
        return
    if route in ("v9", "v9-export"):
        assert record["status"] == "failed"
        assert "index_copy" in record["error"]
    else:
        assert record["status"] in ("ok", "failed")
        assert record["status"] == "ok" or record["error"]


@pytest.mark.parametrize("steps", [1, 8])
def test_ring_buffer_stream_over_steps(tmp_path, route, steps):
    out, record = _convert(tmp_path, route, "ring", _frames(steps), steps)
    if _check(route, out, record, steps) is None:
        return
    if route == "v9":   # coremltools' TorchScript frontend cannot convert the ring's slice-copy
        assert record["status"] == "failed" and "No matching select or slice" in record["error"]
        return
    assert record["status"] == "ok", record.get("error")
    if route == "coreai":
        return
    verdict = _verified(route, out, record)
    assert verdict["status"] == "matches", verdict
    assert verdict["steps"] == steps
