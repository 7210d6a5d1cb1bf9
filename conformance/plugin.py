"""pytest plugin: run coremltools' own tests with ``MLModel.predict`` answered by
``coreml_reference.predict``, and record what happened to each test.

Loaded with ``-p conformance.plugin`` before the tests are collected, it
- makes coremltools' test helpers believe they run on macOS 15 (they call ``predict`` only
  there), and replaces ``MLModel.predict`` by the reference evaluator, after the same
  Python-side input checks and conversions the real method makes;
- replaces Mac-only APIs other than ``predict`` (``make_state``) with ``NeedsCoreML``;
- seeds numpy, torch and ``random`` from each test's id, so that two runs agree;
- writes one JSON line per test to ``$CONFORMANCE_RECORDS``: its outcome, whether predict
  was reached, returned or raised (error class and message); the first line says how many
  tests were collected (the parent process reads the file to show progress).
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import sys
import time
import zlib

import numpy as np
import pytest

import coreml_reference

TEST_TIMEOUT_S = int(os.environ.get("CONFORMANCE_TEST_TIMEOUT", "300"))
# Messages of coremltools' own Mac-only paths (compiling, the model proxy, compute plans).
_MAC_ONLY = re.compile(r"Core ?ML\.framework|libcoremlpython|_MLModelProxy|macOS|"
                       r"compiled model|MLComputePlan|CompiledMLModel")


class NeedsCoreML(Exception):
    """The test uses the Core ML framework for something other than predict."""


class TestTimeout(Exception):
    pass


_record = None


def _new_record(nodeid):
    return {"id": nodeid, "outcome": None, "calls": 0, "returned": 0, "raised": None,
            "error": None, "model": None, "seconds": 0.0}


# --- the patches ----------------------------------------------------------------------------

def _to_numpy(value):
    if isinstance(value, np.ndarray) or hasattr(value, "mode"):   # arrays; PIL images as given
        return value
    if hasattr(value, "detach"):               # torch.Tensor, as MLModel.predict takes it
        return value.detach().numpy()
    return np.array(value)


def reference_predict(self, data, state=None, **_ignored):
    """``MLModel.predict`` on Linux: its Python-side checks, then the reference evaluator."""
    from coremltools.models.model import MLModel
    if state is not None:
        raise NeedsCoreML("stateful prediction (MLState) needs Core ML")
    MLModel._check_predict_data(data)
    if isinstance(data, list):
        return [reference_predict(self, d) for d in data]
    self._verify_input_dict(data)
    feeds = {k: _to_numpy(v) for k, v in data.items()}
    self._update_float16_multiarray_input_to_float32(feeds)
    rec = _record
    if rec is not None:
        rec["calls"] += 1
        rec["model"] = self.get_spec().WhichOneof("Type")
    try:
        result = coreml_reference.predict(self, feeds)
    except BaseException as e:
        if rec is not None:
            rec["raised"] = [type(e).__name__, _first_line(e)]
        if isinstance(e, coreml_reference.RuntimeCheckError):
            # The model's own run-time check failed: Core ML fails the prediction, and
            # MLModel.predict reports that as a RuntimeError with Core ML's description.
            kind = self.get_spec().WhichOneof("Type")
            raise RuntimeError("{}: {}".format(_PREDICTION_FAILED.get(kind, _NN_FAILED), e)) from e
        raise
    if rec is not None:
        rec["returned"] += 1
    return result


# How Core ML describes a prediction that failed, per model kind.
_NN_FAILED = "Error computing NN outputs"
_PREDICTION_FAILED = {"mlProgram": "Unable to compute the prediction using ML Program"}


def _needs_coreml(what):
    def refuse(*_args, **_kwargs):
        raise NeedsCoreML("{} needs the Core ML framework (macOS)".format(what))
    return refuse


def install():
    """Patch coremltools in this process (before any test module is imported)."""
    import coremltools.converters.mil.testing_utils as testing_utils
    import coremltools.models.utils as model_utils
    from coremltools.models.model import MLModel
    model_utils._is_macos = lambda: True
    model_utils._macos_version = lambda: (15, 0)
    testing_utils._IS_MACOS = True
    MLModel.predict = reference_predict
    MLModel.make_state = _needs_coreml("MLModel.make_state")


def _first_line(exc, limit=400):
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:limit]


# --- pytest hooks ---------------------------------------------------------------------------

def pytest_configure(config):
    install()
    _seed("collection")                         # some tests draw their parameters at import


def _seed(text):
    """Apple's tests draw random inputs without a seed, so a test near its tolerance passes
    on some runs only. Seeding every generator from the test's id makes a run repeatable;
    the seed is a fixed function of the id, never chosen by outcome."""
    seed = zlib.crc32(text.encode())
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def pytest_collection_finish(session):
    _write({"collected": len(session.items)})


def _on_alarm(signum, frame):
    raise TestTimeout("test took more than {} s".format(TEST_TIMEOUT_S))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    global _record
    _record = _new_record(item.nodeid)
    _seed(item.nodeid)
    start = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        rec, _record = _record, None
        rec["seconds"] = round(time.perf_counter() - start, 3)
        rec["outcome"] = rec["outcome"] or "passed"
        _write(rec)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    rec = _record
    if rec is None:
        return
    if report.skipped and rec["outcome"] is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        rec["outcome"] = "skipped"
        rec["error"] = ["Skipped", str(reason)[:400]]
    elif report.failed and rec["outcome"] != "failed":
        rec["outcome"] = "failed"
        exc = call.excinfo.value if call.excinfo is not None else None
        rec["error"] = [type(exc).__name__, _first_line(exc)] if exc is not None else \
            ["Error", str(report.longrepr)[:400]]


def _write(rec):
    path = os.environ.get("CONFORMANCE_RECORDS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(rec) + "\n")
