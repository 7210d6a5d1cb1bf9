"""Run a converted artifact in its route's own env, for hosts that cannot open it.

    python -m backends.artifact_run --route et --artifact build/m/et/model.pte
        --inputs IN.npz --out OUT.npz [--precision fp32|fp16]

``.mlmodel`` / ``.mlpackage`` files are run by the host's coreml_reference directly; a
``.pte`` needs ExecuTorch and an ``.aimodel`` Core AI, which live only in their routes'
envs. The child calls ``Backend.run_artifact`` and writes {output name: array}; a failure
is one line on stderr, ``<ErrorClass>: message``, that ``run_in_env`` raises again in the
host as the evaluator's matching error class. Runs on Python 3.7.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

EXIT_OK, EXIT_FAILED = 0, 1
TIMEOUT = 1800


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m backends.artifact_run")
    p.add_argument("--route", required=True)
    p.add_argument("--artifact", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--precision", default="fp32")
    p.add_argument("--steps", type=int, help="inputs carry a leading axis of this many calls, "
                                             "run with one state (a stateful model)")
    args = p.parse_args(argv)
    import numpy as np
    import backends
    from backends.base import last_line
    from backends.builds import as_record, read_arrays, read_record
    backend = backends.get(args.route)
    record = read_record(os.path.dirname(os.path.abspath(args.artifact))) or as_record({})
    inputs, _ = read_arrays(args.inputs)
    try:
        if args.steps:
            outputs = backend.run_artifact_steps(args.artifact, record, inputs, args.steps,
                                                 args.precision)
        else:
            outputs = backend.run_artifact(args.artifact, record, inputs, args.precision)
    except Exception as e:  # noqa: BLE001 — the host decides what the failure means
        sys.stderr.write("{}: {}\n".format(type(e).__name__, last_line(str(e)) or repr(e)))
        return EXIT_FAILED
    np.savez(args.out, **dict((k, np.asarray(v)) for k, v in outputs.items()))
    return EXIT_OK


class ArtifactRunError(RuntimeError):
    """The route's runtime failed on the artifact for a reason with no evaluator class."""


def run_in_env(python, route, artifact, inputs, precision="fp32", env=None, timeout=TIMEOUT,
               steps=None):
    """In the host: ``Backend.run_artifact`` of ``route`` run by ``python`` (that route's env);
    returns {output name: array}. The child's error comes back as the same class when the
    evaluator or ``backends.base`` defines it (ShapeError, UnsupportedError, NotEmulated...)."""
    import numpy as np
    from backends.builds import write_arrays
    with tempfile.TemporaryDirectory(prefix="coreml-routes-run-") as tmp:
        given, got = os.path.join(tmp, "inputs.npz"), os.path.join(tmp, "outputs.npz")
        write_arrays(given, inputs)
        cmd = [python, "-m", "backends.artifact_run", "--route", route, "--artifact", artifact,
               "--inputs", given, "--out", got, "--precision", precision]
        if steps:
            cmd += ["--steps", str(steps)]
        try:
            done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ArtifactRunError("route {} runtime timed out after {} s".format(route, timeout))
        if done.returncode != 0 or not os.path.exists(got):
            raise _error_from(done.stderr, done.returncode)
        with np.load(got, allow_pickle=False) as data:
            return dict((k, data[k]) for k in data.files)


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
