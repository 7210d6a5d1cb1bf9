"""Find (or create) the pinned Python env a route runs in.

The envs are the tox envs of this checkout (``.tox/<env>``), created on first use with
``tox run -e <env> --notest``. ``COREML_ROUTES_PYTHON_<ENV>`` (e.g. ``..._V3``) points a
route at an interpreter you provisioned yourself, e.g. on a Mac.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bad_input import BadInput

ROOT = Path(__file__).resolve().parents[1]


def override_var(backend) -> str:
    return "COREML_ROUTES_PYTHON_" + backend.env.upper().replace("-", "_")


def env_python(backend, provision=True, log=sys.stderr) -> str:
    """Path of the python that runs ``backend``, provisioning the tox env if needed."""
    override = os.environ.get(override_var(backend))
    if override:
        if not _runs(override):
            raise BadInput("route {}: {}={} is not a runnable Python".format(
                backend.name, override_var(backend), override))
        return override
    python = ROOT / ".tox" / backend.env / "bin" / "python"
    ready = ROOT / ".tox" / backend.env / ".coreml-routes-ready"
    if python.exists() and ready.exists():
        return str(python)
    require_interpreter(backend)
    if not provision:
        raise BadInput("route {}: its env .tox/{} does not exist; run `tox -e {}` first".format(
            backend.name, backend.env, backend.env))
    with _one_at_a_time(backend.env):
        if python.exists() and ready.exists():       # made by a route sharing the env
            return str(python)
        log.write("setting up the {} toolchain (tox env {}, once) ...\n".format(
            backend.name, backend.env))
        done = subprocess.run([sys.executable, "-m", "tox", "run", "-e", backend.env, "--notest"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0 or not python.exists():
            tail = done.stdout.strip().splitlines()[-1:] or ["(no output)"]
            raise BadInput("route {}: could not create tox env {}: {}".format(
                backend.name, backend.env, tail[0]))
        ready.write_text("ok\n")
    return str(python)


@contextlib.contextmanager
def _one_at_a_time(env):
    """Held while tox creates ``env``, across threads and processes: routes sharing an env
    (v9, v9-export) start together in compare, and two tox runs creating one env at once both
    failed ('evaluation failed', seen on the README's first compare in a fresh clone)."""
    (ROOT / ".tox").mkdir(exist_ok=True)
    with open(str(ROOT / ".tox" / ".coreml-routes-{}.lock".format(env)), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def require_interpreter(backend) -> None:
    """A missing Python 3.7/3.8 is the commonest set-up problem: name it plainly."""
    name = "python" + backend.python
    found = shutil.which(name)
    if found is None or not _runs(found):
        raise BadInput(
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
    """Environment for a route process: this one (PATH, COREML_ROUTES_*, proxies...), with our
    packages first on the path and no PYTHONHOME of the host's Python."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("PYTHONHOME", None)
    return env


PROTECTED = ("torch", "onnx", "onnx-coreml", "coremltools", "numpy")


class EnvFailure(Exception):
    """A route's env cannot take the user's requirements: that route's failure at stage env."""


def overlay_python(backend, base_python: str, requirements: str, log=sys.stderr) -> str:
    """A Python that sees the route's pinned env plus ``requirements``, installed into an
    overlay venv beside it (cached by the file's content). The pinned env is never changed:
    its versions of the toolchain packages are constraints, so a requirement that would
    replace one fails here, naming the conflict."""
    import hashlib
    text = Path(requirements).read_bytes()
    digest = hashlib.sha256(text + base_python.encode()).hexdigest()[:12]
    root = ROOT / ".tox" / "{}-req-{}".format(backend.env, digest)
    python = root / "bin" / "python"
    if (root / ".coreml-routes-ready").exists():
        return str(python)
    shutil.rmtree(root, ignore_errors=True)
    log.write("installing {} for route {} (overlay {}, once) ...\n".format(
        os.path.basename(requirements), backend.name, root.name))
    base_prefix, site = _ask(base_python, "import sys, sysconfig; print(sys.base_prefix); "
                                          "print(sysconfig.get_paths()['purelib'])")
    interpreter = os.path.join(base_prefix, "bin", "python" + backend.python)
    _step([interpreter, "-m", "venv", str(root)], "create the overlay venv")
    (_, overlay_site) = _ask(str(python), "import sys, sysconfig; print(0); "
                                          "print(sysconfig.get_paths()['purelib'])")
    # The pinned env's packages stay visible (and count as installed for pip) through a .pth.
    Path(overlay_site, "_coreml_routes_pinned.pth").write_text(site + "\n")
    pins = _pins(base_python)
    (root / "constraints.txt").write_text("".join(p + "\n" for p in pins))
    done = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check",
                           "-c", str(root / "constraints.txt"), "-r", requirements],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise EnvFailure(pip_reason(done.stdout, pins, requirements))
    (root / ".coreml-routes-ready").write_text("ok\n")
    return str(python)


def pip_reason(output: str, pins, requirements: str) -> str:
    """One line from pip's output: the conflict with a pinned package, or pip's own error."""
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    names = [p.split("==")[0] for p in pins]
    conflicts = [l for l in lines if "user requested" in l or "depends on" in l]
    if conflicts or any("conflict" in l.lower() for l in lines):
        clash = [n for n in names if any(n in l.lower() for l in conflicts)]
        return "{} would replace the route's pinned {} ({}): {}".format(
            os.path.basename(requirements), ", ".join(clash) or "toolchain", ", ".join(
                p for p in pins if p.split("==")[0] in clash) or ", ".join(pins),
            "; ".join(conflicts[:3]) or _first_error(lines))
    return "{} will not install: {}".format(os.path.basename(requirements), _first_error(lines))


def _first_error(lines):
    errors = [l for l in lines if l.startswith("ERROR:")]
    return (errors[0][len("ERROR:"):].strip() if errors else (lines[-1] if lines else "pip failed"))


def _pins(python: str):
    frozen = _ask(python, "import subprocess, sys; subprocess.run([sys.executable, '-m', 'pip', "
                          "'list', '--format=freeze', '--disable-pip-version-check'])")
    return [line for line in frozen if line.split("==")[0].lower() in PROTECTED]


def _ask(python: str, code: str):
    done = subprocess.run([python, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise EnvFailure("{} failed: {}".format(python, (done.stderr.strip().splitlines() or ["?"])[-1]))
    return done.stdout.strip().splitlines()


def _step(cmd, what):
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise EnvFailure("could not {}: {}".format(what, (done.stdout.strip().splitlines() or ["?"])[-1]))


def pinned(env: str) -> list:
    """The toolchain pins of a route env, from ``envs/<env>.txt`` (test tools left out)."""
    path = ROOT / "envs" / "{}.txt".format(env)
    if not path.exists():
        return ["(no {} in this install)".format(path.relative_to(ROOT))]
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith(("pytest", "-"))]


def toolchains() -> dict:
    """route -> ["Python 3.7", "torch==1.4.0", ...], read from the pins: no env is needed."""
    import backends
    return {name: ["Python " + backend.python] + pinned(backend.env)
            for name, backend in backends.all_routes().items()}
