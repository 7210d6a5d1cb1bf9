"""Find (or create) the pinned Python env a route runs in.

The envs are the tox envs of this checkout (``.tox/<env>``), created on first use with
``tox run -e <env> --notest``. ``COREML_ROUTES_PYTHON_<ENV>`` (e.g. ``..._V3``) points a
route at an interpreter you provisioned yourself, e.g. on a Mac.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from coreml_routes.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def override_var(backend) -> str:
    return "COREML_ROUTES_PYTHON_" + backend.env.upper().replace("-", "_")


def env_python(backend, provision=True, log=sys.stderr) -> str:
    """Path of the python that runs ``backend``, provisioning the tox env if needed."""
    override = os.environ.get(override_var(backend))
    if override:
        if not _runs(override):
            raise UserError("route {}: {}={} is not a runnable Python".format(
                backend.name, override_var(backend), override))
        return override
    python = ROOT / ".tox" / backend.env / "bin" / "python"
    if python.exists() and (ROOT / ".tox" / backend.env / ".coreml-routes-ready").exists():
        return str(python)
    require_interpreter(backend)
    if not provision:
        raise UserError("route {}: its env .tox/{} does not exist; run `tox -e {}` first".format(
            backend.name, backend.env, backend.env))
    log.write("setting up the {} toolchain (tox env {}, once) ...\n".format(backend.name, backend.env))
    done = subprocess.run([sys.executable, "-m", "tox", "run", "-e", backend.env, "--notest"],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0 or not python.exists():
        tail = done.stdout.strip().splitlines()[-1:] or ["(no output)"]
        raise UserError("route {}: could not create tox env {}: {}".format(
            backend.name, backend.env, tail[0]))
    (ROOT / ".tox" / backend.env / ".coreml-routes-ready").write_text("ok\n")
    return str(python)


def require_interpreter(backend) -> None:
    """A missing Python 3.7/3.8 is the commonest set-up problem: name it plainly."""
    name = "python" + backend.python
    found = shutil.which(name)
    if found is None or not _runs(found):
        raise UserError(
            "route {} needs Python {} ({} is not on PATH or does not run); with pyenv, install "
            "it and list it in .python-version (see README), or set {}".format(
                backend.name, backend.python, name, override_var(backend)))


def _runs(python: str) -> bool:
    try:
        return subprocess.run([python, "-c", "pass"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def child_env() -> dict:
    """Environment for a route process: our packages importable, nothing else inherited."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("PYTHONHOME", None)
    return env
