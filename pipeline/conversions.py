"""Convert one ``ModelRequest`` by one route and check the result, as ``convert`` and
``compare`` both do:

1. ``host_reference`` runs the model once in the host's torch (own process): its outputs
   give each route's ``torch_drift``; a factory model's initial weights, taken there, are
   handed to every route so that all routes convert the same weights.
2. ``convert_route``: the route's env (plus an overlay for ``--requirements``), the
   isolated conversion, then ``verified`` and ``torch_drift`` into conversion.json.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np

from bad_input import BadInput

NOT_APPLICABLE = "not applicable"
HOST_TIMEOUT = 900


def needs_shared_weights(request):
    """A factory model without a checkpoint: every route must get the weights one build
    made, so ``host_reference`` has to finish before the routes start."""
    from backends.sources import FACTORY
    return request.source.kind == FACTORY and not request.weights_npz


def host_first(request):
    """The host's run goes before the routes for the user's own model: it finds the user's
    mistakes once (``backends.preflight``: no such function, the factory raises, the forward
    rejects the inputs) and, without a checkpoint, makes the weights every route gets."""
    from backends.sources import FACTORY, TORCHSCRIPT
    return request.source.kind in (FACTORY, TORCHSCRIPT)


def host_reference(request, tmp):
    """{"outputs": [arrays] or None, "torch": version, "reason": why not}; may set the
    request's shared weights (see ``needs_shared_weights``)."""
    from backends.base import last_line
    from backends.builds import read_arrays
    from backends.runner import signal_name
    from backends.sources import ONNX
    from pipeline.envs import child_env
    if request.source.kind == ONNX:
        return {"outputs": None, "reason": "an ONNX file has no PyTorch model: its golden "
                                           "outputs come from onnxruntime"}
    out = os.path.join(tmp, "host_outputs.npz")
    cmd = [sys.executable, "-m", "backends.reference_run", "--model", request.source.spec,
           "--out", out, "--samples", str(request.samples)]
    if request.inputs_npz:
        cmd += ["--inputs", request.inputs_npz]
    if request.weights_npz:
        cmd += ["--weights", request.weights_npz]
    share = needs_shared_weights(request)
    if share:
        cmd += ["--state", os.path.join(tmp, "initial_weights.npz")]
    try:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=child_env(), timeout=HOST_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {"outputs": None, "reason": "host torch run timed out after {} s".format(HOST_TIMEOUT)}
    if done.returncode == 2:   # the user's own mistake (backends.preflight): once, before any route
        raise BadInput(last_line(done.stderr)[len("error: "):] if last_line(done.stderr).startswith(
            "error: ") else last_line(done.stderr))
    if done.returncode != 0:
        why = ("killed by signal {}".format(signal_name(-done.returncode)) if done.returncode < 0
               else last_line(done.stderr))
        return {"outputs": None, "reason": "the host's torch cannot run the model: {}".format(why)}
    _, outputs = read_arrays(out)
    with np.load(out, allow_pickle=False) as data:
        version = str(data["torch_version"])
    outputs = list(outputs.values())
    if share:
        request.weights_npz = os.path.join(tmp, "initial_weights.npz")
        request.weights = "{}() as built by the host's torch {}, the same for every route".format(
            request.source.function, version)
    return {"outputs": outputs, "torch": version}


def require_applicable(backend, request):
    reason = backend.accepts(request.source)
    if reason:
        raise BadInput("route {} is {} for {}: {}".format(
            backend.name, NOT_APPLICABLE, request.source.spec, reason))


def single_route_python(backend, request):
    """For the one-route commands (diagnose, ops): the Python that runs ``backend`` for this
    request; a route that does not apply or whose env cannot take it is the user's error."""
    from pipeline.envs import EnvFailure, env_python, overlay_python
    require_applicable(backend, request)
    python = env_python(backend)
    if request.requirements:
        try:
            python = overlay_python(backend, python, request.requirements)
        except EnvFailure as e:
            raise BadInput("route {}: {}".format(backend.name, e))
    return python


def convert_route(request, backend, out_root, hooks=None, host=None, provision=True, variant=None):
    """The route's conversion record, checked; ``status`` ok / failed / not applicable.
    ``variant``: build that variant into ``<route>+<variant>/`` (``backends.variants``)."""
    from backends.builds import route_dir
    from backends.runner import convert_isolated, record_failure
    from pipeline.envs import EnvFailure, child_env, env_python, overlay_python
    reason = backend.accepts(request.source)
    if reason:
        return {"route": backend.name, "model": request.name, "status": NOT_APPLICABLE,
                "stage": None, "reason": reason}
    source = {"kind": request.source.kind, "spec": request.source.spec}
    start = time.perf_counter()
    python = env_python(backend, provision=provision)   # no interpreter: BadInput, the caller's
    if request.requirements:
        try:
            python = overlay_python(backend, python, request.requirements)
        except EnvFailure as e:
            return record_failure(out_root, request.name, backend.name, "env", str(e),
                                  source=source)
    env_ready = time.perf_counter()
    record = convert_isolated(python, backend.name, request.source.spec, out_root,
                              request.samples, weights=request.weights_npz, hooks=hooks,
                              env=child_env(), name=request.name, inputs=request.inputs_npz,
                              outputs=request.outputs, variant=variant,
                              extra_args=getattr(request, "worker_args", ()))
    # The host's share, beside the worker's own stages: compare reports seconds per stage.
    record["seconds"] = dict(record.get("seconds") or {}, env=round(env_ready - start, 4),
                             process=round(time.perf_counter() - env_ready, 4))
    if record.get("status") == "ok":
        check(route_dir(out_root, request.name, backend.name, variant), record, host,
              request.weights, artifact_runner(backend, python))
    return record


def artifact_runner(backend, python=None):
    """None for an artifact the host's evaluator opens itself; else a runner into the route's
    env (``python``, default: the route's provisioned env) for ``bench.verify``. Runners of one
    env share its serving child (``EnvRunner``): a compare's verify and fp16 runs of every case
    pay the env's imports once."""
    if backend.runs_in_host:
        return None
    from backends.artifact_run import ArtifactRunError
    from pipeline.envs import env_python
    runner = shared_env_runner(python or env_python(backend, provision=False), backend.name)

    def run(path, inputs, precision, steps=None):
        try:
            return runner(path, inputs, precision, steps=steps)
        except ArtifactRunError as e:
            # coreai-core's interpreter has aborted (signal 6) now and then on the same
            # inputs that run before and after: a crash is retried once, anything else not.
            if "killed by signal" not in str(e):
                raise
            return runner(path, inputs, precision, steps=steps)
    return run


_RUNNERS = {}
_RUNNERS_LOCK = threading.Lock()


def shared_env_runner(python, route):
    """This process's one EnvRunner for ``python`` running ``route`` (it ends at exit)."""
    from backends.artifact_run import EnvRunner
    from pipeline.envs import child_env
    with _RUNNERS_LOCK:
        runner = _RUNNERS.get((python, route))
        if runner is None:
            runner = _RUNNERS[(python, route)] = EnvRunner(python, route, env=child_env())
        return runner


def check(folder, record, host, weights, runner=None):
    """Add ``verified`` and ``torch_drift`` (``host``: a dict from ``host_reference``, or a
    future of one, waited for only now) to the record and to its conversion.json."""
    from backends.builds import write_record
    from bench.verify import torch_drift, verify
    start = time.perf_counter()
    record["verified"] = verify(folder, record, runner)
    record["seconds"] = dict(record.get("seconds") or {}, verify=round(time.perf_counter() - start, 4))
    host = host.result() if hasattr(host, "result") else host
    record["torch_drift"] = torch_drift(folder, host or {})
    record["weights"] = weights
    write_record(folder, record)
    return record
