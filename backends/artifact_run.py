"""Run a converted artifact in its route's own env, for hosts that cannot open it.

    python -m backends.artifact_run --route et --artifact build/m/et/model.pte
        --inputs IN.npz --out OUT.npz [--precision fp32|fp16]

``.mlmodel`` / ``.mlpackage`` files are run by the host's coreml_reference directly; a
``.pte`` needs ExecuTorch and an ``.aimodel`` Core AI, which live only in their routes'
envs. The child calls ``Backend.run_artifact`` and writes {output name: array}; a failure
is one line, ``<ErrorClass>: message`` (on stderr here), that the host raises again as the
evaluator's matching error class. Runs on Python 3.7.

    python -m backends.artifact_run --route et --serve

runs one request per line on stdin (JSON: artifact, inputs, out, precision, steps; a failure
goes to ``<out>.error``) until stdin closes. The host runs artifacts this way (``EnvRunner``;
``run_in_env`` for one run), so that checking many cases and precisions pays the env's imports
once: ExecuTorch's took 3-4 s a run, 26 s of a 41 s PANNs compare on route et.
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading

EXIT_OK, EXIT_FAILED = 0, 1
TIMEOUT = 1800


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m backends.artifact_run")
    p.add_argument("--route", required=True)
    p.add_argument("--artifact")
    p.add_argument("--inputs")
    p.add_argument("--out")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--steps", type=int, help="inputs carry a leading axis of this many calls, "
                                             "run with one state (a stateful model)")
    p.add_argument("--serve", action="store_true",
                   help="run the requests given one per line on stdin (EnvRunner)")
    args = p.parse_args(argv)
    import backends
    backend = backends.get(args.route)
    if args.serve:
        return serve(backend)
    if not (args.artifact and args.inputs and args.out):
        p.error("--artifact, --inputs and --out are needed (or --serve)")
    error = run_one(backend, args.artifact, args.inputs, args.out, args.precision, args.steps)
    if error:
        sys.stderr.write(error + "\n")
        return EXIT_FAILED
    return EXIT_OK


def run_one(backend, artifact, inputs_path, out, precision="fp32", steps=None):
    """Run the artifact on the inputs file and write its outputs to ``out``; None, or the
    failure as one line ``<ErrorClass>: message``."""
    import numpy as np
    from backends.base import last_line
    from backends.builds import as_record, read_arrays, read_record
    record = read_record(os.path.dirname(os.path.abspath(artifact))) or as_record({})
    inputs, _ = read_arrays(inputs_path)
    try:
        if steps:
            outputs = backend.run_artifact_steps(artifact, record, inputs, steps, precision)
        else:
            outputs = backend.run_artifact(artifact, record, inputs, precision)
    except Exception as e:  # noqa: BLE001 — the host decides what the failure means
        return "{}: {}".format(type(e).__name__, last_line(str(e)) or repr(e))
    np.savez(out, **dict((k, np.asarray(v)) for k, v in outputs.items()))
    return None


DONE = "backends.artifact_run: done"


def serve(backend):
    """One request per stdin line; a failure goes to ``<out>.error``; each request ends with
    the DONE line on stdout (a library printing there cannot be mistaken for it)."""
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        error = run_one(backend, request["artifact"], request["inputs"], request["out"],
                        request.get("precision") or "fp32", request.get("steps"))
        if error:
            with open(request["out"] + ".error", "w") as f:
                f.write(error)
        sys.stdout.write("\n" + DONE + "\n")   # on a line of its own, whatever came before
        sys.stdout.flush()
    return EXIT_OK


class ArtifactRunError(RuntimeError):
    """The route's runtime failed on the artifact for a reason with no evaluator class."""


def run_in_env(python, route, artifact, inputs, precision="fp32", env=None, timeout=TIMEOUT,
               steps=None):
    """In the host: ``Backend.run_artifact`` of ``route`` run by ``python`` (that route's env);
    returns {output name: array}. The child's error comes back as the same class when the
    evaluator or ``backends.base`` defines it (ShapeError, UnsupportedError, NotEmulated...)."""
    runner = EnvRunner(python, route, env=env, timeout=timeout)
    try:
        return runner(artifact, inputs, precision, steps=steps)
    finally:
        runner.close()


class EnvRunner(object):
    """Runs in a route's env through one ``--serve`` child, kept for every call: its imports
    are paid once. Calls are serialised; a child that dies (a crash) fails its call, and the
    next call starts a new one. ``close`` ends it (at exit at the latest)."""

    def __init__(self, python, route, env=None, timeout=TIMEOUT):
        self.python, self.route, self.env, self.timeout = python, route, env, timeout
        self.lock = threading.Lock()
        self.tmp = tempfile.mkdtemp(prefix="coreml-routes-serve-")
        self.child = None
        self.lines = None
        self.count = 0

    def __call__(self, artifact, inputs, precision="fp32", steps=None):
        import numpy as np
        from backends.builds import write_arrays
        with self.lock:
            if not os.path.isdir(self.tmp):           # closed before: a new scratch folder
                self.tmp = tempfile.mkdtemp(prefix="coreml-routes-serve-")
            self.count += 1
            given = os.path.join(self.tmp, "inputs-{}.npz".format(self.count))
            got = os.path.join(self.tmp, "outputs-{}.npz".format(self.count))
            write_arrays(given, inputs)
            try:
                self._ask({"artifact": artifact, "inputs": given, "out": got,
                           "precision": precision, "steps": steps})
                if os.path.exists(got + ".error"):
                    with open(got + ".error") as f:
                        raise _error_from(f.read(), 1)
                with np.load(got, allow_pickle=False) as data:
                    return dict((k, data[k]) for k in data.files)
            finally:
                for path in (given, got, got + ".error"):
                    if os.path.exists(path):
                        os.remove(path)

    def _ask(self, request):
        if self.child is None or self.child.poll() is not None:
            self._start()
        try:
            self.child.stdin.write(json.dumps(request) + "\n")
            self.child.stdin.flush()
        except OSError:                          # gone already: its stdout's end says how
            pass
        while True:
            try:
                line = self.lines.get(timeout=self.timeout)
            except queue.Empty:
                self._stop(hung=True)
                raise ArtifactRunError("route {} runtime timed out after {} s".format(
                    self.route, self.timeout))
            if line is None:                     # the child is gone
                code = self.child.wait()
                with open(self.stderr_path) as f:
                    stderr = f.read()
                self.child = None
                raise _error_from(stderr, code if code else 1)
            if line.strip() == DONE:
                return

    def _start(self):
        atexit.unregister(self.close)            # once, however often a child is started
        atexit.register(self.close)
        self.stderr_path = os.path.join(self.tmp, "stderr.txt")
        stderr = open(self.stderr_path, "w")
        try:
            self.child = subprocess.Popen(
                [self.python, "-m", "backends.artifact_run", "--route", self.route, "--serve"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                universal_newlines=True, env=self.env)
        finally:
            stderr.close()
        self.lines = queue.Queue()

        def read(stream, lines):
            for line in stream:
                lines.put(line)
            lines.put(None)
        threading.Thread(target=read, args=(self.child.stdout, self.lines), daemon=True).start()

    def _stop(self, hung=False):
        """End the child: its stdin closes and it exits; a hung one (or one that does not
        exit within 10 s) is killed."""
        child, self.child = self.child, None
        if child is None:
            return
        if not hung:
            try:
                child.stdin.close()
                child.wait(timeout=10)
                return
            except (OSError, subprocess.TimeoutExpired):
                pass
        child.kill()
        child.wait()

    def close(self):
        """End the child and remove the scratch folder (a later call makes both again)."""
        self._stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        atexit.unregister(self.close)


def _error_from(stderr, code):
    from backends.base import NotEmulated, last_line
    import coreml_reference.errors as evaluator_errors
    line = last_line(stderr)
    if code is not None and code < 0:
        return ArtifactRunError("the route's runtime was killed by signal {}".format(-code))
    name, _, message = line.partition(": ")
    known = dict((c.__name__, c) for c in (NotEmulated,))
    for attr in dir(evaluator_errors):
        value = getattr(evaluator_errors, attr)
        if isinstance(value, type) and issubclass(value, Exception):
            known[attr] = value
    cls = known.get(name)
    if cls is None:
        return ArtifactRunError(line or "the route's runtime failed (exit {})".format(code))
    try:
        return cls(message)
    except TypeError:   # an error class with another constructor
        return ArtifactRunError(line)


if __name__ == "__main__":
    sys.exit(main())
